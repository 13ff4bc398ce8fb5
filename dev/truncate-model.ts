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

/**
 * The next token of the quoting model below (writeCycleModel): t -> (85 t + 12347) mod V, an
 * affine map that, by the Hull-Dobell conditions for V = 2^a 3^b (84 divisible by 4 and 3,
 * 12347 prime to 6), runs through the whole vocabulary in one cycle; for other V, a cycle
 * still, through part of it.
 */
export function cycleNext(t: number, nVocab: number): number {
  return (85 * t + 12347) % nVocab;
}

/**
 * A copy of a Q8_0 model (its own output.weight, if any, replaced) whose every block writes `scale`
 * × its usual output into the residual stream, with an LM head whose row cycleNext(t) is the
 * embedding row of t. The residual stays close to the current token's embedding, whose dot
 * product with its own row dominates, so greedy decoding emits the cycle t, next(t), ... at
 * the full model's cost per token: given a passage of that cycle and its first tokens again,
 * the model quotes the rest of it, which is what prompt lookup guesses (a quoting/editing
 * task for a benchmark, where no trained model of that size exists).
 */
export function writeCycleModel(src: string, dst: string, scale: number): void {
  const file = readGGUF(src);
  const bytes = fs.readFileSync(src);
  const embd = file.tensors.find((t) => t.name === "token_embd.weight");
  if (!embd || embd.type !== GGMLType.Q8_0) throw new Error("writeCycleModel: token_embd.weight must be Q8_0");
  const nVocab = Number(embd.dims[1]);
  const rowBytes = embd.byteLength / nVocab;
  const src8 = new Uint8Array(bytes.buffer, bytes.byteOffset + embd.offset, embd.byteLength);
  const head = new Uint8Array(embd.byteLength);
  for (let t = 0; t < nVocab; t++) head.set(src8.subarray(t * rowBytes, (t + 1) * rowBytes), cycleNext(t, nVocab) * rowBytes);
  const tensors = file.tensors.filter((t) => t.name !== "output.weight").map((t) => {
    const data = new Uint8Array(bytes.buffer, bytes.byteOffset + t.offset, t.byteLength);
    if (!/^blk\.\d+\.(attn_output|ffn_down)\.weight$/.test(t.name)) return { name: t.name, type: t.type, dims: t.dims, data };
    if (t.type !== GGMLType.Q8_0) throw new Error(`writeCycleModel: ${t.name} is not Q8_0`);
    const out = new Uint8Array(data);
    const view = new DataView(out.buffer);
    for (let at = 0; at < out.length; at += 34) view.setUint16(at, toHalf(fromHalf(view.getUint16(at, true)) * scale), true);
    return { name: t.name, type: t.type, dims: t.dims, data: out };
  });
  tensors.push({ name: "output.weight", type: embd.type, dims: embd.dims, data: head });
  writeGGUF(dst, { metadata: [...file.metadata], tensors, alignment: file.alignment });
}
