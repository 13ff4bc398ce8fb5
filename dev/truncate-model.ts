/** A copy of a GGUF model keeping only its first `blocks` blocks (a draft of the same family). */
import fs from "node:fs";
import { readGGUF } from "../lib/gguf/reader.js";
import { GGMLType, GGUFValueType } from "../lib/gguf/types.js";
import { dequantize, fromHalf, quantize, toHalf } from "../lib/gguf/quantize.js";
import { writeGGUF } from "../lib/gguf/writer.js";

/**
 * With `requantize`, the Q8_0 tensors kept are dequantized and quantized again in that type:
 * a draft is usually quantized harder than its target (its every step reads all its weights,
 * its LM head as large as the target's).
 */
export function writeTruncatedModel(src: string, dst: string, blocks: number, requantize?: GGMLType): void {
  const file = readGGUF(src);
  const arch = String(file.metadata.get("general.architecture")!.value);
  const bytes = fs.readFileSync(src);
  const metadata = [...file.metadata].map(([k, v]): [string, typeof v] =>
    k === `${arch}.block_count` ? [k, { type: GGUFValueType.UINT32, value: blocks }] : [k, v],
  );
  const tensors = file.tensors
    .filter((t) => {
      const m = /^blk\.(\d+)\./.exec(t.name);
      return !m || Number(m[1]) < blocks;
    })
    .map((t) => {
      const data = new Uint8Array(bytes.buffer, bytes.byteOffset + t.offset, t.byteLength);
      if (requantize === undefined || t.type !== GGMLType.Q8_0) return { name: t.name, type: t.type, dims: t.dims, data };
      const count = t.dims.reduce((a, b) => a * Number(b), 1);
      return { name: t.name, type: requantize, dims: t.dims, data: quantize(requantize, Float32Array.from(dequantize(GGMLType.Q8_0, data, count)), Number(t.dims[0])) };
    });
  writeGGUF(dst, { metadata, tensors, alignment: file.alignment });
}

/**
 * A copy of a Q8_0 or F32 GGUF model whose blocks from `from` on write `scale` × their usual
 * output into the residual stream (attn_output and ffn_down scaled). At a small scale those
 * blocks barely move the prediction, so the model truncated to its first `from` blocks is a
 * draft that agrees with it most of the time, at the full model's cost per token: the pair a
 * speculative-decoding benchmark needs when no trained draft/target pair exists.
 */
export function writeQuietTailModel(src: string, dst: string, from: number, scale: number): void {
  const file = readGGUF(src);
  const bytes = fs.readFileSync(src);
  const tensors = file.tensors.map((t) => {
    const data = new Uint8Array(bytes.buffer, bytes.byteOffset + t.offset, t.byteLength);
    const m = /^blk\.(\d+)\.(attn_output|ffn_down)\.weight$/.exec(t.name);
    if (!m || Number(m[1]) < from) return { name: t.name, type: t.type, dims: t.dims, data };
    const out = new Uint8Array(data);
    const view = new DataView(out.buffer);
    if (t.type === GGMLType.Q8_0) {
      // A Q8_0 block is an f16 scale and 32 int8 quants: scaling the f16 scales the block.
      for (let at = 0; at < out.length; at += 34) view.setUint16(at, toHalf(fromHalf(view.getUint16(at, true)) * scale), true);
    } else if (t.type === GGMLType.F32) {
      for (let at = 0; at < out.length; at += 4) view.setFloat32(at, view.getFloat32(at, true) * scale, true);
    } else throw new Error(`writeQuietTailModel: ${t.name} is neither Q8_0 nor F32`);
    return { name: t.name, type: t.type, dims: t.dims, data: out };
  });
  writeGGUF(dst, { metadata: [...file.metadata], tensors, alignment: file.alignment });
}
