/**
 * Builds the native ModelPlan (native/core/model_plan.h) from a GGUF file and an
 * architecture description: resolves tensor names to indices, checks presence, shapes and
 * types, and encodes the block recipe. Everything a user could get wrong is reported here
 * with a coded error, before C++ sees the file.
 */
import { TesseraError } from "../errors.js";
import { BLOCK_TENSORS, GLOBAL_TENSORS, MATMUL_ROLES, blockTensorName, type BlockTensorRole } from "../arch/tensor-names.js";
import type { NativeLayer, NativePlan } from "../native.js";
import type { ArchDescription, Presence } from "../arch/types.js";
import { GGMLType, ggmlTypeName, type GGUFFile, type GGUFTensorInfo } from "../gguf/types.js";
import { computeTypeList, computeTypes, unsupportedWeightTypeList } from "./weight-types.js";
import { readHyperparameters, type Hyperparameters } from "./hparams.js";
import { checkMlaShape, mlaTensorShapes } from "./mla.js";

export type { NativeLayer, NativePlan, NativeTensor } from "../native.js";

class TensorIndex {
  private readonly byName = new Map<string, number>();
  constructor(private readonly tensors: GGUFTensorInfo[]) {
    tensors.forEach((t, i) => this.byName.set(t.name, i));
  }
  find(name: string): number | undefined {
    return this.byName.get(name);
  }
  info(index: number): GGUFTensorInfo {
    return this.tensors[index];
  }
  require(name: string, what: string): number {
    const i = this.byName.get(name);
    if (i === undefined)
      throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `the file has no tensor ${name} (${what}); it may be a different architecture or an incomplete conversion`);
    return i;
  }
}

function checkComputable(t: GGUFTensorInfo): void {
  if (!computeTypes().has(t.type))
    throw new TesseraError(
      "ERR_UNSUPPORTED_QUANT_TYPE",
      `tensor ${t.name} is ${ggmlTypeName(t.type)}, which Tessera cannot compute with; ` +
        `use a file quantized as ${computeTypeList()} (Q4_K_M works). Not supported yet: ${unsupportedWeightTypeList()}`,
    );
}

function checkF32(t: GGUFTensorInfo): void {
  if (t.type !== GGMLType.F32)
    throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `tensor ${t.name} must be F32, found ${ggmlTypeName(t.type)}`);
}

function roleTensor(index: TensorIndex, block: number, role: BlockTensorRole, presence: Presence, arch: ArchDescription): number | undefined {
  if (presence === "none") return undefined;
  const name = blockTensorName(block, role, arch.tensorNames);
  const i = presence === "required" ? index.require(name, role) : index.find(name);
  if (i === undefined) return undefined;
  const t = index.info(i);
  if (MATMUL_ROLES.has(role)) checkComputable(t);
  else checkF32(t);
  return i;
}

function ffnKindOf(hp: Hyperparameters, arch: ArchDescription, block: number): "dense" | "moe" {
  if (!hp.moe) return "dense";
  if (arch.ffn === "moe-after-leading-dense") return block < hp.moe.leadingDenseBlocks ? "dense" : "moe";
  return "moe";
}

const SSM_ROLES = ["ssmIn", "ssmConv1d", "ssmConv1dB", "ssmDtB", "ssmA", "ssmD", "ssmNorm", "ssmOut"] as const;

function buildLayer(index: TensorIndex, hp: Hyperparameters, arch: ArchDescription, block: number): NativeLayer {
  const kind = ffnKindOf(hp, arch, block);
  const layer: NativeLayer = { ffnKind: kind, slidingWindow: hp.windowedBlocks[block] ? hp.slidingWindow : 0 };
  if (hp.windowedBlocks[block] && hp.windowedRopeBase !== undefined) {
    layer.ropeFreqBase = hp.windowedRopeBase;
    layer.ropeFreqScale = 1;
  }
  const set = (role: BlockTensorRole, presence: Presence) => {
    const i = roleTensor(index, block, role, presence, arch);
    if (i !== undefined) layer[role] = i;
  };
  const normBias: Presence = arch.norm === "layer" ? "optional" : "none";
  const ssmBlock = arch.ssm !== undefined && hp.ssmBlocks?.[block] === true;
  if (ssmBlock) {
    // A Mamba-2 mixer in place of attention (shapes are checked natively against hp.ssm).
    set("attnNorm", "required");
    for (const role of SSM_ROLES) set(role, role === "ssmConv1dB" ? arch.ssm!.convBias : "required");
    if (arch.ssm!.blocks === "all") return layer;  // mamba2: no FFN either
  }
  if (arch.encoder) {
    // Post-norm: LayerNorm (weight and bias, as llama.cpp requires) after each residual add.
    const bias: Presence = arch.norm === "layer" ? "required" : "none";
    for (const role of ["attnOutNorm", "layerOutNorm"] as const) set(role, "required");
    for (const role of ["attnOutNormB", "layerOutNormB"] as const) set(role, bias);
  } else {
    if (!ssmBlock) set("attnNorm", "required");
    set("attnNormB", normBias);
    set("ffnNorm", "required");
    set("ffnNormB", normBias);
  }
  // llama.cpp's create_tensor_qkv: the fused projection when the file has it (its bias, or
  // else separate q/k/v biases), otherwise separate q/k/v.
  const fused = arch.encoder?.fusedQkv ?? arch.fusedQkv ?? "none";
  const useFused = fused === "required" || (fused === "optional" && index.find(blockTensorName(block, "wqkv", arch.tensorNames)) !== undefined);
  if (ssmBlock) {
    // no attention tensors
  } else if (hp.mla) setMlaAttention(index, hp, arch, block, layer);
  else if (useFused) {
    set("wqkv", "required");
    set("bqkv", arch.qkvBias);
    set("wo", "required");
  } else for (const role of ["wq", "wk", "wv", "wo"] as const) set(role, "required");
  if (!ssmBlock) {
    for (const role of ["bq", "bk", "bv"] as const) set(role, layer.bqkv !== undefined ? "none" : arch.qkvBias);
    set("bo", arch.outputBias);
    set("attnSinks", arch.attentionSinks ?? "none");
    set("qNorm", arch.qkNorm);
    set("kNorm", arch.qkNorm);
    // Gemma's post-norms: every block has both (llama.cpp requires them).
    set("attnPostNorm", arch.gemma ? "required" : "none");
    set("ffnPostNorm", arch.gemma ? "required" : "none");
  }
  if (kind === "dense" && arch.ffn === "dense-fused-gate-up") {
    for (const role of ["ffnUp", "ffnDown"] as const) set(role, "required");
  } else if (kind === "dense" && arch.ffn === "dense-ungated") {
    for (const role of ["ffnUp", "ffnDown"] as const) set(role, "required");
    for (const role of ["ffnUpB", "ffnDownB"] as const) set(role, arch.ffnBias);
  } else if (kind === "dense") {
    for (const role of ["ffnGate", "ffnUp", "ffnDown"] as const) set(role, "required");
    for (const role of ["ffnGateB", "ffnUpB", "ffnDownB"] as const) set(role, arch.ffnBias);
  } else {
    for (const role of ["ffnGateInp", "ffnGateExps", "ffnUpExps", "ffnDownExps"] as const) set(role, "required");
    set("ffnExpProbsB", arch.moe?.selectionBias ?? (arch.moe?.gating === "sigmoid" ? "optional" : "none"));
    for (const role of ["ffnGateInpB", "ffnGateExpsB", "ffnUpExpsB", "ffnDownExpsB"] as const) set(role, arch.moe?.biases ?? "none");
    const shared = arch.moe?.sharedExperts ?? "none";
    for (const role of ["ffnGateShexp", "ffnUpShexp", "ffnDownShexp"] as const) set(role, shared);
    set("ffnGateInpShexp", shared === "none" ? "none" : "optional");
  }
  return layer;
}

/** The MLA attention tensors of one block, each checked against the file's ranks. */
function setMlaAttention(index: TensorIndex, hp: Hyperparameters, arch: ArchDescription, block: number, layer: NativeLayer): void {
  const mla = hp.mla!;
  const shapes = mlaTensorShapes(mla, hp.nEmbd, hp.nHead);
  const roles: BlockTensorRole[] = mla.qLoraRank > 0 ? ["wqA", "qANorm", "wqB"] : ["wq"];
  roles.push("wkvA", "kvANorm", "wkB", "wvB", "wo");
  for (const role of roles) {
    const i = roleTensor(index, block, role, "required", arch)!;
    checkMlaShape(index.info(i), shapes[role]);
    layer[role] = i;
  }
}

export interface BuiltPlan {
  plan: NativePlan;
  hparams: Hyperparameters;
  nVocab: number;
  /** LongRoPE's two factor tensors (ArchDescription.longRope), for chooseRopeFactors. */
  ropeFactors?: { long?: number; short?: number };
}

export function buildPlan(file: GGUFFile, arch: ArchDescription): BuiltPlan {
  const hp = readHyperparameters(file, arch);
  const index = new TensorIndex(file.tensors);

  const tokEmbd = index.require(GLOBAL_TENSORS.tokEmbd, "token embeddings");
  const embd = index.info(tokEmbd);
  checkComputable(embd);
  if (embd.dims.length !== 2 || embd.dims[0] !== hp.nEmbd)
    throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `token_embd.weight has shape [${embd.dims}], expected [${hp.nEmbd}, n_vocab]`);
  const nVocab = embd.dims[1];
  // An encoder has no LM head: its hidden states are the last block's output.
  const lmHead = arch.encoder === undefined;
  const outputNorm = lmHead ? index.require(GLOBAL_TENSORS.outputNorm, "output norm") : undefined;
  if (outputNorm !== undefined) checkF32(index.info(outputNorm));
  const output = !lmHead || arch.tiedOutput
    ? undefined
    : arch.outputRequired
      ? index.require(GLOBAL_TENSORS.output, "LM head")
      : index.find(GLOBAL_TENSORS.output);
  if (output !== undefined) checkComputable(index.info(output));
  const inputs = encoderInputs(index, hp, arch);
  const ropeFreqs = optionalGlobal(index, GLOBAL_TENSORS.ropeFreqs, arch.ropeFreqs);
  const longRope = arch.longRope
    ? {
        long: optionalGlobal(index, GLOBAL_TENSORS.ropeFactorsLong, "optional"),
        short: optionalGlobal(index, GLOBAL_TENSORS.ropeFactorsShort, "optional"),
      }
    : undefined;
  const outputB = optionalGlobal(index, GLOBAL_TENSORS.outputB, arch.lmHeadBias);
  // RMSNorm has no bias: an rms architecture's file with one is refused, not run without it.
  const outputNormB = optionalGlobal(index, GLOBAL_TENSORS.outputNormB, arch.norm === "layer" && lmHead ? "optional" : "none");

  const layers: NativeLayer[] = [];
  for (let b = 0; b < hp.nLayer; b++) layers.push(buildLayer(index, hp, arch, b));
  // Widths come from the tensors; the metadata, where it gives one, must agree. C++ checks
  // every block's tensors against these (native/core/model.cpp).
  const fusedGateUp = arch.ffn === "dense-fused-gate-up";
  const nFf = ffnWidth(index, layers, arch.ffn === "dense-ungated" || fusedGateUp ? "ffnUp" : "ffnGate", hp.nFf,
    `${arch.name}.feed_forward_length`, fusedGateUp ? 2 : 1);
  if (nFf > 0) hp.nFf = nFf;
  if (hp.moe) {
    hp.moe.nFfExp = ffnWidth(index, layers, "ffnGateExps", hp.moe.nFfExp, `${arch.name}.expert_feed_forward_length`);
    ffnWidth(index, layers, "ffnGateShexp", hp.moe.nFfShexp, `${arch.name}.expert_shared_feed_forward_length`);
  }

  const plan: NativePlan = {
    architecture: arch.name,
    nLayer: hp.nLayer,
    nEmbd: hp.nEmbd,
    nHead: hp.nHead,
    nHeadKv: hp.nHeadKv,
    headDim: hp.headDim,
    headDimV: hp.headDimV,
    nFf,
    nFfExp: hp.moe?.nFfExp ?? 0,
    nVocab,
    nCtxTrain: hp.nCtxTrain,
    normEps: hp.normEps,
    norm: arch.norm,
    activation: arch.activation,
    // Gemma scales q instead: its softmax scale is 1.
    attnScale: hp.mla?.attnScale ?? (hp.queryScale !== 0 ? 1 : hp.multipliers.attention),
    queryScale: hp.queryScale,
    attnTempScale: hp.attnTemp.scale,
    attnTempFloor: hp.attnTemp.floor,
    attnLogitSoftcap: hp.gemma.attnSoftcap,
    finalLogitSoftcap: hp.gemma.finalSoftcap,
    // Gemma: sqrt(n_embd) in fp32 (llama.cpp's sqrtf).
    embeddingScale: arch.gemma ? Math.fround(Math.sqrt(hp.nEmbd)) : hp.multipliers.embedding,
    residualScale: hp.multipliers.residual,
    logitScale: hp.multipliers.logit,
    rope: {
      kind: hp.ropeOff ? "none" : arch.rope,
      nDims: hp.rope.nDims,
      freqBase: hp.rope.freqBase,
      freqScale: hp.rope.freqScale,
      scaling: hp.rope.scaling,
      nCtxOrig: hp.rope.nCtxOrig,
      yarnExtFactor: hp.rope.yarnExtFactor,
      yarnAttnFactor: hp.mla?.ropeYarnAttnFactor ?? hp.rope.yarnAttnFactor,
      yarnBetaFast: hp.rope.yarnBetaFast,
      yarnBetaSlow: hp.rope.yarnBetaSlow,
      // LongRoPE: the short factors until the context is known (chooseRopeFactors).
      freqFactors: ropeFreqs ?? longRope?.short ?? -1,
    },
    ssm: hp.ssm && { ...hp.ssm },
    mla: hp.mla && {
      qLoraRank: hp.mla.qLoraRank,
      kvLoraRank: hp.mla.kvLoraRank,
      headDimNope: hp.mla.headDimNope,
      headDimRope: hp.mla.headDimRope,
      headDimV: hp.mla.headDimV,
    },
    moe: hp.moe && {
      nExpert: hp.moe.nExpert,
      nExpertUsed: hp.moe.nExpertUsed,
      nExpertShared: hp.moe.nExpertShared,
      gating: hp.moe.gating,
      normTopK: hp.moe.normTopK,
      weightsScale: hp.moe.weightsScale,
      nGroup: hp.moe.nGroup,
      nGroupUsed: hp.moe.nGroupUsed,
    },
    causal: arch.encoder === undefined,
    postNorm: arch.encoder !== undefined,
    ffnGated: arch.ffn !== "dense-ungated",
    ffnFusedGateUp: fusedGateUp,
    lmHead,
    posEmbd: inputs.posEmbd ?? -1,
    tokenTypes: inputs.tokenTypes ?? -1,
    tokEmbdNorm: inputs.tokEmbdNorm ?? -1,
    tokEmbdNormB: inputs.tokEmbdNormB ?? -1,
    tokEmbd,
    outputNorm: outputNorm ?? -1,
    outputNormB: outputNormB ?? -1,
    output: output ?? -1,
    outputB: outputB ?? -1,
    layers,
    tensors: file.tensors.map((t) => ({
      name: t.name,
      type: t.type,
      dims: t.dims,
      offset: t.offset,
      byteLength: t.byteLength,
    })),
  };
  refuseUnusedTensors(file, plan, arch, [longRope?.long, longRope?.short]);
  checkFiniteReals(plan);
  return { plan, hparams: hp, nVocab, ropeFactors: longRope };
}

/**
 * LongRoPE's choice, once the context size is known: the long factors for a context longer
 * than the original (llama.cpp's n_ctx_seq > n_ctx_orig_yarn), else the short ones.
 */
export function chooseRopeFactors(built: BuiltPlan, contextSize: number): void {
  const f = built.ropeFactors;
  if (!f) return;
  const chosen = contextSize > built.plan.rope.nCtxOrig ? f.long : f.short;
  built.plan.rope.freqFactors = chosen ?? -1;
}

/**
 * C++ takes the plan's reals as fp32 and refuses non-finite ones as an invalid argument; a
 * value that only overflows once narrowed (1 / a denormal scaling factor) would pass the
 * per-key ranges, so the file is refused here, with the code a bad file gets.
 */
function checkFiniteReals(plan: NativePlan): void {
  const reals: Array<[string, number]> = [
    ["normEps", plan.normEps], ["attnScale", plan.attnScale], ["queryScale", plan.queryScale], ["attnTempScale", plan.attnTempScale],
    ["attnLogitSoftcap", plan.attnLogitSoftcap], ["finalLogitSoftcap", plan.finalLogitSoftcap],
    ["embeddingScale", plan.embeddingScale], ["residualScale", plan.residualScale], ["logitScale", plan.logitScale],
    // The RoPE style and scaling kind cross as strings; every other rope entry is a real.
    ...Object.entries(plan.rope).filter((e): e is [string, number] => e[0] !== "freqFactors" && typeof e[1] === "number"),
    ...(plan.moe ? ([["moe.weightsScale", plan.moe.weightsScale]] as Array<[string, number]>) : []),
  ];
  for (const [name, v] of reals)
    if (!Number.isFinite(Math.fround(v)))
      throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `the file's hyperparameters give ${name} = ${v}, which fp32 cannot hold; re-convert it`);
}

interface EncoderInputs {
  posEmbd?: number;
  tokenTypes?: number;
  tokEmbdNorm?: number;
  tokEmbdNormB?: number;
}

/**
 * An encoder's input tensors, shapes checked here (and again in C++): position_embd
 * [n_embd, context_length] (llama.cpp requires exactly the trained context), token_types
 * [n_embd, n_types], the embedding LayerNorm's weight and bias [n_embd]. The two tables are
 * read by row like token_embd, so any type it may have is allowed.
 */
function encoderInputs(index: TensorIndex, hp: Hyperparameters, arch: ArchDescription): EncoderInputs {
  const enc = arch.encoder;
  if (!enc) return {};
  const table = (name: string, presence: Presence, what: string, rows: number | undefined): number | undefined => {
    if (presence === "none") return undefined;
    const i = presence === "required" ? index.require(name, what) : index.find(name);
    if (i === undefined) return undefined;
    const t = index.info(i);
    checkComputable(t);
    if (t.dims.length !== 2 || t.dims[0] !== hp.nEmbd || (rows !== undefined && t.dims[1] !== rows))
      throw new TesseraError(
        "ERR_MODEL_INCOMPATIBLE",
        `tensor ${name} (${what}) has shape [${t.dims}], expected [${hp.nEmbd}, ${rows ?? "n"}]; the file is inconsistent, re-convert it`,
      );
    return i;
  };
  const vector = (name: string, what: string): number => {
    const i = index.require(name, what);
    const t = index.info(i);
    checkF32(t);
    if (t.dims.length !== 1 || t.dims[0] !== hp.nEmbd)
      throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `tensor ${name} (${what}) has shape [${t.dims}], expected [${hp.nEmbd}]`);
    return i;
  };
  return {
    posEmbd: table(GLOBAL_TENSORS.posEmbd, enc.positionEmbeddings, "position embeddings", hp.nCtxTrain > 0 ? hp.nCtxTrain : undefined),
    tokenTypes: table(GLOBAL_TENSORS.tokenTypes, enc.tokenTypes, "token-type embeddings", undefined),
    tokEmbdNorm: vector(GLOBAL_TENSORS.tokEmbdNorm, "embedding norm"),
    tokEmbdNormB: vector(GLOBAL_TENSORS.tokEmbdNormB, "embedding norm bias"),
  };
}

/** A file-wide optional tensor the architecture may have (F32), or undefined. */
function optionalGlobal(index: TensorIndex, name: string, presence: Presence): number | undefined {
  if (presence === "none") return undefined;
  const i = presence === "required" ? index.require(name, name) : index.find(name);
  if (i !== undefined) checkF32(index.info(i));
  return i;
}

/**
 * The hidden width of the blocks' `role` tensors (rows of [n_embd, width(, n_expert)]), 0
 * when no block has one. `declared` (the file's metadata; 0 when absent) must agree: a width
 * trusted from metadata alone sized buffers the tensors then overran.
 */
function ffnWidth(index: TensorIndex, layers: NativeLayer[], role: BlockTensorRole, declared: number, key: string, parts = 1): number {
  const layer = layers.find((l) => l[role] !== undefined);
  if (!layer) return 0;
  const t = index.info(layer[role]!);
  // A fused [gate | up] tensor holds `parts` widths side by side.
  const width = t.dims[1] / parts;
  if (t.dims.length < 2 || !Number.isInteger(width))
    throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `tensor ${t.name} has shape [${t.dims}], expected [n_embd, ${parts > 1 ? `${parts} x ` : ""}width]`);
  if (declared > 0 && declared !== width)
    throw new TesseraError(
      "ERR_MODEL_INCOMPATIBLE",
      `${key} = ${declared}, but tensor ${t.name} has shape [${t.dims}] (width ${width}); the file is inconsistent, re-convert it`,
    );
  return width;
}

/**
 * Every tensor in the file must be one the plan runs. llama.cpp refuses a file with tensors
 * its architecture does not create ("wrong number of tensors"); running without them (an
 * FFN bias, an LM head bias) would give a silently different model.
 */
function refuseUnusedTensors(file: GGUFFile, plan: NativePlan, arch: ArchDescription, alternatives: Array<number | undefined>): void {
  const used = new Set<number>([plan.tokEmbd, plan.outputNorm, plan.outputNormB, plan.output, plan.outputB, plan.rope.freqFactors]);
  // Tensors of which the context size picks one (LongRoPE's factors).
  for (const i of alternatives) if (i !== undefined) used.add(i);
  for (const i of [plan.posEmbd, plan.tokenTypes, plan.tokEmbdNorm, plan.tokEmbdNormB]) if (i !== undefined) used.add(i);
  for (const layer of plan.layers)
    for (const role of Object.keys(BLOCK_TENSORS) as BlockTensorRole[]) if (layer[role] !== undefined) used.add(layer[role]);
  const unused = file.tensors.filter((_, i) => !used.has(i)).map((t) => t.name);
  if (unused.length === 0) return;
  const more = unused.length > 1 ? ` (and ${unused.length - 1} more: ${unused.slice(1, 4).join(", ")}${unused.length > 4 ? ", ..." : ""})` : "";
  throw new TesseraError(
    "ERR_MODEL_INCOMPATIBLE",
    `the file has tensor ${unused[0]}${more}, which Tessera's ${arch.name} architecture does not use; ` +
      "running without it would compute a different model, so the file is refused (llama.cpp refuses it too). " +
      "It may be another architecture, a variant Tessera does not support, or a damaged conversion",
  );
}

