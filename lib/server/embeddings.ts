/**
 * POST /v1/embeddings, OpenAI's shape: `input` a string, an array of strings, an array of
 * token ids or an array of such arrays; `encoding_format` "float" (default) or "base64"
 * (little-endian float32 bytes, which the official client asks for and decodes itself);
 * `dimensions` only as the model's own width. Vectors come from model.embed with the
 * model's pooling, L2-normalized as OpenAI's are; every input of a request runs batched.
 */
import type { FastifyInstance } from "fastify";
import type { RouteContext } from "./server.js";
import { badRequest } from "./errors.js";

/** Inputs per request, as OpenAI's limit. */
const MAX_INPUTS = 2048;

export const embeddingsBodySchema = {
  type: "object",
  required: ["input"],
  additionalProperties: false,
  properties: {
    model: { type: "string" },
    input: {
      anyOf: [
        { type: "string" },
        { type: "array", minItems: 1, maxItems: MAX_INPUTS, items: { type: "string" } },
        { type: "array", minItems: 1, items: { type: "integer", minimum: 0 } },
        { type: "array", minItems: 1, maxItems: MAX_INPUTS, items: { type: "array", minItems: 1, items: { type: "integer", minimum: 0 } } },
      ],
    },
    encoding_format: { type: "string", enum: ["float", "base64"] },
    dimensions: { type: "integer", minimum: 1 },
    user: { type: "string", maxLength: 256 },
  },
} as const;

interface EmbeddingsBody {
  model?: string;
  input: string | string[] | number[] | number[][];
  encoding_format?: "float" | "base64";
  dimensions?: number;
  user?: string;
}

export function registerEmbeddings(ctx: RouteContext): void {
  const app: FastifyInstance = ctx.app;
  app.post<{ Body: EmbeddingsBody }>("/v1/embeddings", { schema: { body: embeddingsBodySchema } }, async (req, reply) => {
    const m = ctx.model();
    const b = req.body;
    ctx.checkModel(b.model);
    if (b.dimensions !== undefined && b.dimensions !== m.info.nEmbd)
      throw badRequest(`this model's embeddings have ${m.info.nEmbd} dimensions; omit dimensions or pass ${m.info.nEmbd}`, "dimensions");
    const inputs: Array<string | number[]> = typeof b.input === "string" ? [b.input] : typeof b.input[0] === "number" ? [b.input as number[]] : (b.input as Array<string | number[]>);
    const tokens = inputs.map((x, i) => {
      if (typeof x === "string") return m.tokenizer.encode(x);
      const bad = x.findIndex((t) => t >= m.info.nVocab);
      if (bad >= 0) throw badRequest(`token ${x[bad]} is not in the vocabulary (0..${m.info.nVocab - 1})`, typeof b.input[0] === "number" ? `input.${bad}` : `input.${i}.${bad}`);
      return x;
    });
    const promptTokens = tokens.reduce((a, t) => a + t.length, 0);
    ctx.note(req, { inputs: inputs.length, promptTokens });
    const vectors = await ctx.run(reply, (signal) => m.embed(tokens, { signal }));
    const base64 = b.encoding_format === "base64";
    return {
      object: "list",
      data: vectors.map((v, index) => ({
        object: "embedding",
        index,
        embedding: base64 ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") : Array.from(v),
      })),
      model: ctx.modelName,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    };
  });
}
