/**
 * An exact vector index in one process: vectors in one growing Float32Array, top-k by
 * scoring every vector natively (native/cpu/vector_topk.cpp: AVX2 with a scalar fallback,
 * threads over the rows). Exact search over 100k x 384 reads 150 MB per query, a few ms;
 * about a million vectors of a few hundred dimensions fit (1M x 384 = 1.5 GB). Beyond that,
 * the LanceDB adapter (lancedb.ts) offers the same calls over a store on disk.
 *
 * Cosine vectors are normalized when added, so cosine search is a dot product. Removal
 * moves the last vector into the freed row (rows stay dense; the order of equal scores,
 * lower row first, can change after a removal).
 *
 * File format (save / loadVectorIndex), little-endian:
 *
 *   offset  size          field
 *   0       8             magic "TSVINDEX"
 *   8       4  u32        version (1)
 *   12      4  u32        dimensions
 *   16      4  u32        metric: 0 cosine, 1 dot, 2 l2
 *   20      4  u32        reserved (0)
 *   24      8  u64        count: vectors stored
 *   32      8  u64        idBytes: bytes of the id section
 *   40      count*dim*4   vectors, f32, row-major (cosine rows already unit length)
 *   ...     idBytes       ids, in row order: a tag byte, 0 = number (f64 follows),
 *                         1 = string (u32 byte length, then UTF-8)
 *   end-4   4  u32        CRC-32 of every byte before it
 *
 * loadVectorIndex checks every field, that the sizes add up to the file's, the checksum,
 * that ids are unique and vectors finite: any mismatch is ERR_INDEX_MALFORMED.
 */
import fs from "node:fs";
import os from "node:os";
import zlib from "node:zlib";
import { describe } from "../arguments.js";
import { TesseraError } from "../errors.js";
import { native } from "../native.js";

export type VectorMetric = "cosine" | "dot" | "l2";
export type VectorId = string | number;

export interface SearchHit {
  id: VectorId;
  /** cosine: similarity (1 best); dot: the dot product (higher is nearer); l2: Euclidean distance (0 best). */
  score: number;
}

export interface VectorIndexOptions {
  dimensions: number;
  /** Default "cosine". */
  metric?: VectorMetric;
  /** Threads a search uses. Default: the cores, at most 4 (a search is memory-bound). */
  threads?: number;
}

/** The calls both the in-process index and the LanceDB adapter answer (the adapter's are async). */
export interface VectorStore {
  readonly dimensions: number;
  readonly metric: VectorMetric;
  add(ids: readonly VectorId[], vectors: VectorsInput): void | Promise<void>;
  search(vector: ArrayLike<number>, k: number): SearchHit[] | Promise<SearchHit[]>;
  remove(ids: readonly VectorId[]): number | Promise<number>;
}

/** One vector per id: arrays, or one Float32Array of ids.length * dimensions values. */
export type VectorsInput = readonly ArrayLike<number>[] | Float32Array;

const METRICS: readonly VectorMetric[] = ["cosine", "dot", "l2"];
const MAGIC = "TSVINDEX";
const VERSION = 1;
const HEADER_BYTES = 40;
const MAX_DIMENSIONS = 65536;

export function checkMetric(metric: unknown): VectorMetric {
  if (typeof metric !== "string" || !(METRICS as readonly string[]).includes(metric))
    throw new TesseraError("ERR_INVALID_ARGUMENT", `metric must be one of ${METRICS.join(", ")}, got ${describe(metric)}`);
  return metric as VectorMetric;
}

export function checkDimensions(d: unknown): number {
  if (typeof d !== "number" || !Number.isInteger(d) || d < 1 || d > MAX_DIMENSIONS)
    throw new TesseraError("ERR_INVALID_ARGUMENT", `dimensions must be an integer in 1..${MAX_DIMENSIONS}, got ${describe(d)}`);
  return d;
}

export function checkId(id: unknown, where: string): VectorId {
  if (typeof id === "string" || (typeof id === "number" && Number.isFinite(id))) return id;
  throw new TesseraError("ERR_INVALID_ARGUMENT", `${where}: an id must be a string or a finite number, got ${describe(id)}`);
}

export function checkK(k: unknown): number {
  if (typeof k !== "number" || !Number.isInteger(k) || k < 1 || k > 1 << 20)
    throw new TesseraError("ERR_INVALID_ARGUMENT", `k must be an integer in 1..${1 << 20}, got ${describe(k)}`);
  return k;
}

/** The i-th vector of `vectors`, checked: dimensions long, finite. */
export function vectorAt(vectors: VectorsInput, i: number, dimensions: number, where: string): ArrayLike<number> {
  const v = vectors instanceof Float32Array ? vectors.subarray(i * dimensions, (i + 1) * dimensions) : vectors[i];
  if (v === null || typeof v !== "object" || typeof v.length !== "number")
    throw new TesseraError("ERR_INVALID_ARGUMENT", `${where}: vector ${i} must be an array of numbers, got ${describe(v)}`);
  if (v.length !== dimensions)
    throw new TesseraError("ERR_INVALID_ARGUMENT", `${where}: vector ${i} has ${v.length} values, the index ${dimensions} dimensions`);
  for (let j = 0; j < dimensions; j++)
    if (typeof v[j] !== "number" || !Number.isFinite(v[j]))
      throw new TesseraError("ERR_INVALID_ARGUMENT", `${where}: vector ${i} holds ${describe(v[j])} at ${j}; vectors must be finite numbers`);
  return v;
}

export function checkVectorCount(ids: readonly VectorId[], vectors: VectorsInput, dimensions: number, where: string): void {
  if (!Array.isArray(ids)) throw new TesseraError("ERR_INVALID_ARGUMENT", `${where}: ids must be an array, got ${describe(ids)}`);
  const n = vectors instanceof Float32Array ? vectors.length / dimensions : Array.isArray(vectors) ? vectors.length : -1;
  if (n !== ids.length)
    throw new TesseraError(
      "ERR_INVALID_ARGUMENT",
      `${where}: ${ids.length} ids need ${ids.length} vectors (an array of them, or a Float32Array of ${ids.length * dimensions} values)`,
    );
}

export class VectorIndex implements VectorStore {
  readonly dimensions: number;
  readonly metric: VectorMetric;
  private readonly threads: number;
  /** [capacity][dimensions]; rows [0, count) live. */
  private data: Float32Array;
  private count = 0;
  private ids: VectorId[] = [];
  private readonly rows = new Map<VectorId, number>();

  /** @internal Use createVectorIndex / loadVectorIndex. */
  constructor(dimensions: number, metric: VectorMetric, threads: number, capacity = 1024) {
    this.dimensions = dimensions;
    this.metric = metric;
    this.threads = threads;
    this.data = new Float32Array(capacity * dimensions);
  }

  /** Vectors stored. */
  get size(): number {
    return this.count;
  }

  has(id: VectorId): boolean {
    return this.rows.has(id);
  }

  /** The stored vector of id (normalized for cosine), or undefined. */
  get(id: VectorId): Float32Array | undefined {
    const r = this.rows.get(id);
    return r === undefined ? undefined : this.data.slice(r * this.dimensions, (r + 1) * this.dimensions);
  }

  /** Adds vectors; an id already present has its vector replaced. Cosine vectors must not be zero. */
  add(ids: readonly VectorId[], vectors: VectorsInput): void {
    const d = this.dimensions;
    checkVectorCount(ids, vectors, d, "add");
    // Everything is checked before the index changes (a bad vector leaves it as it was);
    // then the rows are copied in and, for cosine, scaled to unit length.
    const n = ids.length;
    const scale = new Float64Array(n).fill(1);
    const fresh = new Set<VectorId>();
    const flat = vectors instanceof Float32Array ? vectors : undefined;
    for (let i = 0; i < n; i++) {
      checkId(ids[i], "add");
      if (!this.rows.has(ids[i])) fresh.add(ids[i]);
      let ss = 0;
      if (flat) {
        for (let j = i * d, e = j + d; j < e; j++) ss += flat[j] * flat[j];
        if (!Number.isFinite(ss)) vectorAt(flat, i, d, "add"); // names the bad value
      } else {
        const v = vectorAt(vectors, i, d, "add");
        for (let j = 0; j < d; j++) ss += v[j] * v[j];
      }
      if (this.metric === "cosine") {
        if (!(ss > 0) || !Number.isFinite(ss))
          throw new TesseraError("ERR_INVALID_ARGUMENT", `add: vector ${i} is zero (or too large to normalize), which has no direction for cosine similarity`);
        scale[i] = 1 / Math.sqrt(ss);
      }
    }
    this.reserve(this.count + fresh.size);
    for (let i = 0; i < n; i++) {
      let row = this.rows.get(ids[i]);
      if (row === undefined) {
        row = this.count++;
        this.ids[row] = ids[i];
        this.rows.set(ids[i], row);
      }
      const o = row * d;
      if (flat) this.data.set(flat.subarray(i * d, (i + 1) * d), o);
      else this.data.set(vectors[i] as ArrayLike<number>, o);
      if (scale[i] !== 1) for (let j = o; j < o + d; j++) this.data[j] *= scale[i];
    }
  }

  /** The k nearest vectors, nearest first (fewer when the index holds fewer). */
  search(vector: ArrayLike<number>, k: number): SearchHit[] {
    checkK(k);
    const q = Float32Array.from(vectorAt([vector], 0, this.dimensions, "search"));
    if (this.count === 0) return [];
    if (this.metric === "cosine") {
      let ss = 0;
      for (let j = 0; j < q.length; j++) ss += q[j] * q[j];
      if (!(ss > 0)) throw new TesseraError("ERR_INVALID_ARGUMENT", "search: the query vector is zero, which has no direction for cosine similarity");
      const inv = 1 / Math.sqrt(ss);
      for (let j = 0; j < q.length; j++) q[j] *= inv;
    }
    const { rows, scores } = native().kernels.vectorTopK(this.data, this.count, this.dimensions, q, this.metric === "l2" ? 1 : 0, k, this.threads);
    const hits: SearchHit[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++)
      hits[i] = { id: this.ids[rows[i]], score: this.metric === "l2" ? Math.sqrt(Math.max(0, -scores[i])) : scores[i] };
    return hits;
  }

  /** Removes the ids present; returns how many were. */
  remove(ids: readonly VectorId[]): number {
    if (!Array.isArray(ids)) throw new TesseraError("ERR_INVALID_ARGUMENT", `remove: ids must be an array, got ${describe(ids)}`);
    const d = this.dimensions;
    let removed = 0;
    for (const id of ids) {
      const row = this.rows.get(id);
      if (row === undefined) continue;
      const last = --this.count;
      if (row !== last) {
        this.data.copyWithin(row * d, last * d, (last + 1) * d);
        this.ids[row] = this.ids[last];
        this.rows.set(this.ids[row], row);
      }
      this.ids.length = last;
      this.rows.delete(id);
      removed++;
    }
    return removed;
  }

  /** Writes the index to `path` (see the format above), through a temporary file renamed into place. */
  save(path: string): void {
    if (typeof path !== "string" || path.length === 0) throw new TesseraError("ERR_INVALID_ARGUMENT", "save needs a file path");
    const idParts: Buffer[] = [];
    for (const id of this.ids) {
      if (typeof id === "number") {
        const b = Buffer.alloc(9);
        b[0] = 0;
        b.writeDoubleLE(id, 1);
        idParts.push(b);
      } else {
        const s = Buffer.from(id, "utf8");
        const b = Buffer.alloc(5);
        b[0] = 1;
        b.writeUInt32LE(s.length, 1);
        idParts.push(b, s);
      }
    }
    const idSection = Buffer.concat(idParts);
    const header = Buffer.alloc(HEADER_BYTES);
    header.write(MAGIC, 0, "latin1");
    header.writeUInt32LE(VERSION, 8);
    header.writeUInt32LE(this.dimensions, 12);
    header.writeUInt32LE(METRICS.indexOf(this.metric), 16);
    header.writeBigUInt64LE(BigInt(this.count), 24);
    header.writeBigUInt64LE(BigInt(idSection.length), 32);
    const vectors = Buffer.from(this.data.buffer, this.data.byteOffset, this.count * this.dimensions * 4);
    let crc = crc32(header);
    crc = crc32(vectors, crc);
    crc = crc32(idSection, crc);
    const trailer = Buffer.alloc(4);
    trailer.writeUInt32LE(crc >>> 0, 0);
    const tmp = `${path}.tmp-${process.pid}`;
    try {
      const fd = fs.openSync(tmp, "w");
      try {
        for (const part of [header, vectors, idSection, trailer]) writeAll(fd, part);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, path);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw new TesseraError("ERR_IO", `could not write the vector index to ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  private reserve(rows: number): void {
    const d = this.dimensions;
    if (rows * d <= this.data.length) return;
    const grown = new Float32Array(Math.max(rows, 2 * (this.data.length / d)) * d);
    grown.set(this.data.subarray(0, this.count * d));
    this.data = grown;
  }

  /** @internal loadVectorIndex: adopts checked rows. */
  adopt(data: Float32Array, ids: VectorId[]): void {
    this.data = data;
    this.count = ids.length;
    this.ids = ids;
    ids.forEach((id, r) => this.rows.set(id, r));
  }
}

/** zlib.crc32 where Node has it (20.15+, 22.2+), else the same CRC-32 from a table. */
let crcTable: Int32Array | undefined;
function crc32(data: Uint8Array, crc = 0): number {
  const z = (zlib as { crc32?: (d: Uint8Array, c?: number) => number }).crc32;
  if (z) return z(data, crc) >>> 0;
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let c = ~crc;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function writeAll(fd: number, b: Buffer): void {
  for (let off = 0; off < b.length; ) off += fs.writeSync(fd, b, off, Math.min(b.length - off, 1 << 30));
}

function defaultThreads(threads: unknown): number {
  if (threads === undefined) return Math.max(1, Math.min(4, os.availableParallelism()));
  if (typeof threads !== "number" || !Number.isInteger(threads) || threads < 1 || threads > 256)
    throw new TesseraError("ERR_INVALID_ARGUMENT", `threads must be an integer in 1..256, got ${describe(threads)}`);
  return threads;
}

/** An empty exact index. */
export function createVectorIndex(options: VectorIndexOptions): VectorIndex {
  if (options === null || typeof options !== "object") throw new TesseraError("ERR_INVALID_ARGUMENT", "createVectorIndex({ dimensions, metric })");
  return new VectorIndex(checkDimensions(options.dimensions), checkMetric(options.metric ?? "cosine"), defaultThreads(options.threads));
}

/** Reads an index written by save(); a file that is not one is ERR_INDEX_MALFORMED. */
export function loadVectorIndex(path: string, options: { threads?: number } = {}): VectorIndex {
  const threads = defaultThreads(options.threads);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (e) {
    throw new TesseraError("ERR_IO", `could not read the vector index ${path}: ${(e as Error).message}`, { cause: e });
  }
  const bad = (why: string) => new TesseraError("ERR_INDEX_MALFORMED", `${path} is not a valid Tessera vector index: ${why}; save the index again`);
  if (bytes.length < HEADER_BYTES + 4) throw bad(`${bytes.length} bytes is shorter than the header`);
  if (bytes.toString("latin1", 0, 8) !== MAGIC) throw bad("wrong magic (not a vector index file)");
  const version = bytes.readUInt32LE(8);
  if (version !== VERSION) throw bad(`format version ${version}, this build reads ${VERSION}`);
  const dimensions = bytes.readUInt32LE(12);
  if (dimensions < 1 || dimensions > MAX_DIMENSIONS) throw bad(`dimensions ${dimensions} out of range`);
  const metric = METRICS[bytes.readUInt32LE(16)];
  if (metric === undefined) throw bad(`unknown metric ${bytes.readUInt32LE(16)}`);
  const count = bytes.readBigUInt64LE(24), idBytes = bytes.readBigUInt64LE(32);
  const vectorBytes = count * BigInt(dimensions) * 4n;
  if (BigInt(HEADER_BYTES) + vectorBytes + idBytes + 4n !== BigInt(bytes.length))
    throw bad(`header sizes (${count} vectors, ${idBytes} id bytes) do not add up to the file's ${bytes.length} bytes`);
  const end = bytes.length - 4;
  if (crc32(bytes.subarray(0, end)) !== bytes.readUInt32LE(end)) throw bad("checksum mismatch (the file is damaged)");
  const n = Number(count);
  const data = new Float32Array(Math.max(n, 1) * dimensions);
  new Uint8Array(data.buffer).set(bytes.subarray(HEADER_BYTES, HEADER_BYTES + Number(vectorBytes)));
  for (let i = 0; i < n * dimensions; i++) if (!Number.isFinite(data[i])) throw bad(`vector ${Math.floor(i / dimensions)} is not finite`);
  const ids: VectorId[] = new Array(n);
  const seen = new Set<VectorId>();
  let at = HEADER_BYTES + Number(vectorBytes);
  for (let i = 0; i < n; i++) {
    if (at >= end) throw bad(`the id section ends before id ${i}`);
    const tag = bytes[at++];
    let id: VectorId;
    if (tag === 0) {
      if (at + 8 > end) throw bad(`id ${i} runs past the id section`);
      id = bytes.readDoubleLE(at);
      at += 8;
      if (!Number.isFinite(id)) throw bad(`id ${i} is not a finite number`);
    } else if (tag === 1) {
      if (at + 4 > end) throw bad(`id ${i} runs past the id section`);
      const len = bytes.readUInt32LE(at);
      at += 4;
      if (at + len > end) throw bad(`id ${i} runs past the id section`);
      id = bytes.toString("utf8", at, at + len);
      at += len;
    } else {
      throw bad(`id ${i} has an unknown tag ${tag}`);
    }
    if (seen.has(id)) throw bad(`id ${JSON.stringify(id)} appears twice`);
    seen.add(id);
    ids[i] = id;
  }
  if (at !== end) throw bad("bytes left over after the last id");
  const index = new VectorIndex(dimensions, metric, threads, 1);
  index.adopt(data, ids);
  return index;
}
