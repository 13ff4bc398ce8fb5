/**
 * A SentencePiece model file (tokenizer.model, a ModelProto protobuf) as the GGUF tokenizer
 * metadata a converter writes for it (tokenizer.ggml.model = "llama": tokens, scores, token
 * types, special ids, add_space_prefix), so Tessera's SentencePiece encoder runs on a
 * vocabulary that also ships as a Hugging Face tokenizer.json (Mistral v0.3).
 *
 * Only the fields used are decoded: ModelProto.pieces (1) = { piece (1), score (2), type (3) }
 * and ModelProto.normalizer_spec (3).add_dummy_prefix (3). SentencePiece's piece types number
 * as GGUF's token types do (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).
 */
import fs from "node:fs";
import type { GGUFFile, GGUFKV } from "../lib/gguf/types.js";
import { kv } from "../lib/gguf/writer.js";

class ProtoReader {
  at = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly end = bytes.length,
  ) {}

  varint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = this.bytes[this.at++];
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 128;
    }
  }

  /** Calls `field` with each field number and wire type; it reads the value or returns false to skip it. */
  fields(field: (n: number, wire: number) => boolean): void {
    while (this.at < this.end) {
      const key = this.varint();
      const n = Math.floor(key / 8);
      const wire = key & 7;
      if (field(n, wire)) continue;
      if (wire === 0) this.varint();
      else if (wire === 1) this.at += 8;
      else if (wire === 2) {
        const len = this.varint(); // (not `this.at += this.varint()`: that adds to the position before the length)
        this.at += len;
      }
      else if (wire === 5) this.at += 4;
      else throw new Error(`SentencePiece model: unsupported wire type ${wire}`);
    }
  }

  /** A length-delimited value as its own reader. */
  sub(): ProtoReader {
    const len = this.varint();
    const r = new ProtoReader(this.bytes, this.at + len);
    r.at = this.at;
    this.at += len;
    return r;
  }
}

export function sentencePieceMetadata(file: string): GGUFFile {
  const bytes = new Uint8Array(fs.readFileSync(file));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // A piece may be U+FEFF itself: a BOM is text here.
  const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  let addDummyPrefix = true;
  const top = new ProtoReader(bytes);
  top.fields((n, wire) => {
    if (n === 1 && wire === 2) {
      const p = top.sub();
      let piece = "";
      let score = 0;
      let type = 1;
      p.fields((m, w) => {
        if (m === 1 && w === 2) {
          const len = p.varint();
          piece = utf8.decode(bytes.subarray(p.at, p.at + len));
          p.at += len;
          return true;
        }
        if (m === 2 && w === 5) {
          score = view.getFloat32(p.at, true);
          p.at += 4;
          return true;
        }
        if (m === 3 && w === 0) {
          type = p.varint();
          return true;
        }
        return false;
      });
      tokens.push(piece);
      scores.push(score);
      types.push(type);
      return true;
    }
    if (n === 3 && wire === 2) {
      const spec = top.sub();
      spec.fields((m, w) => {
        if (m === 3 && w === 0) {
          addDummyPrefix = spec.varint() !== 0;
          return true;
        }
        return false;
      });
      return true;
    }
    return false;
  });
  const idOf = (text: string): number => {
    const id = tokens.indexOf(text);
    if (id < 0) throw new Error(`SentencePiece model ${file} has no ${text} piece`);
    return id;
  };
  const metadata = new Map<string, GGUFKV>([
    ["tokenizer.ggml.model", kv.str("llama")],
    ["tokenizer.ggml.tokens", kv.strArray(tokens)],
    ["tokenizer.ggml.scores", kv.f32Array(Float32Array.from(scores))],
    ["tokenizer.ggml.token_type", kv.i32Array(Int32Array.from(types))],
    ["tokenizer.ggml.bos_token_id", kv.u32(idOf("<s>"))],
    ["tokenizer.ggml.eos_token_id", kv.u32(idOf("</s>"))],
    ["tokenizer.ggml.unknown_token_id", kv.u32(idOf("<unk>"))],
    ["tokenizer.ggml.add_space_prefix", kv.bool(addDummyPrefix)],
  ]);
  return { metadata } as GGUFFile;
}
