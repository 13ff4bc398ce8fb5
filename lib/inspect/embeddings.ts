/**
 * The token embedding table as vectors to look at: a token's embedding (its row of
 * token_embd, dequantized), the tokens nearest a vector by cosine similarity, and vector
 * arithmetic over token embeddings ("king" - "man" + "woman"). Rows are read from the GGUF
 * file a chunk at a time (the weights in memory belong to the native backend, often
 * repacked), so a query over a 128k-token vocabulary streams the table once instead of
 * holding it dequantized in the JS heap.
 */
import fs from "node:fs";
import { TesseraError } from "../errors.js";
import { dequantize } from "../gguf/quantize.js";
import { GGML_TYPE_INFO, type GGUFTensorInfo } from "../gguf/types.js";
import type { Tokenizer } from "../tokenizer/index.js";

export interface NearToken {
  token: number;
  /** The token's text (its bytes decoded; special tokens as stored). */
  text: string;
  /** Cosine similarity with the query. */
  similarity: number;
}

/** A query: a vector, a token id, or token ids to add and subtract. */
export type EmbeddingQuery = ArrayLike<number> | number | { plus: number[]; minus?: number[] };

const ROWS_PER_READ = 2048;

export class TokenEmbeddings {
  readonly dim: number;
  readonly rows: number;
  private readonly rowBytes: number;

  constructor(
    private readonly path: string,
    private readonly tensor: GGUFTensorInfo,
    private readonly tokenizer: Tokenizer,
  ) {
    this.dim = tensor.dims[0];
    this.rows = tensor.dims[1];
    const info = GGML_TYPE_INFO[tensor.type];
    this.rowBytes = (this.dim / info.blockSize) * info.typeSize;
  }

  /** Token id's embedding vector. */
  get(id: number): Float32Array {
    this.checkId(id);
    return Float32Array.from(this.read(id, 1)[0]);
  }

  /** The vector of a query (a token's embedding, a sum and difference of them, or itself). */
  vector(q: EmbeddingQuery): Float32Array {
    if (typeof q === "number") return this.get(q);
    if (q !== null && typeof q === "object" && "plus" in q) {
      const plus = q.plus, minus = q.minus ?? [];
      if (!Array.isArray(plus) || plus.length === 0 || !Array.isArray(minus))
        throw new TesseraError("ERR_INVALID_ARGUMENT", "an arithmetic query is { plus: [token ids], minus?: [token ids] } with at least one id to add");
      const v = new Float32Array(this.dim);
      for (const id of plus) this.get(id).forEach((x, i) => (v[i] += x));
      for (const id of minus) this.get(id).forEach((x, i) => (v[i] -= x));
      return v;
    }
    if (q === null || typeof q !== "object" || typeof (q as ArrayLike<number>).length !== "number" || (q as ArrayLike<number>).length !== this.dim)
      throw new TesseraError("ERR_INVALID_ARGUMENT", `a query vector must have ${this.dim} values (the embedding width)`);
    return Float32Array.from(q as ArrayLike<number>);
  }

  /** The k tokens whose embeddings are most similar to the query by cosine; query tokens (plus/minus/id) excluded. */
  nearest(q: EmbeddingQuery, k = 10): NearToken[] {
    if (!Number.isInteger(k) || k < 1 || k > 1000) throw new TesseraError("ERR_INVALID_ARGUMENT", `k must be an integer in 1..1000, got ${String(k)}`);
    const v = this.vector(q);
    const exclude = new Set<number>(typeof q === "number" ? [q] : q !== null && typeof q === "object" && "plus" in q ? [...q.plus, ...(q.minus ?? [])] : []);
    let norm = 0;
    for (const x of v) norm += x * x;
    norm = Math.sqrt(norm) || 1;
    const best: Array<{ token: number; similarity: number }> = [];
    for (let first = 0; first < this.rows; first += ROWS_PER_READ) {
      const rows = this.read(first, Math.min(ROWS_PER_READ, this.rows - first));
      rows.forEach((row, r) => {
        const token = first + r;
        if (exclude.has(token)) return;
        let dot = 0, rn = 0;
        for (let i = 0; i < row.length; i++) {
          dot += row[i] * v[i];
          rn += row[i] * row[i];
        }
        const similarity = rn > 0 ? dot / (Math.sqrt(rn) * norm) : 0;
        if (best.length === k && similarity <= best[k - 1].similarity) return;
        let at = best.length;
        while (at > 0 && best[at - 1].similarity < similarity) at--;
        best.splice(at, 0, { token, similarity });
        if (best.length > k) best.pop();
      });
    }
    return best.map((b) => ({ ...b, text: new TextDecoder().decode(this.tokenizer.tokenBytes(b.token)) }));
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.rows)
      throw new TesseraError("ERR_INVALID_ARGUMENT", `token ${String(id)} is not in the embedding table (0..${this.rows - 1})`);
  }

  /** Rows [first, first + count) dequantized. */
  private read(first: number, count: number): Float64Array[] {
    const bytes = Buffer.alloc(count * this.rowBytes);
    const fd = fs.openSync(this.path, "r");
    try {
      fs.readSync(fd, bytes, 0, bytes.length, this.tensor.offset + first * this.rowBytes);
    } finally {
      fs.closeSync(fd);
    }
    const all = dequantize(this.tensor.type, bytes, count * this.dim);
    return Array.from({ length: count }, (_, r) => all.subarray(r * this.dim, (r + 1) * this.dim));
  }
}
