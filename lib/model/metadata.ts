/**
 * A model's GGUF metadata read by type, as strictly as llama.cpp's loader reads it: a count is
 * stored as an integer, a real as FLOAT32/FLOAT64, a flag as BOOL, a name as STRING, and a
 * per-block value as that scalar or one INT32/UINT32 entry per block. Anything else (a bool
 * where a block count belongs, a one-element string array where a number does) is a damaged
 * or miswritten file: ERR_GGUF_MALFORMED naming the key, never a value coerced from another
 * type. Values out of their range are refused the same way, before they reach C++.
 */
import { TesseraError } from "../errors.js";
import { GGUFValueType, type GGUFArray, type GGUFFile, type GGUFKV } from "../gguf/types.js";

/** Inclusive bounds; `aboveMin`: the minimum itself is excluded (an epsilon above 0). */
export interface Range {
  min: number;
  max: number;
  aboveMin?: boolean;
}

const INTEGER_TYPES: ReadonlySet<GGUFValueType> = new Set([
  GGUFValueType.UINT8, GGUFValueType.INT8, GGUFValueType.UINT16, GGUFValueType.INT16,
  GGUFValueType.UINT32, GGUFValueType.INT32, GGUFValueType.UINT64, GGUFValueType.INT64,
]);
const REAL_TYPES: ReadonlySet<GGUFValueType> = new Set([GGUFValueType.FLOAT32, GGUFValueType.FLOAT64]);
/** Element types llama.cpp's get_key_or_arr takes for one value per block. */
const PER_BLOCK_TYPES: ReadonlySet<GGUFValueType> = new Set([GGUFValueType.INT32, GGUFValueType.UINT32]);

export function malformedKey(key: string, problem: string): TesseraError {
  return new TesseraError(
    "ERR_GGUF_MALFORMED",
    `metadata ${key} ${problem}; the file is damaged or was written by a faulty converter, re-convert it`,
  );
}

function typeName(kv: GGUFKV): string {
  if (kv.type === GGUFValueType.ARRAY) {
    const a = kv.value as GGUFArray;
    return `an array of ${a.items.length} ${GGUFValueType[a.itemType] ?? a.itemType}`;
  }
  return GGUFValueType[kv.type] ?? `type ${kv.type}`;
}

function describe(r: Range): string {
  return `${r.aboveMin ? "above" : "at least"} ${r.min} and at most ${r.max}`;
}

function inRange(key: string, v: number, r: Range): number {
  if (!Number.isFinite(v) || v < r.min || (r.aboveMin && v === r.min) || v > r.max)
    throw malformedKey(key, `= ${v} is out of range (it must be ${describe(r)})`);
  return v;
}

function integerValue(key: string, v: unknown, r: Range): number {
  const n = typeof v === "bigint" ? (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : NaN) : Number(v);
  return inRange(key, n, r);
}

export class ModelMetadata {
  constructor(private readonly file: GGUFFile) {}

  has(key: string): boolean {
    return this.file.metadata.has(key);
  }

  /** An integer of any GGUF integer type, or undefined when the key is absent. */
  integer(key: string, range: Range): number | undefined {
    const kv = this.file.metadata.get(key);
    if (!kv) return undefined;
    if (!INTEGER_TYPES.has(kv.type)) throw malformedKey(key, `is ${typeName(kv)}, expected an integer`);
    return integerValue(key, kv.value, range);
  }

  /** A FLOAT32 or FLOAT64 value, or undefined when the key is absent. */
  real(key: string, range: Range): number | undefined {
    const kv = this.file.metadata.get(key);
    if (!kv) return undefined;
    if (!REAL_TYPES.has(kv.type)) throw malformedKey(key, `is ${typeName(kv)}, expected FLOAT32`);
    return inRange(key, kv.value as number, range);
  }

  bool(key: string): boolean | undefined {
    const kv = this.file.metadata.get(key);
    if (!kv) return undefined;
    if (kv.type !== GGUFValueType.BOOL) throw malformedKey(key, `is ${typeName(kv)}, expected BOOL`);
    return kv.value as boolean;
  }

  string(key: string): string | undefined {
    const kv = this.file.metadata.get(key);
    if (!kv) return undefined;
    if (kv.type !== GGUFValueType.STRING) throw malformedKey(key, `is ${typeName(kv)}, expected STRING`);
    return kv.value as string;
  }

  /**
   * One integer for every block: a scalar, or an array of nLayer INT32/UINT32 entries
   * (llama.cpp's per-layer form). The native plan has one value for all blocks, so the
   * entries must agree.
   */
  integerPerBlock(key: string, nLayer: number, range: Range): number | undefined {
    const kv = this.file.metadata.get(key);
    if (!kv || kv.type !== GGUFValueType.ARRAY) return this.integer(key, range);
    const a = kv.value as GGUFArray;
    if (!PER_BLOCK_TYPES.has(a.itemType)) throw malformedKey(key, `is ${typeName(kv)}, expected an integer or one INT32 per block`);
    if (a.items.length !== nLayer) throw malformedKey(key, `has ${a.items.length} entries for ${nLayer} blocks`);
    const items = Array.from(a.items as ArrayLike<number>, (v) => integerValue(key, v, range));
    if (items.some((v) => v !== items[0]))
      throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `${key} varies per block (${items.join(", ")}), which Tessera does not support`);
    return items[0];
  }
}
