/**
 * The model the package ships: stories260K (1.2 MB, MIT, karpathy/tinyllamas; licence in
 * models/stories260K.LICENSE), so loadModel() and `tessera run` work on a fresh install with
 * no model path and no download. It writes small children's stories; for anything else pass
 * a GGUF path (or `tessera pull` one).
 */
import path from "node:path";
import { fileURLToPath } from "node:url";

function packageRoot(): string {
  // dist/lib/default-model.js and lib/default-model.ts sit two and one levels below the root.
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.basename(path.dirname(here)) === "dist" ? path.resolve(here, "../..") : path.resolve(here, "..");
}

/** Absolute path of the embedded default model (models/stories260K.gguf in the package). */
export const DEFAULT_MODEL: string = path.join(packageRoot(), "models", "stories260K.gguf");
