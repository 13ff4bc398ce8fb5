/**
 * The generation loop on the real stories260K model: seeded sampling is reproducible, stop
 * sequences end the text before the stop string, max tokens and EOS are honoured, streamed
 * chunks concatenate to the completion, and the CLI's inspect prints the tensor table.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, loadTokenizer, type Model } from "../../lib/index.js";
import { hasShared, repoRoot, stories260K } from "../helpers/paths.js";

describe.runIf(hasShared)("generation on stories260K", () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 256 });
  });
  afterAll(() => model?.dispose());

  it("same seed, same text; different seeds differ", async () => {
    const opts = { temperature: 1, topK: 40, topP: 0.95, maxTokens: 40 };
    const a = await model.complete("Once upon a time", { ...opts, seed: 7 });
    const b = await model.complete("Once upon a time", { ...opts, seed: 7 });
    const c = await model.complete("Once upon a time", { ...opts, seed: 8 });
    expect(a.text).toBe(b.text);
    expect(a.tokens).toEqual(b.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it("streams chunks that concatenate to the completion", async () => {
    let streamed = "";
    const tokens: number[] = [];
    for await (const chunk of model.generate("Lily", { temperature: 0, maxTokens: 30 })) {
      streamed += chunk.text;
      tokens.push(...chunk.tokens);
    }
    const whole = await model.complete("Lily", { temperature: 0, maxTokens: 30 });
    expect(streamed).toBe(whole.text);
    expect(tokens).toEqual(whole.tokens);
    expect(whole.stopReason === "length" || whole.stopReason === "eos").toBe(true);
  });

  it("stops before a stop sequence", async () => {
    const free = await model.complete("", { temperature: 0, maxTokens: 60 });
    const stop = free.text.slice(20, 26);
    const stopped = await model.complete("", { temperature: 0, maxTokens: 60, stop: [stop] });
    expect(stopped.stopReason).toBe("stop");
    expect(stopped.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
  });

  it("loadTokenizer reads the vocabulary without the weights", () => {
    const tok = loadTokenizer(stories260K);
    expect(tok.vocabSize).toBe(512);
    expect(tok.decode(tok.encode("Once upon a time", { addSpecial: false }))).toBe("Once upon a time");
  });

  it("tessera inspect prints metadata and the tensor table", () => {
    const out = execFileSync(process.execPath, [path.join(repoRoot, "dist/lib/cli/main.js"), "inspect", stories260K], { encoding: "utf8" });
    expect(out).toContain("general.architecture");
    expect(out).toContain("token_embd.weight");
    expect(out).toMatch(/blk\.4\.ffn_down\.weight\s+F32\s+\[172, 64\]/);
  });
});
