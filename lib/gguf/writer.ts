/**
 * GGUF writer (version 3). Tests and dev/synthetic-model.ts use it to produce files that
 * both Tessera and llama.cpp load. Tensor data may be given lazily so multi-GB models are
 * written one tensor at a time.
 */
import fs from "node:fs";
import { TesseraError } from "../errors.js";
import {
  GGML_TYPE_INFO,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUFValueType,
  type GGMLType,
  type GGUFArray,
  type GGUFKV,
} from "./types.js";

export interface GGUFTensorSpec {
  name: string;
  type: GGMLType;
  /** ggml order: dims[0] is the row length. */
  dims: number[];
  /** Encoded tensor bytes, or a function producing them when the tensor is written. */
  data: Uint8Array | (() => Uint8Array);
}

export interface GGUFSpec {
  metadata: Iterable<[string, GGUFKV]>;
  tensors: GGUFTensorSpec[];
  alignment?: number;
}

/** Constructors for typed metadata values. */
export const kv = {
  u8: (v: number): GGUFKV => ({ type: GGUFValueType.UINT8, value: v }),
  i8: (v: number): GGUFKV => ({ type: GGUFValueType.INT8, value: v }),
  u16: (v: number): GGUFKV => ({ type: GGUFValueType.UINT16, value: v }),
  i16: (v: number): GGUFKV => ({ type: GGUFValueType.INT16, value: v }),
  u32: (v: number): GGUFKV => ({ type: GGUFValueType.UINT32, value: v }),
  i32: (v: number): GGUFKV => ({ type: GGUFValueType.INT32, value: v }),
  f32: (v: number): GGUFKV => ({ type: GGUFValueType.FLOAT32, value: v }),
  f64: (v: number): GGUFKV => ({ type: GGUFValueType.FLOAT64, value: v }),
  u64: (v: bigint): GGUFKV => ({ type: GGUFValueType.UINT64, value: v }),
  i64: (v: bigint): GGUFKV => ({ type: GGUFValueType.INT64, value: v }),
  bool: (v: boolean): GGUFKV => ({ type: GGUFValueType.BOOL, value: v }),
  str: (v: string): GGUFKV => ({ type: GGUFValueType.STRING, value: v }),
  array: (itemType: GGUFValueType, items: GGUFArray["items"]): GGUFKV => ({ type: GGUFValueType.ARRAY, value: { itemType, items } }),
  strArray: (v: string[]): GGUFKV => kv.array(GGUFValueType.STRING, v),
  i32Array: (v: Int32Array): GGUFKV => kv.array(GGUFValueType.INT32, v),
  u32Array: (v: Uint32Array): GGUFKV => kv.array(GGUFValueType.UINT32, v),
  f32Array: (v: Float32Array): GGUFKV => kv.array(GGUFValueType.FLOAT32, v),
};

function invalid(message: string): TesseraError {
  return new TesseraError("ERR_INVALID_ARGUMENT", `writeGGUF: ${message}`);
}

/** Growable little-endian byte sink for the header. */
class ByteSink {
  private buf = Buffer.alloc(1 << 16);
  length = 0;
  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number) {
    this.reserve(1);
    this.buf.writeUInt8(v, this.length);
    this.length += 1;
  }
  u32(v: number) {
    this.reserve(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }
  u64(v: number | bigint) {
    this.reserve(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.length);
    this.length += 8;
  }
  bytes(b: Uint8Array) {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  string(s: string) {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.bytes(b);
  }
  padTo(alignment: number) {
    while (this.length % alignment !== 0) this.u8(0);
  }
  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

const scratch = Buffer.alloc(8);

function writeScalar(out: ByteSink, type: GGUFValueType, v: unknown): void {
  const b = scratch;
  switch (type) {
    case GGUFValueType.UINT8:
      return out.bytes(b.subarray(0, b.writeUInt8(v as number)));
    case GGUFValueType.INT8:
      return out.bytes(b.subarray(0, b.writeInt8(v as number)));
    case GGUFValueType.UINT16:
      return out.bytes(b.subarray(0, b.writeUInt16LE(v as number)));
    case GGUFValueType.INT16:
      return out.bytes(b.subarray(0, b.writeInt16LE(v as number)));
    case GGUFValueType.UINT32:
      return out.bytes(b.subarray(0, b.writeUInt32LE(v as number)));
    case GGUFValueType.INT32:
      return out.bytes(b.subarray(0, b.writeInt32LE(v as number)));
    case GGUFValueType.FLOAT32:
      return out.bytes(b.subarray(0, b.writeFloatLE(v as number)));
    case GGUFValueType.FLOAT64:
      return out.bytes(b.subarray(0, b.writeDoubleLE(v as number)));
    case GGUFValueType.UINT64:
      return out.bytes(b.subarray(0, b.writeBigUInt64LE(BigInt(v as bigint))));
    case GGUFValueType.INT64:
      return out.bytes(b.subarray(0, b.writeBigInt64LE(BigInt(v as bigint))));
    case GGUFValueType.BOOL:
      return out.u8(v ? 1 : 0);
    case GGUFValueType.STRING:
      return out.string(v as string);
    default:
      throw invalid(`value type ${type} is not a scalar`);
  }
}

function writeValue(out: ByteSink, type: GGUFValueType, value: GGUFKV["value"]): void {
  if (type !== GGUFValueType.ARRAY) return writeScalar(out, type, value);
  const arr = value as GGUFArray;
  out.u32(arr.itemType);
  out.u64(arr.items.length);
  for (const item of Array.from(arr.items as ArrayLike<unknown>)) {
    if (arr.itemType === GGUFValueType.ARRAY) {
      const inner = item as GGUFArray;
      writeValue(out, GGUFValueType.ARRAY, inner);
    } else writeScalar(out, arr.itemType, item);
  }
}

function tensorBytes(t: GGUFTensorSpec): number {
  const info = GGML_TYPE_INFO[t.type];
  if (!info) throw invalid(`tensor "${t.name}" has unknown type ${t.type}`);
  if (t.dims.length < 1 || t.dims.length > 4 || t.dims.some((d) => !Number.isInteger(d) || d < 1))
    throw invalid(`tensor "${t.name}" has invalid dims [${t.dims}]`);
  if (t.dims[0] % info.blockSize !== 0)
    throw invalid(`tensor "${t.name}" row length ${t.dims[0]} is not a multiple of the ${info.name} block size`);
  return (t.dims.reduce((a, b) => a * b, 1) / info.blockSize) * info.typeSize;
}

interface Layout {
  header: Buffer;
  sizes: number[];
  offsets: number[];
  alignment: number;
}

function layout(spec: GGUFSpec): Layout {
  const metadata = [...spec.metadata];
  const alignment = spec.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (spec.alignment !== undefined && !metadata.some(([k]) => k === "general.alignment"))
    metadata.push(["general.alignment", kv.u32(alignment)]);
  const out = new ByteSink();
  out.u32(GGUF_MAGIC);
  out.u32(3);
  out.u64(spec.tensors.length);
  out.u64(metadata.length);
  for (const [key, value] of metadata) {
    out.string(key);
    out.u32(value.type);
    writeValue(out, value.type, value.value);
  }
  const sizes: number[] = [];
  const offsets: number[] = [];
  let offset = 0;
  for (const t of spec.tensors) {
    const size = tensorBytes(t);
    out.string(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(d);
    out.u32(t.type);
    out.u64(offset);
    sizes.push(size);
    offsets.push(offset);
    offset += Math.ceil(size / alignment) * alignment;
  }
  out.padTo(alignment);
  return { header: out.result(), sizes, offsets, alignment };
}

function dataOf(t: GGUFTensorSpec, size: number): Uint8Array {
  const data = typeof t.data === "function" ? t.data() : t.data;
  if (data.length !== size) throw invalid(`tensor "${t.name}" has ${data.length} bytes of data, expected ${size}`);
  return data;
}

/** Encodes a whole GGUF in memory (small files: tests, fuzzing). */
export function encodeGGUF(spec: GGUFSpec): Uint8Array {
  const { header, sizes, offsets, alignment } = layout(spec);
  const last = sizes.length ? offsets[offsets.length - 1] + Math.ceil(sizes[sizes.length - 1] / alignment) * alignment : 0;
  const out = new Uint8Array(header.length + last);
  out.set(header, 0);
  spec.tensors.forEach((t, i) => out.set(dataOf(t, sizes[i]), header.length + offsets[i]));
  return out;
}

/** Writes a GGUF file, producing and writing one tensor's data at a time. */
export function writeGGUF(path: string, spec: GGUFSpec): void {
  const { header, sizes, offsets, alignment } = layout(spec);
  const fd = fs.openSync(path, "w");
  try {
    fs.writeSync(fd, header, 0, header.length, 0);
    let end = header.length;
    spec.tensors.forEach((t, i) => {
      const data = dataOf(t, sizes[i]);
      const at = header.length + offsets[i];
      fs.writeSync(fd, data, 0, data.length, at);
      end = at + Math.ceil(data.length / alignment) * alignment;
    });
    fs.ftruncateSync(fd, end);
  } finally {
    fs.closeSync(fd);
  }
}
