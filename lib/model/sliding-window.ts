/**
 * Which blocks attend through a sliding window, from `${arch}.attention.sliding_window` and
 * the description's (or the file's) local/global pattern. A windowed block at position p
 * attends to positions max(0, p - window + 1) ..= p, llama.cpp's "standard" SWA mask.
 */
import { TesseraError } from "../errors.js";
import type { ArchDescription } from "../arch/types.js";
import { GGUFValueType, type GGUFFile } from "../gguf/types.js";
import { ModelMetadata, malformedKey } from "./metadata.js";

export interface SlidingWindow {
  /** Window length in positions; 0: no block is windowed. */
  slidingWindow: number;
  /** One flag per block: true when the block attends through the window. */
  windowedBlocks: boolean[];
  /** The RoPE base of windowed blocks, which rotate unscaled (Gemma 3); undefined: the file's RoPE. */
  windowedRopeBase?: number;
}

function periodic(nLayer: number, period: number, globalFirst: boolean): boolean[] {
  return Array.from({ length: nLayer }, (_, b) =>
    period === 0 ? true : globalFirst ? b % period !== 0 : b % period < period - 1,
  );
}

/** Element types llama.cpp accepts for a per-block flag array. */
const FLAG_TYPES: ReadonlySet<GGUFValueType> = new Set([GGUFValueType.BOOL, GGUFValueType.INT32, GGUFValueType.UINT32]);

function blockPattern(file: GGUFFile, arch: ArchDescription, nLayer: number): boolean[] {
  const pattern = arch.slidingWindowPattern;
  if (!pattern) return new Array<boolean>(nLayer).fill(true);
  const key = `${arch.name}.attention.sliding_window_pattern`;
  const kv = file.metadata.get(key);
  if (!kv) return periodic(nLayer, pattern.defaultPeriod, pattern.globalFirst);
  const v = kv.value;
  if (kv.type === GGUFValueType.ARRAY && typeof v === "object" && "items" in v) {
    if (!FLAG_TYPES.has(v.itemType)) throw malformedKey(key, "must hold one BOOL or integer per block");
    const flags = Array.from(v.items as ArrayLike<number | boolean>, (x) => Boolean(x));
    if (flags.length !== nLayer)
      throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `${key} has ${flags.length} entries for ${nLayer} blocks; re-convert the file`);
    return flags;
  }
  const period = new ModelMetadata(file).integer(key, { min: 0, max: 4096 })!;
  return periodic(nLayer, period, pattern.globalFirst);
}

export function readSlidingWindow(
  file: GGUFFile,
  arch: ArchDescription,
  nLayer: number,
  ropeScaling: "none" | "linear" | "yarn",
): SlidingWindow {
  // A window length in tokens; 0 or absent: no window.
  const windowKey = `${arch.name}.attention.sliding_window`;
  if (arch.slidingWindowPattern?.windowRequired && !file.metadata.has(windowKey))
    throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `the file has no ${windowKey}; re-convert it`);
  const slidingWindow = arch.slidingWindow
    ? new ModelMetadata(file).integer(`${arch.name}.attention.sliding_window`, { min: 0, max: 1 << 24 }) ??
      arch.slidingWindowPattern?.defaultWindow ??
      0
    : 0;
  if (slidingWindow === 0) return { slidingWindow, windowedBlocks: new Array<boolean>(nLayer).fill(false) };
  const windowedBlocks = blockPattern(file, arch, nLayer);
  // The native plan has one RoPE setting for every block; windowed blocks that must skip
  // the file's scaling can't be expressed in it.
  if (arch.slidingWindowPattern?.unscaledRopeWhenWindowed && ropeScaling !== "none" && windowedBlocks.some((w) => w))
    throw new TesseraError(
      "ERR_MODEL_INCOMPATIBLE",
      `${arch.name} with ${ropeScaling} RoPE scaling rotates windowed blocks without it, which Tessera does not support`,
    );
  const swaBase = arch.slidingWindowPattern?.windowedRopeBase;
  if (swaBase !== undefined && ropeScaling === "yarn" && windowedBlocks.some((w) => w))
    throw new TesseraError(
      "ERR_MODEL_INCOMPATIBLE",
      `${arch.name} with YaRN RoPE scaling rotates windowed blocks without it, which Tessera does not support`,
    );
  const windowedRopeBase =
    swaBase === undefined
      ? undefined
      : new ModelMetadata(file).real(`${arch.name}.rope.freq_base_swa`, { min: 0, max: 1e30, aboveMin: true }) ?? swaBase;
  return { slidingWindow, windowedBlocks, windowedRopeBase };
}
