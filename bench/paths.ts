import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root, whether running from bench/ (sources) or dist/bench/ (built). */
export const repoRoot = path.resolve(here, path.basename(path.dirname(here)) === "dist" ? "../.." : "..");
export const sharedDir = path.resolve(repoRoot, "../shared");
