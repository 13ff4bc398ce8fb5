/**
 * Request bodies of the OpenAI routes (JSON schemas Fastify validates before a handler runs:
 * a wrong or unknown field is a 400 naming it) and their translation into generation
 * options, plus the response objects. OpenAI's defaults apply where they differ from
 * Tessera's: temperature 1, top_p 1, no top-k or min-p, max_tokens 16 for completions.
 */
import type { Completion, GenerateOptions, GenerationChunk, StopReason } from "../generate/generate.js";
import type { TokenLogprob } from "../inspect/logprobs.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { badRequest } from "./errors.js";

const nullable = (schema: object) => ({ anyOf: [schema, { type: "null" }] });

/** Sampling fields both routes share. */
export const samplingProperties = {
  model: { type: "string", maxLength: 256 },
  max_tokens: nullable({ type: "integer", minimum: 0 }),
  temperature: nullable({ type: "number", minimum: 0, maximum: 2 }),
  top_p: nullable({ type: "number", minimum: 0, maximum: 1 }),
  n: nullable({ type: "integer", minimum: 1, maximum: 16 }),
  stream: nullable({ type: "boolean" }),
  stream_options: nullable({ type: "object", additionalProperties: false, properties: { include_usage: { type: "boolean" } } }),
  stop: nullable({ anyOf: [{ type: "string", minLength: 1 }, { type: "array", maxItems: 4, items: { type: "string", minLength: 1 } }] }),
  seed: nullable({ type: "integer" }),
  frequency_penalty: nullable({ type: "number", minimum: -2, maximum: 2 }),
  presence_penalty: nullable({ type: "number", minimum: -2, maximum: 2 }),
  user: { type: "string", maxLength: 256 },
} as const;

export const completionBodySchema = {
  type: "object",
  required: ["prompt"],
  additionalProperties: false,
  properties: {
    ...samplingProperties,
    prompt: {
      anyOf: [
        { type: "string" },
        { type: "array", minItems: 1, maxItems: 1, items: { type: "string" } },
        { type: "array", minItems: 1, items: { type: "integer", minimum: 0 } },
        { type: "array", minItems: 1, maxItems: 1, items: { type: "array", minItems: 1, items: { type: "integer", minimum: 0 } } },
      ],
    },
    logprobs: nullable({ type: "integer", minimum: 0, maximum: 20 }),
    echo: nullable({ type: "boolean", const: false }),
  },
} as const;

export interface SamplingBody {
  model?: string;
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  n?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  stop?: string | string[] | null;
  seed?: number | null;
  frequency_penalty?: number | null;
  presence_penalty?: number | null;
  user?: string;
}

export interface CompletionBody extends SamplingBody {
  prompt: string | string[] | number[] | number[][];
  logprobs?: number | null;
  echo?: boolean | null;
}

/** The generation options of a request (max tokens checked against the server's limit). */
export function generateOptions(b: SamplingBody, defaultMaxTokens: number, maxTokensLimit: number): GenerateOptions {
  const maxTokens = b.max_tokens ?? defaultMaxTokens;
  if (maxTokens > maxTokensLimit) throw badRequest(`max_tokens ${maxTokens} is over this server's limit of ${maxTokensLimit}`, "max_tokens");
  return {
    maxTokens,
    temperature: b.temperature ?? 1,
    topP: b.top_p ?? 1,
    topK: 0,
    minP: 0,
    seed: b.seed ?? undefined,
    stop: b.stop == null ? undefined : Array.isArray(b.stop) ? b.stop : [b.stop],
    frequencyPenalty: b.frequency_penalty ?? 0,
    presencePenalty: b.presence_penalty ?? 0,
  };
}

/** The prompt of a completion request: text, or token ids (one prompt per request). */
export function completionPrompt(b: CompletionBody): string | number[] {
  const p = b.prompt;
  if (typeof p === "string") return p;
  if (typeof p[0] === "string") return p[0] as string;
  if (Array.isArray(p[0])) return p[0] as number[];
  return p as number[];
}

export function finishReason(r: StopReason | undefined): "stop" | "length" {
  return r === "length" || r === "context" ? "length" : "stop";
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

/** Usage of a request's choices: the prompt once (it is shared), every choice's tokens. */
export function usageOf(choices: Array<Pick<Completion, "tokens" | "stats">>): Usage {
  const prompt = choices[0]?.stats.promptTokens ?? 0;
  const cached = choices[0]?.stats.cachedTokens ?? 0;
  const completion = choices.reduce((a, c) => a + c.tokens.length, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cached } };
}

/** A token as text for logprobs: its bytes decoded (a partial UTF-8 character as U+FFFD). */
export function tokenText(t: Tokenizer, id: number): string {
  return new TextDecoder().decode(t.tokenBytes(id));
}

/** The completions API's logprobs object for some tokens. */
export function completionLogprobs(t: Tokenizer, lps: TokenLogprob[], textOffset: number) {
  const tokens = lps.map((l) => tokenText(t, l.token));
  const offsets: number[] = [];
  let at = textOffset;
  for (const s of tokens) {
    offsets.push(at);
    at += s.length;
  }
  return {
    tokens,
    token_logprobs: lps.map((l) => l.logprob),
    top_logprobs: lps.map((l) => Object.fromEntries(l.top.map((x) => [tokenText(t, x.token), x.logprob]))),
    text_offset: offsets,
  };
}

export type { GenerationChunk };
