import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isTesseraError } from "../../lib/errors.js";
import { parseGGUF, readGGUF } from "../../lib/gguf/reader.js";
import { GGMLType, GGUFValueType, type GGUFArray } from "../../lib/gguf/types.js";
import { encodeGGUF, writeGGUF } from "../../lib/gguf/writer.js";
import { everyTypeSpec } from "../helpers/gguf-specs.js";
import { hasShared, stories260K, tempDir } from "../helpers/paths.js";

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (e) {
    expect(isTesseraError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, but nothing was thrown`);
}

describe("GGUF writer → reader round trip", () => {
  it("keeps every metadata type, dims, types and tensor bytes", () => {
    const spec = everyTypeSpec();
    const bytes = encodeGGUF(spec);
    const file = parseGGUF(bytes);
    expect(file.version).toBe(3);
    expect(file.alignment).toBe(32);
    expect(file.dataOffset % 32).toBe(0);
    const m = file.metadata;
    expect(m.get("t.u8")!.value).toBe(250);
    expect(m.get("t.i8")!.value).toBe(-7);
    expect(m.get("t.u16")!.value).toBe(65000);
    expect(m.get("t.i16")!.value).toBe(-32000);
    expect(m.get("t.u32")!.value).toBe(4_000_000_000);
    expect(m.get("t.i32")!.value).toBe(-2_000_000_000);
    expect(m.get("t.f32")!.value).toBe(1.5);
    expect(m.get("t.f64")!.value).toBe(Math.PI);
    expect(m.get("t.u64")!.value).toBe(2n ** 63n + 5n);
    expect(m.get("t.i64")!.value).toBe(-(2n ** 62n));
    expect(m.get("t.bool")!.value).toBe(true);
    expect(m.get("t.str")!.value).toBe("héllo ✓ 🦙");
    expect((m.get("t.strs")!.value as GGUFArray).items).toEqual(["a", "", "ünïcode", "<0x0A>"]);
    expect(Array.from((m.get("t.i32s")!.value as GGUFArray).items as Int32Array)).toEqual([1, -2, 3]);
    expect(Array.from((m.get("t.f32s")!.value as GGUFArray).items as Float32Array)).toEqual([0.5, -0.25]);
    expect((m.get("t.bools")!.value as GGUFArray).items).toEqual([true, false, true]);
    const nested = (m.get("t.nested")!.value as GGUFArray).items as GGUFArray[];
    expect(Array.from(nested[0].items as Uint8Array)).toEqual([1, 2]);

    expect(file.tensors.map((t) => [t.name, t.type, t.dims, t.byteLength, t.elementCount])).toEqual([
      ["a", GGMLType.F32, [3, 2], 24, 6],
      ["b", GGMLType.Q8_0, [64], 68, 64],
      ["c", GGMLType.F16, [5, 1, 1, 3], 30, 15],
      ["d", GGMLType.Q4_K, [256, 2], 288, 512],
    ]);
    for (const [i, t] of file.tensors.entries()) {
      expect(t.offset % 32).toBe(0);
      expect(Buffer.from(bytes.subarray(t.offset, t.offset + t.byteLength))).toEqual(Buffer.from(spec.tensors[i].data as Uint8Array));
    }
  });

  it("honours general.alignment and reads from disk like from memory", () => {
    const dir = tempDir("gguf");
    const file = path.join(dir, "a64.gguf");
    writeGGUF(file, everyTypeSpec(64));
    const fromDisk = readGGUF(file);
    expect(fromDisk.alignment).toBe(64);
    for (const t of fromDisk.tensors) expect(t.offset % 64).toBe(0);
    expect(fromDisk).toEqual(parseGGUF(fs.readFileSync(file)));
  });

  it.runIf(hasShared)("reads the real stories260K model", () => {
    const f = readGGUF(stories260K);
    expect(f.metadata.get("general.architecture")!.value).toBe("llama");
    expect(f.metadata.get("llama.block_count")!.value).toBe(5);
    expect(((f.metadata.get("tokenizer.ggml.tokens")!.value as GGUFArray).items as string[]).length).toBe(512);
    const embd = f.tensors.find((t) => t.name === "token_embd.weight")!;
    expect(embd.dims).toEqual([64, 512]);
    for (const t of f.tensors) expect(t.offset + t.byteLength).toBeLessThanOrEqual(f.fileSize);
  });

  it("reads a file without tensors that ends inside the padding before its data section", () => {
    const full = encodeGGUF({ metadata: [["general.name", { type: GGUFValueType.STRING, value: "vocab only" }]], tensors: [] });
    const padded = parseGGUF(full);
    // Cutting the padding byte by byte: the cut that lands on the header's end, and every cut
    // after it, parses; the data section then starts at the end of the file.
    let parsed = 0;
    for (let cut = padded.dataOffset - padded.alignment + 1; cut <= padded.dataOffset; cut++) {
      let f;
      try {
        f = parseGGUF(full.subarray(0, cut));
      } catch (e) {
        expect(parsed, `cut ${cut} failed after a shorter cut parsed: ${String(e)}`).toBe(0);
        continue;
      }
      parsed++;
      expect(f.metadata.get("general.name")?.value).toBe("vocab only");
      expect(f.dataOffset).toBe(cut);
    }
    expect(parsed).toBeGreaterThan(1);
  });

  it("rejects a wrong data length at write time", () => {
    const spec = everyTypeSpec();
    spec.tensors[0].data = new Uint8Array(23);
    expectCode(() => encodeGGUF(spec), "ERR_INVALID_ARGUMENT");
  });
});

describe("malformed GGUF inputs give coded errors", () => {
  const good = encodeGGUF(everyTypeSpec());
  const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const copy = () => Uint8Array.from(good);

  it("bad magic", () => {
    const b = copy();
    b[0] = 0x47 ^ 0xff;
    expectCode(() => parseGGUF(b), "ERR_GGUF_MALFORMED");
  });
  it("empty and tiny files", () => {
    expectCode(() => parseGGUF(new Uint8Array(0)), "ERR_GGUF_MALFORMED");
    expectCode(() => parseGGUF(good.subarray(0, 3)), "ERR_GGUF_MALFORMED");
  });
  it("unsupported versions", () => {
    for (const v of [1, 4, 0x03000000]) {
      const b = copy();
      dv(b).setUint32(4, v, true);
      expectCode(() => parseGGUF(b), "ERR_GGUF_UNSUPPORTED");
    }
  });
  it("truncation anywhere in the header or data", () => {
    const headerEnd = parseGGUF(good).dataOffset;
    for (let cut = 4; cut < good.length; cut += cut < headerEnd ? 1 : 37) {
      const b = good.subarray(0, cut);
      expectCode(() => parseGGUF(b), "ERR_GGUF_MALFORMED");
    }
  });
  it("huge tensor and metadata counts", () => {
    for (const at of [8, 16]) {
      for (const v of [2n ** 64n - 1n, 2n ** 40n, 1_000_000n]) {
        const b = copy();
        dv(b).setBigUint64(at, v, true);
        expectCode(() => parseGGUF(b), "ERR_GGUF_MALFORMED");
      }
    }
  });
  it("huge string length", () => {
    const b = copy();
    dv(b).setBigUint64(24, 2n ** 63n, true); // length of the first key
    expectCode(() => parseGGUF(b), "ERR_GGUF_MALFORMED");
  });
  it("unknown metadata value type", () => {
    const b = copy();
    const keyLen = Number(dv(b).getBigUint64(24, true));
    dv(b).setUint32(32 + keyLen, 13, true);
    expectCode(() => parseGGUF(b), "ERR_GGUF_MALFORMED");
  });

  /** Rewrites one field of the last tensor's table entry: fields just before the data section. */
  function lastTensorField(field: "type" | "offset" | "ndims"): { b: Uint8Array; at: number } {
    const b = copy();
    const f = parseGGUF(b);
    // The table ends with ..., n_dims(u32), dims(u64 x n), type(u32), offset(u64), then padding.
    const name = Buffer.from(f.tensors[f.tensors.length - 1].name);
    const nameAt = Buffer.from(b).lastIndexOf(name, f.dataOffset);
    const ndimsAt = nameAt + name.length;
    const typeAt = ndimsAt + 4 + 8 * f.tensors[f.tensors.length - 1].dims.length;
    return { b, at: field === "ndims" ? ndimsAt : field === "type" ? typeAt : typeAt + 4 };
  }
  it("unknown tensor type", () => {
    const { b, at } = lastTensorField("type");
    dv(b).setUint32(at, 77, true);
    expectCode(() => parseGGUF(b), "ERR_UNSUPPORTED_QUANT_TYPE");
  });
  it("tensor data offset past EOF, misaligned, or overlapping", () => {
    for (const [v, code] of [
      [2n ** 62n, "ERR_GGUF_MALFORMED"],
      [BigInt(good.length), "ERR_GGUF_MALFORMED"],
      [33n, "ERR_GGUF_MALFORMED"],
      [0n, "ERR_GGUF_MALFORMED"],
    ] as const) {
      const { b, at } = lastTensorField("offset");
      dv(b).setBigUint64(at, v, true);
      expectCode(() => parseGGUF(b), code);
    }
  });
  it("too many dimensions", () => {
    const { b, at } = lastTensorField("ndims");
    dv(b).setUint32(at, 9, true);
    expectCode(() => parseGGUF(b), "ERR_GGUF_MALFORMED");
  });
  it("a missing file is an I/O error", () => {
    expectCode(() => readGGUF("/nonexistent/model.gguf"), "ERR_IO");
  });
});
