/**
 * Multi-head latent attention (DeepSeek-V2/V3) in a GGUF file: its ranks and head sizes, the
 * softmax scale (with DeepSeek's YaRN mscale), and the shapes of its per-block tensors, all
 * checked against each other here so an inconsistent file fails with a coded error.
 *
 * Layout llama.cpp's converter writes (and the only one its current loader runs with the
 * absorbed, compressed cache): attention.head_count_kv = 1, attention.key_length =
 * kv_lora_rank + rope dims (the cached row: normalized latent, then RoPE'd k_pe),
 * attention.value_length = kv_lora_rank, attention.key_length_mla / value_length_mla = the
 * per-head q·k and v sizes, attn_k_b [nope, kv_lora, n_head] and attn_v_b [kv_lora, v, n_head].
 */
import { TesseraError } from "../errors.js";
import type { ArchDescription } from "../arch/types.js";
import type { GGUFFile, GGUFTensorInfo } from "../gguf/types.js";
import type { RopeHparams } from "./hparams.js";
import type { ModelMetadata } from "./metadata.js";

export interface MlaHparams {
  /** 0: q straight from attn_q (V2-Lite); else attn_q_a -> attn_q_a_norm -> attn_q_b. */
  qLoraRank: number;
  kvLoraRank: number;
  /** Per-head q/k sizes without and with RoPE, and the per-head value size. */
  headDimNope: number;
  headDimRope: number;
  headDimV: number;
  /** Softmax scale: mscale² / sqrt(nope + rope). */
  attnScale: number;
  /** The RoPE magnitude factor to run the q_pe/k_pe rotation with (see RopeHparams). */
  ropeYarnAttnFactor: number;
}

/** The standard attention shape the MLA cache runs as: MQA over rows of kv_lora + rope. */
export interface MlaBase {
  nHead: number;
  nHeadKv: number;
  headDim: number;
  headDimV: number;
  rope: RopeHparams;
}

function incompatible(message: string): never {
  throw new TesseraError("ERR_MODEL_INCOMPATIBLE", message);
}

export function readMlaHparams(
  file: GGUFFile,
  arch: ArchDescription,
  meta: ModelMetadata,
  base: MlaBase,
): MlaHparams {
  const a = arch.name;
  // Sizes are range-checked below, with messages that say how they relate.
  const get = (suffix: string) => meta.integer(`${a}.${suffix}`, { min: 0, max: 0xffffffff });
  const kvLoraRank = get("attention.kv_lora_rank");
  const keyLengthMla = get("attention.key_length_mla");
  const valueLengthMla = get("attention.value_length_mla");
  if (keyLengthMla === undefined || valueLengthMla === undefined) {
    if (file.tensors.some((t) => t.name.endsWith(".attn_kv_b.weight")))
      incompatible(
        `this ${a} file has the legacy unsplit attn_kv_b layout (no ${a}.attention.key_length_mla); ` +
          "re-convert it with a current llama.cpp convert_hf_to_gguf.py, which writes attn_k_b/attn_v_b",
      );
    incompatible(`the file has no ${a}.attention.key_length_mla / value_length_mla; re-convert it`);
  }
  if (kvLoraRank === undefined) incompatible(`the file has no ${a}.attention.kv_lora_rank; re-convert it`);
  const qLoraRank = get("attention.q_lora_rank") ?? 0;
  const rope = base.rope.nDims;
  for (const [key, v] of [["kv_lora_rank", kvLoraRank], ["q_lora_rank", qLoraRank], ["key_length_mla", keyLengthMla], ["value_length_mla", valueLengthMla]] as const)
    if (!Number.isInteger(v) || v < 0 || v > 1 << 16) incompatible(`${a}.attention.${key} = ${v} is not a valid size`);
  if (kvLoraRank < 1 || valueLengthMla < 1) incompatible(`${a}: kv_lora_rank and value_length_mla must be positive`);
  if (keyLengthMla <= rope)
    incompatible(`${a}.attention.key_length_mla = ${keyLengthMla} must exceed rope.dimension_count = ${rope}`);
  if (base.nHeadKv !== 1)
    incompatible(`${a}: the latent KV cache needs attention.head_count_kv = 1, the file has ${base.nHeadKv}`);
  if (base.headDim !== kvLoraRank + rope || base.headDimV !== kvLoraRank)
    incompatible(
      `${a}: attention.key_length = ${base.headDim} and value_length = ${base.headDimV} must be ` +
        `kv_lora_rank + rope dims = ${kvLoraRank + rope} and kv_lora_rank = ${kvLoraRank}`,
    );

  // DeepSeek's YaRN: the file stores 0.1 * mscale_all_dim; with it, RoPE runs without a
  // magnitude correction and the softmax scale carries (1 + 0.1 * mscale_all_dim * ln s)².
  // Every step is rounded to fp32 as llama.cpp computes it (in float, unfused), so that the
  // scale and the RoPE factor are its values to the bit: one ulp off in the softmax scale
  // moves fp16-rounded probabilities and from there int8 activation quanta.
  const f = Math.fround;
  const tenth = f(0.1);
  const logMulStored = meta.real(`${a}.rope.scaling.yarn_log_multiplier`, { min: 0, max: 1e6 });
  const logMul = logMulStored === undefined ? 0 : f(logMulStored / tenth);
  const attnFactor = f(base.rope.yarnAttnFactor);
  const yarn = base.rope.scaling === "yarn";
  const lnScale = base.rope.scaling === "none" ? 0 : f(Math.log(f(1 / f(base.rope.freqScale))));
  const ropeCorrection = f(f(tenth * lnScale) + 1);
  // The magnitude q_pe/k_pe end up with; RoPE applies the YaRN correction itself, so it runs
  // with that magnitude over the correction, and the softmax scale starts from the correction
  // times RoPE's factor (llama.cpp's attn_factor_org).
  const ropeMagnitude = yarn ? (logMulStored !== undefined || lnScale <= 0 ? 1 : ropeCorrection) : 1;
  const ropeAttnFactor = yarn ? f(f(ropeMagnitude * f(1 / ropeCorrection)) * attnFactor) : attnFactor;
  const scaleBase = f(ropeAttnFactor * ropeCorrection);
  const mscale = f(scaleBase * f(1 + f(f(tenth * logMul) * lnScale)));
  const attnScale = f(f(mscale * mscale) / f(Math.sqrt(keyLengthMla)));
  // Factors in range one by one can still multiply past fp32 (attn_factor 1e30, squared).
  if (!(attnScale > 0 && Number.isFinite(attnScale) && Number.isFinite(ropeAttnFactor)))
    incompatible(
      `${a}: rope.scaling.attn_factor, factor and yarn_log_multiplier give a softmax scale of ${attnScale} ` +
        `and a RoPE factor of ${ropeAttnFactor}; both must be finite and positive in fp32`,
    );
  return {
    qLoraRank,
    kvLoraRank,
    headDimNope: keyLengthMla - rope,
    headDimRope: rope,
    headDimV: valueLengthMla,
    attnScale,
    ropeYarnAttnFactor: ropeAttnFactor,
  };
}

/** The shape each MLA tensor must have (ggml order), by role. */
export function mlaTensorShapes(m: MlaHparams, nEmbd: number, nHead: number): Record<string, number[]> {
  const qWidth = nHead * (m.headDimNope + m.headDimRope);
  return {
    wq: [nEmbd, qWidth],
    wqA: [nEmbd, m.qLoraRank],
    qANorm: [m.qLoraRank],
    wqB: [m.qLoraRank, qWidth],
    wkvA: [nEmbd, m.kvLoraRank + m.headDimRope],
    kvANorm: [m.kvLoraRank],
    wkB: [m.headDimNope, m.kvLoraRank, nHead],
    wvB: [m.kvLoraRank, m.headDimV, nHead],
    wo: [nHead * m.headDimV, nEmbd],
  };
}

export function checkMlaShape(t: GGUFTensorInfo, want: number[]): void {
  const dims = [...t.dims];
  while (dims.length > want.length && dims[dims.length - 1] === 1) dims.pop();
  if (dims.length !== want.length || dims.some((d, i) => d !== want[i]))
    incompatible(`tensor ${t.name} has shape [${t.dims}], expected [${want}] from the file's MLA ranks and head sizes`);
}
