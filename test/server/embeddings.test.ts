/**
 * POST /v1/embeddings through the official `openai` client: strings, token arrays, both
 * encodings (the client asks for base64 by default and decodes it), usage, and 400/404 for
 * bad requests; the vectors are model.embed's.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../../lib/index.js";
import { createServer, type TesseraServer } from "../../lib/server/server.js";
import path from "node:path";
import { writeSyntheticModel } from "../../dev/synthetic-model.js";
import { hasShared, stories260K, tempDir } from "../helpers/paths.js";

describe.runIf(hasShared)("/v1/embeddings", () => {
  let model: Model;
  let server: TesseraServer;
  let client: OpenAI;

  beforeAll(async () => {
    model = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 256 });
    server = createServer({ model, modelName: "stories", parallel: 4, maxQueue: 8, log: () => {} });
    const base = await server.listen({ port: 0 });
    client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close(1000);
    model?.dispose();
  });

  it("embeds strings as model.embed does, in base64 (the client's default) and float", async () => {
    const texts = ["Once upon a time", "The cat sat on the mat", "Lily"];
    const local = await model.embed(texts);
    const r = await client.embeddings.create({ model: "stories", input: texts });
    expect(r.object).toBe("list");
    expect(r.model).toBe("stories");
    expect(r.data.map((d) => d.index)).toEqual([0, 1, 2]);
    for (let i = 0; i < texts.length; i++) expect(Float32Array.from(r.data[i].embedding)).toEqual(local[i]);
    const tokens = texts.reduce((a, t) => a + model.tokenizer.encode(t).length, 0);
    expect(r.usage).toEqual({ prompt_tokens: tokens, total_tokens: tokens });
    const f = await client.embeddings.create({ model: "stories", input: texts[1], encoding_format: "float" });
    expect(f.data).toHaveLength(1);
    expect(Float32Array.from(f.data[0].embedding)).toEqual(local[1]);
  });

  it("takes token arrays, one or many", async () => {
    const ids = model.tokenizer.encode("The dog ran");
    const [local] = await model.embed([ids]);
    const one = await client.embeddings.create({ model: "stories", input: ids, encoding_format: "float" });
    expect(Float32Array.from(one.data[0].embedding)).toEqual(local);
    const many = await client.embeddings.create({ model: "stories", input: [ids, ids.slice(0, 2)], encoding_format: "float" });
    expect(many.data).toHaveLength(2);
    expect(Float32Array.from(many.data[0].embedding)).toEqual(local);
    expect(many.usage.prompt_tokens).toBe(ids.length + 2);
  });

  it("answers bad requests with 400 naming the field, an unknown model with 404", async () => {
    const status = async (body: Record<string, unknown>) => {
      try {
        await client.embeddings.create(body as never);
        return { status: 200, param: undefined };
      } catch (e) {
        return { status: (e as { status: number }).status, param: (e as { param?: string }).param };
      }
    };
    expect(await status({ model: "stories", input: "x", dimensions: 3 })).toEqual({ status: 400, param: "dimensions" });
    expect((await status({ model: "stories", input: [] })).status).toBe(400);
    expect((await status({ model: "stories", input: [1, 999999] })).status).toBe(400);
    expect((await status({ model: "stories", input: "x", encoding_format: "int8" })).status).toBe(400);
    expect((await status({ model: "other", input: "x" })).status).toBe(404);
  });
});

describe.runIf(hasShared)("/v1/embeddings over an encoder (bert)", () => {
  let model: Model;
  let server: TesseraServer;
  let client: OpenAI;

  beforeAll(async () => {
    const file = path.join(tempDir("server-encoder"), "bert.gguf");
    writeSyntheticModel(
      file,
      { architecture: "bert", nLayer: 1, nEmbd: 64, nHead: 4, nHeadKv: 4, nFf: 128, contextLength: 512, poolingType: 2, encoder: { positionEmbeddings: true, fusedQkv: false, ffn: "gelu", biases: true } },
      { weights: "F32", vocab: "bert-bge", seed: 2 },
    );
    model = await loadModel(file, { backend: "cpu", threads: 2, contextSize: 128 });
    server = createServer({ model, modelName: "bge", parallel: 4, maxQueue: 8, log: () => {} });
    client = new OpenAI({ baseURL: `${await server.listen({ port: 0 })}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close(1000);
    model?.dispose();
  });

  it("embeds as model.embed does; a chat completion is a 400 saying to embed", async () => {
    const texts = ["retrieval augmented generation", "a second passage"];
    const local = await model.embed(texts);
    const r = await client.embeddings.create({ model: "bge", input: texts, encoding_format: "float" });
    for (let i = 0; i < texts.length; i++) expect(Float32Array.from(r.data[i].embedding)).toEqual(local[i]);
    const failure = await client.chat.completions.create({ model: "bge", messages: [{ role: "user", content: "hi" }] }).then(
      () => undefined,
      (e: { status: number; code: string; message: string }) => e,
    );
    expect(failure?.status).toBe(400);
    expect(failure?.code).toBe("err_unsupported");
    expect(failure?.message).toMatch(/embeddings/);
  });
});
