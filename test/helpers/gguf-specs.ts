import { GGMLType, GGUFValueType } from "../../lib/gguf/types.js";
import { kv, type GGUFSpec } from "../../lib/gguf/writer.js";

export function bytesOf(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) out[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  return out;
}

/** A file with one value of every metadata type and tensors of several types. */
export function everyTypeSpec(alignment?: number): GGUFSpec {
  return {
    alignment,
    metadata: [
      ["general.architecture", kv.str("llama")],
      ["t.u8", kv.u8(250)],
      ["t.i8", kv.i8(-7)],
      ["t.u16", kv.u16(65000)],
      ["t.i16", kv.i16(-32000)],
      ["t.u32", kv.u32(4_000_000_000)],
      ["t.i32", kv.i32(-2_000_000_000)],
      ["t.f32", kv.f32(1.5)],
      ["t.f64", kv.f64(Math.PI)],
      ["t.u64", kv.u64(2n ** 63n + 5n)],
      ["t.i64", kv.i64(-(2n ** 62n))],
      ["t.bool", kv.bool(true)],
      ["t.str", kv.str("héllo ✓ 🦙")],
      ["t.strs", kv.strArray(["a", "", "ünïcode", "<0x0A>"])],
      ["t.i32s", kv.i32Array(Int32Array.from([1, -2, 3]))],
      ["t.f32s", kv.f32Array(Float32Array.from([0.5, -0.25]))],
      ["t.bools", kv.array(GGUFValueType.BOOL, [true, false, true])],
      ["t.nested", kv.array(GGUFValueType.ARRAY, [{ itemType: GGUFValueType.UINT8, items: Uint8Array.from([1, 2]) }])],
    ],
    tensors: [
      { name: "a", type: GGMLType.F32, dims: [3, 2], data: bytesOf(24, 1) },
      { name: "b", type: GGMLType.Q8_0, dims: [64], data: bytesOf(68, 2) },
      { name: "c", type: GGMLType.F16, dims: [5, 1, 1, 3], data: bytesOf(30, 3) },
      { name: "d", type: GGMLType.Q4_K, dims: [256, 2], data: bytesOf(288, 4) },
    ],
  };
}

