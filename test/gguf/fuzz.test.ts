/**
 * Mutation fuzzing of the GGUF reader: every mutated file must either parse into a
 * self-consistent header or throw a coded TesseraError — never a RangeError, TypeError or a
 * hang. Mutations target both random bytes and the integer fields that size allocations.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { TesseraError } from "../../lib/errors.js";
import { parseGGUF, readGGUF } from "../../lib/gguf/reader.js";
import { GGML_TYPE_INFO, GGMLType, GGUFValueType, type GGUFFile } from "../../lib/gguf/types.js";
import { encodeGGUF, kv } from "../../lib/gguf/writer.js";
import { Rng } from "../../lib/sampling/rng.js";
import { tempDir } from "../helpers/paths.js";
import { everyTypeSpec } from "../helpers/gguf-specs.js";

const ALLOWED = new Set(["ERR_GGUF_MALFORMED", "ERR_GGUF_UNSUPPORTED", "ERR_UNSUPPORTED_QUANT_TYPE"]);

function vocabLikeFile(): Uint8Array {
  const tokens = Array.from({ length: 300 }, (_, i) => (i < 256 ? `<0x${i.toString(16).toUpperCase().padStart(2, "0")}>` : `▁tok${i}`));
  return encodeGGUF({
    metadata: [
      ["general.architecture", kv.str("llama")],
      ["llama.block_count", kv.u32(1)],
      ["tokenizer.ggml.model", kv.str("llama")],
      ["tokenizer.ggml.tokens", kv.strArray(tokens)],
      ["tokenizer.ggml.scores", kv.f32Array(Float32Array.from(tokens, (_, i) => -i))],
      ["tokenizer.ggml.token_type", kv.i32Array(Int32Array.from(tokens, (_, i) => (i < 256 ? 6 : 1)))],
    ],
    tensors: [
      { name: "token_embd.weight", type: GGMLType.F16, dims: [32, 300], data: new Uint8Array(32 * 300 * 2).fill(0x3c) },
      { name: "blk.0.attn_q.weight", type: GGMLType.Q4_0, dims: [32, 32], data: new Uint8Array(32 * 18).fill(7) },
    ],
  });
}

/** Checks the invariants the native loader relies on. */
function checkConsistent(f: GGUFFile): void {
  expect([2, 3]).toContain(f.version);
  expect(f.dataOffset).toBeLessThanOrEqual(f.fileSize);
  for (const t of f.tensors) {
    const info = GGML_TYPE_INFO[t.type];
    expect(info).toBeDefined();
    expect(t.dims.length).toBeGreaterThanOrEqual(1);
    expect(t.dims.length).toBeLessThanOrEqual(4);
    expect(t.byteLength).toBe((t.dims.reduce((a, b) => a * b, 1) / info.blockSize) * info.typeSize);
    expect(t.offset).toBeGreaterThanOrEqual(f.dataOffset);
    expect(t.offset + t.byteLength).toBeLessThanOrEqual(f.fileSize);
  }
}

const INTERESTING_U32 = [0, 1, 2, 3, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 13, 30, 77];
const INTERESTING_U64 = [0n, 1n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 64n - 1n];

function mutate(src: Uint8Array, rng: Rng): Uint8Array {
  const pick = (n: number) => Math.floor(rng.next() * n);
  // Mutations cluster in the header, where the parser's decisions are.
  let b = Uint8Array.from(src);
  const headerBias = () => (rng.next() < 0.8 ? pick(Math.min(b.length, 2048)) : pick(b.length));
  const rounds = 1 + pick(4);
  for (let r = 0; r < rounds; r++) {
    const dv = new DataView(b.buffer);
    switch (pick(7)) {
      case 0: {
        const at = headerBias();
        b[at] ^= 1 << pick(8);
        break;
      }
      case 1:
        b[headerBias()] = pick(256);
        break;
      case 2: {
        const at = Math.min(headerBias(), b.length - 4);
        if (at >= 0) dv.setUint32(at, INTERESTING_U32[pick(INTERESTING_U32.length)], true);
        break;
      }
      case 3: {
        const at = Math.min(headerBias(), b.length - 8);
        if (at >= 0) dv.setBigUint64(at, INTERESTING_U64[pick(INTERESTING_U64.length)], true);
        break;
      }
      case 4:
        b = b.subarray(0, pick(b.length + 1));
        break;
      case 5: {
        const at = headerBias();
        const n = 1 + pick(16);
        const out = new Uint8Array(b.length + n);
        out.set(b.subarray(0, at));
        for (let i = 0; i < n; i++) out[at + i] = pick(256);
        out.set(b.subarray(at), at + n);
        b = out;
        break;
      }
      default: {
        const at = headerBias();
        const n = 1 + pick(16);
        const out = new Uint8Array(b.length - Math.min(n, b.length - at));
        out.set(b.subarray(0, at));
        out.set(b.subarray(at + (b.length - out.length)), at);
        b = out;
      }
    }
  }
  return Uint8Array.from(b);
}

function outcome(parse: () => GGUFFile): "ok" | string {
  try {
    checkConsistent(parse());
    return "ok";
  } catch (e) {
    if (e instanceof TesseraError && ALLOWED.has(e.code)) return e.code;
    throw new Error(`uncoded failure: ${String(e)}`, { cause: e });
  }
}

describe("GGUF reader fuzzing", () => {
  const seeds = [
    encodeGGUF(everyTypeSpec()),
    encodeGGUF(everyTypeSpec(64)),
    vocabLikeFile(),
  ];

  it("10,000 mutated in-memory files parse consistently or fail with a coded error", () => {
    // A fresh seed each run widens coverage over time; TESSERA_FUZZ_SEED replays a failure.
    const seed = Number(process.env.TESSERA_FUZZ_SEED ?? Date.now() >>> 0);
    const rng = new Rng(seed);
    const counts = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const file = mutate(seeds[i % seeds.length], rng);
      let result: string;
      try {
        result = outcome(() => parseGGUF(file));
      } catch (e) {
        const saved = path.join(tempDir("fuzz-fail"), "case.gguf");
        fs.writeFileSync(saved, file);
        throw new Error(`fuzz case ${i} of TESSERA_FUZZ_SEED=${seed} (file kept at ${saved}): ${String(e)}`, { cause: e });
      }
      counts.set(result, (counts.get(result) ?? 0) + 1);
    }
    // The mutations must exercise both outcomes, or the fuzzer is not testing anything.
    expect(counts.get("ok") ?? 0).toBeGreaterThan(100);
    expect(counts.get("ERR_GGUF_MALFORMED") ?? 0).toBeGreaterThan(1000);
  });

  it("500 mutated files on disk behave like their in-memory parse", () => {
    const dir = tempDir("fuzz");
    const rng = new Rng(12345);
    for (let i = 0; i < 500; i++) {
      const bytes = mutate(seeds[i % seeds.length], rng);
      const file = path.join(dir, `m${i}.gguf`);
      fs.writeFileSync(file, bytes);
      expect(outcome(() => readGGUF(file))).toBe(outcome(() => parseGGUF(bytes)));
    }
  });

  it("nested arrays deeper than the limit are rejected", () => {
    let value: { itemType: GGUFValueType; items: unknown } = { itemType: GGUFValueType.UINT8, items: Uint8Array.from([1]) };
    for (let d = 0; d < 6; d++) value = { itemType: GGUFValueType.ARRAY, items: [value] };
    const bytes = encodeGGUF({ metadata: [["deep", { type: GGUFValueType.ARRAY, value: value as never }]], tensors: [] });
    expect(outcome(() => parseGGUF(bytes))).toBe("ERR_GGUF_MALFORMED");
  });
});
