/**
 * GGUF reader (versions 2 and 3). Parses the header, metadata and tensor table and validates
 * every count, size and offset against the file before anything reaches native code, so a
 * malformed file gives a coded TesseraError instead of a bad read. Tensor data is not read
 * here: the addon mmaps it.
 */
import fs from "node:fs";
import { TesseraError } from "../errors.js";
import {
  GGML_TYPE_INFO,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUFValueType,
  type GGUFArray,
  type GGUFArrayValue,
  type GGUFFile,
  type GGUFKV,
  type GGUFTensorInfo,
} from "./types.js";

const MAX_DIMS = 4;
const MAX_ARRAY_NESTING = 4;
/** Smallest encoding of one metadata entry: key length, empty key, value type, one byte. */
const MIN_KV_BYTES = 8 + 4 + 1;
/** Smallest encoding of one tensor-table entry: name length, n_dims, one dim, type, offset. */
const MIN_TENSOR_BYTES = 8 + 4 + 8 + 4 + 8;

const SCALAR_SIZE: Partial<Record<GGUFValueType, number>> = {
  [GGUFValueType.UINT8]: 1,
  [GGUFValueType.INT8]: 1,
  [GGUFValueType.UINT16]: 2,
  [GGUFValueType.INT16]: 2,
  [GGUFValueType.UINT32]: 4,
  [GGUFValueType.INT32]: 4,
  [GGUFValueType.FLOAT32]: 4,
  [GGUFValueType.BOOL]: 1,
  [GGUFValueType.UINT64]: 8,
  [GGUFValueType.INT64]: 8,
  [GGUFValueType.FLOAT64]: 8,
};

function malformed(what: string, at: number): TesseraError {
  return new TesseraError(
    "ERR_GGUF_MALFORMED",
    `malformed GGUF: ${what} (at byte ${at}); the file is damaged or not a GGUF model — re-download or re-convert it`,
  );
}

/** Raised when the bytes read so far end before the header does; the caller reads more. */
class NeedMoreBytes extends Error {}

class Cursor {
  pos = 0;
  private readonly view: DataView;
  // ignoreBOM: a string may start with U+FEFF (a vocabulary token), which must survive.
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  constructor(
    private readonly bytes: Uint8Array,
    /** Size of the whole file; `bytes` may hold only its beginning. */
    readonly fileSize: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.fileSize - this.pos;
  }

  private need(n: number, what: string): void {
    if (n > this.remaining) throw malformed(`${what} runs past the end of the file`, this.pos);
    if (this.pos + n > this.bytes.length) throw new NeedMoreBytes();
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** A u64 count or size that must fit a JS number and `limit`. */
  count(what: string, limit: number): number {
    const at = this.pos;
    const v = this.u64(what);
    if (v > BigInt(limit)) throw malformed(`${what} = ${v} exceeds what the file can hold (${limit})`, at);
    return Number(v);
  }
  string(what: string): string {
    const len = this.count(`${what} length`, this.remaining - 8);
    this.need(len, what);
    const s = this.decoder.decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }

  scalar(type: GGUFValueType, what: string): number | bigint | boolean {
    const size = SCALAR_SIZE[type]!;
    this.need(size, what);
    const p = this.pos;
    this.pos += size;
    const v = this.view;
    switch (type) {
      case GGUFValueType.UINT8:
        return v.getUint8(p);
      case GGUFValueType.INT8:
        return v.getInt8(p);
      case GGUFValueType.UINT16:
        return v.getUint16(p, true);
      case GGUFValueType.INT16:
        return v.getInt16(p, true);
      case GGUFValueType.UINT32:
        return v.getUint32(p, true);
      case GGUFValueType.INT32:
        return v.getInt32(p, true);
      case GGUFValueType.FLOAT32:
        return v.getFloat32(p, true);
      case GGUFValueType.BOOL: {
        const b = v.getUint8(p);
        if (b > 1) throw malformed(`${what} is a bool with value ${b}`, p);
        return b === 1;
      }
      case GGUFValueType.UINT64:
        return v.getBigUint64(p, true);
      case GGUFValueType.INT64:
        return v.getBigInt64(p, true);
      case GGUFValueType.FLOAT64:
        return v.getFloat64(p, true);
      default:
        throw malformed(`${what} has unknown value type ${type}`, p);
    }
  }

  /** Copies n fixed-size elements into a fresh typed array (the source may be unaligned). */
  typedArray(type: GGUFValueType, n: number, what: string): GGUFArrayValue {
    const size = SCALAR_SIZE[type]!;
    this.need(n * size, what);
    // A fresh, aligned copy (Buffer#slice would alias the pooled source buffer).
    const copy = new ArrayBuffer(n * size);
    new Uint8Array(copy).set(this.bytes.subarray(this.pos, this.pos + n * size));
    this.pos += n * size;
    switch (type) {
      case GGUFValueType.UINT8:
        return new Uint8Array(copy);
      case GGUFValueType.INT8:
        return new Int8Array(copy);
      case GGUFValueType.UINT16:
        return new Uint16Array(copy);
      case GGUFValueType.INT16:
        return new Int16Array(copy);
      case GGUFValueType.UINT32:
        return new Uint32Array(copy);
      case GGUFValueType.INT32:
        return new Int32Array(copy);
      case GGUFValueType.FLOAT32:
        return new Float32Array(copy);
      case GGUFValueType.UINT64:
        return new BigUint64Array(copy);
      case GGUFValueType.INT64:
        return new BigInt64Array(copy);
      case GGUFValueType.FLOAT64:
        return new Float64Array(copy);
      default: {
        const bools = new Uint8Array(copy);
        const out = new Array<boolean>(n);
        for (let i = 0; i < n; i++) {
          if (bools[i] > 1) throw malformed(`${what}[${i}] is a bool with value ${bools[i]}`, this.pos - n + i);
          out[i] = bools[i] === 1;
        }
        return out;
      }
    }
  }
}

function valueType(c: Cursor, what: string): GGUFValueType {
  const at = c.pos;
  const t = c.u32(`${what} type`);
  if (!(t in GGUFValueType)) throw malformed(`${what} has unknown value type ${t}`, at);
  return t as GGUFValueType;
}

function readArray(c: Cursor, what: string, depth: number): GGUFArray {
  if (depth > MAX_ARRAY_NESTING) throw malformed(`${what} nests arrays deeper than ${MAX_ARRAY_NESTING}`, c.pos);
  const itemType = valueType(c, `${what} item`);
  const minItemBytes = itemType === GGUFValueType.STRING || itemType === GGUFValueType.ARRAY ? 8 : SCALAR_SIZE[itemType]!;
  const n = c.count(`${what} item count`, Math.floor(c.remaining / minItemBytes));
  if (itemType === GGUFValueType.STRING) {
    const items = new Array<string>(n);
    for (let i = 0; i < n; i++) items[i] = c.string(`${what}[${i}]`);
    return { itemType, items };
  }
  if (itemType === GGUFValueType.ARRAY) {
    const items = new Array<GGUFArray>(n);
    for (let i = 0; i < n; i++) items[i] = readArray(c, `${what}[${i}]`, depth + 1);
    return { itemType, items };
  }
  return { itemType, items: c.typedArray(itemType, n, what) };
}

function readValue(c: Cursor, type: GGUFValueType, what: string): GGUFKV["value"] {
  if (type === GGUFValueType.STRING) return c.string(what);
  if (type === GGUFValueType.ARRAY) return readArray(c, what, 1);
  return c.scalar(type, what);
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

function parseWith(c: Cursor): GGUFFile {
  if (c.fileSize < 4) throw malformed("the file is shorter than the 4-byte magic", 0);
  const magic = c.u32("magic");
  if (magic !== GGUF_MAGIC)
    throw new TesseraError("ERR_GGUF_MALFORMED", "not a GGUF file (bad magic); pass a .gguf model file");
  const version = c.u32("version");
  if (version === 1)
    throw new TesseraError("ERR_GGUF_UNSUPPORTED", "GGUF version 1 is not supported; re-convert the model with a current llama.cpp");
  if (version !== 2 && version !== 3) {
    const hint = version > 0xffff ? " (a big-endian GGUF?)" : "";
    throw new TesseraError("ERR_GGUF_UNSUPPORTED", `GGUF version ${version}${hint} is not supported; Tessera reads versions 2 and 3`);
  }
  const nTensors = c.count("tensor count", Math.floor(c.remaining / MIN_TENSOR_BYTES));
  const nKv = c.count("metadata count", Math.floor(c.remaining / MIN_KV_BYTES));

  const metadata = new Map<string, GGUFKV>();
  for (let i = 0; i < nKv; i++) {
    const at = c.pos;
    const key = c.string(`metadata key #${i}`);
    if (metadata.has(key)) throw malformed(`duplicate metadata key "${key}"`, at);
    const type = valueType(c, `metadata "${key}"`);
    metadata.set(key, { type, value: readValue(c, type, `metadata "${key}"`) });
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignKv = metadata.get("general.alignment");
  if (alignKv) {
    const a = alignKv.value;
    // The GGUF spec asks for a multiple of 8, llama.cpp for a power of two: both. Below 8,
    // tensor data lands at odd addresses, and the kernels' F32 and fp16-scale reads with it.
    if (alignKv.type !== GGUFValueType.UINT32 || typeof a !== "number" || a < 8 || (a & (a - 1)) !== 0)
      throw malformed(`general.alignment must be a power-of-two u32 of at least 8, got ${String(a)}`, 0);
    alignment = a;
  }

  const tensors: GGUFTensorInfo[] = [];
  const names = new Set<string>();
  const relativeOffsets: number[] = [];
  for (let i = 0; i < nTensors; i++) {
    const at = c.pos;
    const name = c.string(`tensor #${i} name`);
    if (names.has(name)) throw malformed(`duplicate tensor name "${name}"`, at);
    names.add(name);
    const nDims = c.u32(`tensor "${name}" dimension count`);
    if (nDims < 1 || nDims > MAX_DIMS) throw malformed(`tensor "${name}" has ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`, at);
    const dims: number[] = [];
    let elementCount = 1;
    for (let d = 0; d < nDims; d++) {
      const dim = c.count(`tensor "${name}" dimension ${d}`, Number.MAX_SAFE_INTEGER);
      if (dim < 1) throw malformed(`tensor "${name}" has an empty dimension ${d}`, at);
      elementCount *= dim;
      if (elementCount > Number.MAX_SAFE_INTEGER) throw malformed(`tensor "${name}" has too many elements`, at);
      dims.push(dim);
    }
    const typeAt = c.pos;
    const type = c.u32(`tensor "${name}" type`);
    const info = GGML_TYPE_INFO[type];
    if (!info)
      throw new TesseraError(
        "ERR_UNSUPPORTED_QUANT_TYPE",
        `tensor "${name}" has unknown ggml type ${type} (at byte ${typeAt}); the file needs a newer engine or is damaged`,
      );
    if (dims[0] % info.blockSize !== 0)
      throw malformed(`tensor "${name}" row length ${dims[0]} is not a multiple of the ${info.name} block size ${info.blockSize}`, at);
    const offset = c.count(`tensor "${name}" offset`, Number.MAX_SAFE_INTEGER);
    if (offset % alignment !== 0) throw malformed(`tensor "${name}" offset ${offset} is not aligned to ${alignment}`, at);
    const byteLength = (elementCount / info.blockSize) * info.typeSize;
    relativeOffsets.push(offset);
    tensors.push({ name, type, dims, offset, byteLength, elementCount });
  }

  // A file without tensors may end inside the padding before its (empty) data section, as
  // llama.cpp accepts; the data section then starts at the end of the file.
  const alignedEnd = alignUp(c.pos, alignment);
  const dataOffset = tensors.length === 0 ? Math.min(alignedEnd, c.fileSize) : alignedEnd;
  const dataBytes = c.fileSize - dataOffset;
  for (const t of tensors) {
    if (t.offset + t.byteLength > dataBytes)
      throw malformed(
        `tensor "${t.name}" data (${t.byteLength} bytes at data offset ${t.offset}) runs past the end of the file`,
        dataOffset + t.offset,
      );
    t.offset += dataOffset;
  }
  const byStart = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byStart.length; i++) {
    const prev = byStart[i - 1];
    if (prev.offset + prev.byteLength > byStart[i].offset)
      throw malformed(`tensors "${prev.name}" and "${byStart[i].name}" overlap`, byStart[i].offset);
  }
  return { version, alignment, metadata, tensors, dataOffset, fileSize: c.fileSize };
}

/** Parses a GGUF held in memory (`bytes` is the whole file). */
export function parseGGUF(bytes: Uint8Array): GGUFFile {
  // With the whole file in memory, every short read is a malformed-file error, never NeedMoreBytes.
  return parseWith(new Cursor(bytes, bytes.length));
}

const FIRST_READ_BYTES = 1 << 20;

/** Reads and validates the header, metadata and tensor table of a GGUF file. */
export function readGGUF(path: string): GGUFFile {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading otherwise blocks the event loop until a writer
    // appears, forever if none does; with it the open returns and fstat refuses the FIFO.
    // Regular files read the same either way.
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new TesseraError("ERR_IO", `cannot open ${path}: ${err.code ?? err.message}; check the path and permissions`);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile())
      throw new TesseraError("ERR_IO", `${path} is not a regular file (a directory, FIFO or device); pass a .gguf model file`);
    const fileSize = stat.size;
    // The header is usually a few MB at most (vocabularies); read a prefix and grow it only
    // when the parse runs past it.
    for (let want = Math.min(FIRST_READ_BYTES, fileSize); ; want = Math.min(want * 4, fileSize)) {
      const bytes = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const n = fs.readSync(fd, bytes, got, want - got, got);
        if (n === 0) break;
        got += n;
      }
      try {
        return parseWith(new Cursor(bytes.subarray(0, got), fileSize));
      } catch (e) {
        if (!(e instanceof NeedMoreBytes) || want >= fileSize) {
          if (e instanceof NeedMoreBytes) throw new TesseraError("ERR_IO", `${path} changed size while being read; try again`);
          throw e;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}
