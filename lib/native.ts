/**
 * Loads the native addon (a prebuild or build/Release, through node-gyp-build) and types
 * its surface. Everything that crosses into C++ goes through here; arguments are validated
 * by the callers in TypeScript before they get this far.
 */
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { TesseraError } from "./errors.js";

export interface SystemInfo {
  cpu: { avx2: boolean; fma: boolean; f16c: boolean; isa: "avx2" | "scalar" };
  cuda: { available: boolean; deviceCount: number; deviceName?: string; reason?: string };
}

export interface NativeContext {
  /** Evaluates tokens at positions pos0.. on a worker thread, writing logits (last row, or every row). */
  eval(tokens: Int32Array, pos0: number, allLogits: boolean, logits: Float32Array): Promise<void>;
  /** The same on the calling thread (for models small enough that the thread hop dominates). */
  evalSync(tokens: Int32Array, pos0: number, allLogits: boolean, logits: Float32Array): void;
  abort(): void;
  dispose(): void;
  readonly capacity: number;
  readonly memoryBytes: number;
  /** Nanoseconds the executor spent in the last eval, excluding the N-API crossing. */
  readonly lastEvalNs: number;
}

export interface NativeModel {
  createContext(options: { contextSize: number; batchSize?: number }): NativeContext;
  dispose(): void;
  readonly backend: "cpu" | "cuda";
  readonly weightBytes: number;
}

export interface NativeAddon {
  loadModel(
    path: string,
    plan: object,
    options: { backend: "cpu" | "cuda"; threads: number; device?: number },
  ): Promise<NativeModel>;
  systemInfo(): SystemInfo;
  /** Lowers (or restores) the CPU kernel ISA; returns the ISA now active. */
  setCpuIsa(isa: "avx2" | "scalar"): "avx2" | "scalar";
}

function packageRoot(): string {
  // dist/lib/native.js and lib/native.ts both sit two levels below the package root.
  const here = path.dirname(fileURLToPath(import.meta.url));
  const up = path.basename(path.dirname(here)) === "dist" ? 2 : 1;
  return path.resolve(here, ...Array(up).fill(".."));
}

let cached: NativeAddon | undefined;

export function native(): NativeAddon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  try {
    const explicit = process.env.TESSERA_ADDON_PATH;
    cached = (explicit ? require(path.resolve(explicit)) : require("node-gyp-build")(packageRoot())) as NativeAddon;
  } catch (e) {
    throw new TesseraError(
      "ERR_ADDON_LOAD",
      `the Tessera native addon could not be loaded (${(e as Error).message}); run \`npm rebuild tessera\` ` +
        "(needs cmake and a C++17 compiler) or install a package with a prebuild for this platform",
      { cause: e },
    );
  }
  return cached;
}
