/**
 * The explorer's JSON API (lib/server/explore.ts), typed as the page uses it. Shapes mirror
 * lib/inspect/explore.ts; they are restated here because the page compiles on its own.
 */

export interface TokenView { id: number; piece: string; bytes: number[]; special: boolean }
export interface ModelView {
  name: string | null; architecture: string; nLayer: number; nHead: number; nEmbd: number; nVocab: number;
  nExpert: number; nExpertUsed: number; contextSize: number; backend: string; maxTokens: number; maxPromptChars: number;
}
export interface LensCell { token: number; piece: string; prob: number }
export interface TraceView {
  tokens: TokenView[];
  layers: Array<{ layer: number; residualNorm: number[]; lens: LensCell[][]; experts?: Array<Array<{ expert: number; weight: number }>> }>;
  output: LensCell[];
}
export interface AttentionView { layer: number; nHead: number; weights: number[][][] }
export interface EmbeddingPoint { token: number; piece: string; x: number; y: number }
export interface EmbeddingView {
  explained: [number, number]; background: EmbeddingPoint[]; tokens: EmbeddingPoint[];
  nearest?: Array<{ token: number; piece: string; similarity: number }>;
}
export interface Sampling { temperature: number; topK: number; topP: number; minP: number }
export interface Candidate { token: number; piece: string; logit: number; prob: number; topK: boolean; topP: boolean; minP: boolean; final: number }
export interface DistributionView extends Sampling {
  vocabulary: number; afterTopK: number; afterTopP: number; afterMinP: number; entropy: number; finalEntropy: number; candidates: Candidate[];
}
export interface StepView { token: TokenView; final: number; prob: number; kvLength: number; evaluated: number; endOfGeneration: boolean }

/** Requests in flight, mirrored on <body data-pending> (tests and the busy cursor wait on it). */
let pending = 0;
function track(delta: number): void {
  pending += delta;
  document.body.dataset.pending = String(pending);
  document.body.style.cursor = pending > 0 ? "progress" : "";
}

async function call<T>(method: "GET" | "POST", route: string, body?: unknown): Promise<T> {
  track(1);
  try {
    const r = await fetch(`/explore/api/${route}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await r.json()) as T & { error?: { message: string } };
    if (!r.ok) throw new Error(json.error?.message ?? `${route}: HTTP ${r.status}`);
    return json;
  } finally {
    track(-1);
  }
}

export const api = {
  model: () => call<ModelView>("GET", "model"),
  tokenize: (text: string) => call<{ tokens: TokenView[] }>("POST", "tokenize", { text }),
  trace: (tokens: number[]) => call<TraceView>("POST", "trace", { tokens }),
  attention: (tokens: number[], layer: number) => call<AttentionView>("POST", "attention", { tokens, layer }),
  embeddings: (tokens: number[], selected?: number) => call<EmbeddingView>("POST", "embeddings", { tokens, selected }),
  distribution: (tokens: number[], sampling: Sampling) => call<DistributionView>("POST", "distribution", { tokens, sampling }),
  step: (session: string, tokens: number[], sampling: Sampling, seed: number) => call<StepView>("POST", "step", { session, tokens, sampling, seed }),
};
