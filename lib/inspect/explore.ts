/**
 * What `tessera explore` shows, computed over one model as plain JSON-able objects (the HTTP
 * routes in lib/server/explore.ts only validate and forward): the tokens of a text with
 * their bytes; a trace of a token sequence (logit-lens grid, residual norms, MoE routing);
 * one layer's per-head attention; a 2-D projection of the token embeddings; the next-token
 * distribution through each sampler stage; and one generation step on a kept session, so
 * the KV cache visibly grows by one token per step.
 *
 * Limits keep one request cheap and its answer small: at most MAX_TOKENS tokens (and the
 * context size), attention for one layer at a time, at most EMBEDDING_POINTS background
 * points, STEP_SESSIONS kept sessions (the oldest is disposed).
 */
import { TesseraError } from "../errors.js";
import type { Model } from "../model/model.js";
import type { Session } from "../model/session.js";
import { Sampler } from "../sampling/sampler.js";
import { samplerStages, type SamplerStages } from "./sampler-stages.js";

/** Most tokens one request may carry (prompt plus generated). */
export const MAX_TOKENS = 256;
/** Most characters of a prompt. */
export const MAX_PROMPT_CHARS = 4000;
/** Background points of the embedding scatter (the whole vocabulary when smaller). */
export const EMBEDDING_POINTS = 1500;
/** Step sessions kept at once. */
export const STEP_SESSIONS = 8;

export interface TokenView {
  id: number;
  /** The token's text: its bytes as UTF-8 (U+FFFD where a character is split), or a label for special tokens. */
  piece: string;
  bytes: number[];
  special: boolean;
}

export interface ModelView {
  name: string | undefined;
  architecture: string;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  nVocab: number;
  nExpert: number;
  nExpertUsed: number;
  contextSize: number;
  backend: string;
  maxTokens: number;
  maxPromptChars: number;
}

export interface LensCell {
  token: number;
  piece: string;
  prob: number;
}

export interface TraceView {
  tokens: TokenView[];
  /** One entry per layer, in order. */
  layers: Array<{
    layer: number;
    residualNorm: number[];
    /** Per position, the lens top-k, most likely first. */
    lens: LensCell[][];
    /** MoE layers: per position, the routed experts and their weights. */
    experts?: Array<Array<{ expert: number; weight: number }>>;
  }>;
  /** The model's own next-token prediction at each position (its final logits' top-1). */
  output: LensCell[];
}

export interface AttentionView {
  layer: number;
  nHead: number;
  /** weights[head][query position] = weights over key positions 0..query. */
  weights: number[][][];
}

export interface EmbeddingPoint {
  token: number;
  piece: string;
  x: number;
  y: number;
}

export interface EmbeddingView {
  /** Share of the background's variance along each axis. */
  explained: [number, number];
  background: EmbeddingPoint[];
  /** The request's tokens, in order (repeats included). */
  tokens: EmbeddingPoint[];
  /** Nearest tokens by cosine to the selected one, when asked. */
  nearest?: Array<{ token: number; piece: string; similarity: number }>;
}

export interface DistributionView extends SamplerStages {
  candidates: Array<SamplerStages["candidates"][number] & { piece: string }>;
}

export interface StepView {
  /** The drawn token. */
  token: TokenView;
  /** Its probability of being drawn (after the sampler's stages) and under softmax(logits). */
  final: number;
  prob: number;
  /** Tokens in the session's KV cache after this step's evaluation (the sequence so far). */
  kvLength: number;
  /** Tokens this step had to evaluate (the whole prompt the first time, then 1). */
  evaluated: number;
  endOfGeneration: boolean;
}

export interface SamplingControls {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
}

/** A kept generation session: its tokens live in the KV cache between steps. */
interface StepSession {
  session: Session;
  used: number;
}

export class Explorer {
  private basis?: { mean: Float64Array; axes: [Float64Array, Float64Array]; explained: [number, number]; background: EmbeddingPoint[] };
  private readonly steps = new Map<string, StepSession>();
  private clock = 0;
  /** The last evaluated sequence's logits (moving a slider re-asks for the same sequence). */
  private lastLogits?: { key: string; logits: Float32Array };

  constructor(readonly model: Model) {}

  info(): ModelView {
    const i = this.model.info;
    return {
      name: i.name,
      architecture: i.architecture,
      nLayer: i.nLayer,
      nHead: i.nHead,
      nEmbd: i.nEmbd,
      nVocab: i.nVocab,
      nExpert: i.moe?.nExpert ?? 0,
      nExpertUsed: i.moe?.nExpertUsed ?? 0,
      contextSize: i.contextSize,
      backend: i.backend,
      maxTokens: this.maxTokens(),
      maxPromptChars: MAX_PROMPT_CHARS,
    };
  }

  maxTokens(): number {
    return Math.min(MAX_TOKENS, this.model.info.contextSize);
  }

  token(id: number): TokenView {
    const t = this.model.tokenizer;
    const bytes = t.tokenBytes(id);
    const special = t.isSpecial(id);
    let piece: string;
    if (special || bytes.length === 0) piece = id === t.bos ? "<BOS>" : id === t.eos ? "<EOS>" : `<${id}>`;
    else piece = new TextDecoder().decode(bytes);
    return { id, piece, bytes: Array.from(bytes), special };
  }

  tokenize(text: string, addSpecial = true): TokenView[] {
    if (text.length > MAX_PROMPT_CHARS) throw new TesseraError("ERR_INVALID_ARGUMENT", `the prompt has ${text.length} characters; the explorer takes at most ${MAX_PROMPT_CHARS}`);
    const ids = this.model.tokenizer.encode(text, { addSpecial });
    if (ids.length > this.maxTokens()) throw new TesseraError("ERR_INVALID_ARGUMENT", `the prompt is ${ids.length} tokens; the explorer takes at most ${this.maxTokens()}: shorten it`);
    return ids.map((id) => this.token(id));
  }

  /** Refuses sequences the explorer will not run (empty, too long, ids outside the vocabulary). */
  checkTokens(tokens: number[]): void {
    if (!Array.isArray(tokens) || tokens.length === 0) throw new TesseraError("ERR_INVALID_ARGUMENT", "tokens must be a non-empty array of token ids");
    if (tokens.length > this.maxTokens()) throw new TesseraError("ERR_INVALID_ARGUMENT", `${tokens.length} tokens; the explorer takes at most ${this.maxTokens()}`);
    const bad = tokens.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= this.model.info.nVocab);
    if (bad >= 0) throw new TesseraError("ERR_INVALID_ARGUMENT", `token ${String(tokens[bad])} at index ${bad} is not in the vocabulary (0..${this.model.info.nVocab - 1})`);
  }

  async trace(tokens: number[], topK = 3): Promise<TraceView> {
    this.checkTokens(tokens);
    const s = this.model.createSession();
    try {
      const t = await s.trace(tokens, { topK });
      // The model's own prediction at each position, from evaluateAll on a fresh session, in
      // chunks of positions so that a large vocabulary's logits stay within ~32 MB.
      const V = this.model.info.nVocab;
      const chunk = Math.max(1, Math.floor(8_000_000 / V));
      const output: LensCell[] = [];
      let lastRow = new Float32Array(0);
      const s2 = this.model.createSession();
      try {
        for (let at = 0; at < tokens.length; at += chunk) {
          const part = tokens.slice(at, at + chunk);
          const all = await s2.evaluateAll(part);
          for (let i = 0; i < part.length; i++) {
            const row = all.subarray(i * V, (i + 1) * V);
            let best = 0;
            for (let j = 1; j < V; j++) if (row[j] > row[best]) best = j;
            let z = 0;
            for (let j = 0; j < V; j++) z += Math.exp(row[j] - row[best]);
            output.push({ token: best, piece: this.token(best).piece, prob: 1 / z });
          }
          lastRow = all.slice((part.length - 1) * V, part.length * V);
        }
      } finally {
        s2.dispose();
      }
      this.lastLogits = { key: tokens.join(","), logits: lastRow };
      return {
        tokens: tokens.map((id) => this.token(id)),
        layers: t.layers.map((L) => ({
          layer: L.layer,
          residualNorm: L.residualNorm,
          lens: L.lens.map((cells) => cells.map((c) => ({ token: c.token, piece: this.token(c.token).piece, prob: c.prob }))),
          ...(L.experts && { experts: L.experts }),
        })),
        output,
      };
    } finally {
      s.dispose();
    }
  }

  async attention(tokens: number[], layer: number): Promise<AttentionView> {
    this.checkTokens(tokens);
    const nLayer = this.model.info.nLayer;
    if (!Number.isInteger(layer) || layer < 0 || layer >= nLayer) throw new TesseraError("ERR_INVALID_ARGUMENT", `layer must be in 0..${nLayer - 1}, got ${String(layer)}`);
    const s = this.model.createSession();
    try {
      const t = await s.trace(tokens, { layers: [layer], attention: true, topK: 0 });
      const L = t.layers[0];
      const nHead = L.attention![0].length;
      const weights = Array.from({ length: nHead }, (_, h) => L.attention!.map((heads) => Array.from(heads[h])));
      return { layer, nHead, weights };
    } finally {
      s.dispose();
    }
  }

  /**
   * The token embeddings projected on the first two principal components of a background
   * sample of the vocabulary (every token when it has at most EMBEDDING_POINTS, else evenly
   * spaced ids): the axes are computed once, so the scatter stays put between prompts.
   */
  embeddings(tokens: number[], selected?: number, k = 8): EmbeddingView {
    if (tokens.length > 0) this.checkTokens(tokens);
    const b = (this.basis ??= this.pca());
    const project = (id: number): EmbeddingPoint => {
      const v = this.model.tokenEmbedding(id);
      const [x, y] = b.axes.map((a) => {
        let d = 0;
        for (let i = 0; i < v.length; i++) d += (v[i] - b.mean[i]) * a[i];
        return d;
      });
      return { token: id, piece: this.token(id).piece, x, y };
    };
    const view: EmbeddingView = { explained: b.explained, background: b.background, tokens: tokens.map(project) };
    if (selected !== undefined) {
      this.checkTokens([selected]);
      view.nearest = this.model.nearestTokens(selected, k).map((n) => ({ token: n.token, piece: this.token(n.token).piece, similarity: n.similarity }));
    }
    return view;
  }

  private pca(): NonNullable<Explorer["basis"]> {
    const V = this.model.info.nVocab;
    const n = Math.min(V, EMBEDDING_POINTS);
    const ids = Array.from({ length: n }, (_, i) => Math.floor((i * V) / n));
    const rows = ids.map((id) => Float64Array.from(this.model.tokenEmbedding(id)));
    const d = rows[0].length;
    const mean = new Float64Array(d);
    for (const r of rows) for (let i = 0; i < d; i++) mean[i] += r[i] / n;
    for (const r of rows) for (let i = 0; i < d; i++) r[i] -= mean[i];
    let total = 0;
    for (const r of rows) for (let i = 0; i < d; i++) total += r[i] * r[i];
    // Power iteration on XᵀX without forming it (d can be thousands): v <- Xᵀ(X v), then
    // deflate by the first axis for the second. 60 iterations settle well past what a
    // scatter plot can show.
    const axes: Float64Array[] = [];
    for (let c = 0; c < 2; c++) {
      let v = new Float64Array(d).map((_, i) => Math.sin(i * 12.9898 + c * 78.233));
      for (let it = 0; it < 60; it++) {
        for (const a of axes) {
          let dot = 0;
          for (let i = 0; i < d; i++) dot += v[i] * a[i];
          for (let i = 0; i < d; i++) v[i] -= dot * a[i];
        }
        const next = new Float64Array(d);
        for (const r of rows) {
          let p = 0;
          for (let i = 0; i < d; i++) p += r[i] * v[i];
          for (let i = 0; i < d; i++) next[i] += p * r[i];
        }
        let norm = 0;
        for (let i = 0; i < d; i++) norm += next[i] * next[i];
        norm = Math.sqrt(norm);
        if (norm === 0) break;
        v = next.map((x) => x / norm);
      }
      // Orthogonal to the earlier axes exactly (the last product may lean back toward them).
      for (const a of axes) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += v[i] * a[i];
        for (let i = 0; i < d; i++) v[i] -= dot * a[i];
      }
      const len = Math.hypot(...v) || 1;
      axes.push(v.map((x) => x / len));
    }
    const background = rows.map((r, j) => {
      const [x, y] = axes.map((a) => {
        let p = 0;
        for (let i = 0; i < d; i++) p += r[i] * a[i];
        return p;
      });
      return { token: ids[j], piece: this.token(ids[j]).piece, x, y };
    });
    // The variance each axis carries, measured on the projections themselves (the Rayleigh
    // quotient: exact for the axis shown, however far the iteration got).
    const share = (k: "x" | "y") => (total > 0 ? background.reduce((a, p) => a + p[k] * p[k], 0) / total : 0);
    const explained: [number, number] = [share("x"), share("y")];
    return { mean, axes: [axes[0], axes[1]], explained, background };
  }

  /** The logits after the last of `tokens` (the last traced or evaluated sequence is reused). */
  async logits(tokens: number[]): Promise<Float32Array> {
    this.checkTokens(tokens);
    const key = tokens.join(",");
    if (this.lastLogits?.key === key) return this.lastLogits.logits;
    const s = this.model.createSession();
    try {
      const logits = await s.evaluate(tokens);
      this.lastLogits = { key, logits };
      return logits;
    } finally {
      s.dispose();
    }
  }

  async distribution(tokens: number[], controls: SamplingControls, show = 40): Promise<DistributionView> {
    const stages = samplerStages(await this.logits(tokens), controls, show);
    return { ...stages, candidates: stages.candidates.map((c) => ({ ...c, piece: this.token(c.token).piece })) };
  }

  /**
   * One generation step on the kept session `id`: evaluates what of `tokens` its KV cache
   * lacks (all of it the first time, or after an edit: the cache is cut back to the common
   * prefix), then draws the next token with the real Sampler seeded by `seed`.
   */
  async step(id: string, tokens: number[], controls: SamplingControls, seed: number): Promise<StepView> {
    this.checkTokens(tokens);
    if (tokens.length >= this.maxTokens()) throw new TesseraError("ERR_INVALID_ARGUMENT", `the sequence is at the explorer's limit of ${this.maxTokens()} tokens`);
    const sampler = new Sampler({ ...controls, seed, repeatPenalty: 1 });
    let kept = this.steps.get(id);
    if (!kept) {
      if (this.steps.size >= STEP_SESSIONS) {
        const oldest = [...this.steps.entries()].sort((a, b) => a[1].used - b[1].used)[0];
        oldest[1].session.dispose();
        this.steps.delete(oldest[0]);
      }
      kept = { session: this.model.createSession(), used: 0 };
      this.steps.set(id, kept);
    }
    kept.used = ++this.clock;
    const s = kept.session;
    const have = s.tokens;
    let common = 0;
    while (common < have.length && common < tokens.length && have[common] === tokens[common]) common++;
    // The last token must be evaluated to have its logits.
    if (common === tokens.length) common--;
    if (common < have.length) s.truncate(common);
    const fresh = tokens.slice(common);
    const logits = await s.evaluate(fresh);
    this.lastLogits = { key: tokens.join(","), logits: logits.slice() };
    const token = sampler.sample(logits.slice(), tokens);
    // The drawn token's chance under the stages (0 only if the stages and the sampler disagree).
    const survivors = samplerStages(logits, controls, 1).afterMinP;
    const stages = samplerStages(logits, controls, Math.min(1000, survivors));
    const final = stages.candidates.find((c) => c.token === token)?.final ?? 0;
    const max = stages.candidates[0].logit;
    let z = 0;
    for (const x of logits) if (x > -Infinity) z += Math.exp(x - max);
    return {
      token: this.token(token),
      final,
      prob: Math.exp(logits[token] - max) / z,
      kvLength: s.tokens.length,
      evaluated: fresh.length,
      endOfGeneration: this.model.tokenizer.isEndOfGeneration(token),
    };
  }

  dispose(): void {
    for (const k of this.steps.values()) k.session.dispose();
    this.steps.clear();
  }
}
