/**
 * session.trace(): one forward pass over new tokens that records, per layer and token, the
 * residual stream's norm, the logit lens (the layer's residual through the final norm and
 * the LM head: what the model would predict if it stopped there), per-head attention
 * weights for the layers asked, and mixture-of-experts routing. It runs on an opt-in native
 * path (a traced step runs alone), so ordinary decoding pays nothing for it.
 */
import { TesseraError } from "../errors.js";
import type { NativeTrace } from "../engine/engine.js";

export interface TraceOptions {
  /** Layers to report (default: all). Attention is recorded for these when `attention` is set. */
  layers?: number[];
  /** Record per-head attention weights of the reported layers. Default false. */
  attention?: boolean;
  /** Logit-lens alternatives per layer and token. Default 5; 0: no lens. */
  topK?: number;
  signal?: AbortSignal;
}

export interface LensEntry {
  token: number;
  /** Probability under the softmax of that layer's lens logits. */
  prob: number;
}

export interface LayerTrace {
  layer: number;
  /** L2 norm of the residual stream after the layer, per token. */
  residualNorm: number[];
  /** Per token: the layer's top-k predictions for the next token, most likely first. */
  lens: LensEntry[][];
  /** With `attention`: per token, per head, the weight of each position 0..pos of the token. */
  attention?: Float32Array[][];
  /** Mixture-of-experts layers: per token, the routed experts and their weights. */
  experts?: Array<Array<{ expert: number; weight: number }>>;
}

export interface TraceResult {
  /** The traced tokens and their positions. */
  tokens: number[];
  positions: number[];
  layers: LayerTrace[];
  /** The model's logits after the last token. */
  logits: Float32Array;
}

/** The layer mask and top-k of a trace request, checked. */
export function traceSpec(o: TraceOptions, nLayer: number): { topK: number; layers: number[]; attentionLayers?: Uint8Array } {
  if (o === null || typeof o !== "object") throw new TesseraError("ERR_INVALID_ARGUMENT", "trace options must be an object");
  const topK = o.topK ?? 5;
  if (!Number.isInteger(topK) || topK < 0 || topK > 100) throw new TesseraError("ERR_INVALID_ARGUMENT", `topK must be an integer in 0..100, got ${String(o.topK)}`);
  const layers = o.layers ?? Array.from({ length: nLayer }, (_, i) => i);
  if (!Array.isArray(layers) || layers.some((l) => !Number.isInteger(l) || l < 0 || l >= nLayer))
    throw new TesseraError("ERR_INVALID_ARGUMENT", `layers must be layer indices in 0..${nLayer - 1}`);
  let attentionLayers: Uint8Array | undefined;
  if (o.attention) {
    attentionLayers = new Uint8Array(nLayer);
    for (const l of layers) attentionLayers[l] = 1;
  }
  return { topK, layers: [...new Set(layers)].sort((a, b) => a - b), attentionLayers };
}

/** The native arrays of a traced step as per-layer records of the request's tokens. */
export function readTrace(t: NativeTrace, layers: number[], tokens: number[], positions: number[], nHead: number, nExpertUsed: number, logits: Float32Array): TraceResult {
  const n = tokens.length;
  const rows = t.rows;
  const slotOf = new Map<number, number>();
  if (t.attentionLayers) {
    let s = 0;
    t.attentionLayers.forEach((m, l) => m && slotOf.set(l, s++));
  }
  const out: LayerTrace[] = layers.map((layer) => {
    const rec: LayerTrace = { layer, residualNorm: [], lens: [] };
    for (let i = 0; i < n; i++) {
      const row = t.firstRow + i;
      rec.residualNorm.push(t.residualNorm[layer * rows + row]);
      const lens: LensEntry[] = [];
      for (let k = 0; k < t.topK; k++) {
        const at = (layer * rows + row) * t.topK + k;
        lens.push({ token: t.lensIds[at], prob: t.lensProbs[at] });
      }
      rec.lens.push(lens);
    }
    const slot = slotOf.get(layer);
    if (slot !== undefined && t.attention) {
      rec.attention = [];
      for (let i = 0; i < n; i++) {
        const row = t.firstRow + i;
        const heads: Float32Array[] = [];
        for (let h = 0; h < nHead; h++) {
          const at = ((slot * rows + row) * nHead + h) * t.positions;
          heads.push(t.attention.slice(at, at + positions[i] + 1));
        }
        rec.attention.push(heads);
      }
    }
    if (t.experts && t.expertWeights && t.experts[(layer * rows + t.firstRow) * nExpertUsed] >= 0) {
      rec.experts = [];
      for (let i = 0; i < n; i++) {
        const at = (layer * rows + t.firstRow + i) * nExpertUsed;
        rec.experts.push(Array.from({ length: nExpertUsed }, (_, k) => ({ expert: t.experts![at + k], weight: t.expertWeights![at + k] })));
      }
    }
    return rec;
  });
  return { tokens, positions, layers: out, logits };
}
