/**
 * Acceptance: greedy decode of the real stories260K model from BOS reproduces the golden
 * 200 tokens and text (derived independently: fp64 numpy, llama.cpp, llama2.c), through the
 * API and through the CLI.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../../lib/index.js";
import { hasShared, repoRoot, sharedDir, stories260K } from "../helpers/paths.js";

interface Golden {
  prompt_tokens: number[];
  greedy_tokens: number[];
  text: string;
}

describe.runIf(hasShared)("stories260K golden greedy output", () => {
  let golden: Golden;
  let model: Model;
  beforeAll(async () => {
    golden = JSON.parse(fs.readFileSync(path.join(sharedDir, "models/stories260K.golden.json"), "utf8")) as Golden;
    model = await loadModel(stories260K, { backend: "cpu", threads: 1 });
  });
  afterAll(() => model?.dispose());

  it("tokenizes BOS-only as the golden prompt", () => {
    expect(model.tokenizer.encode("", { addSpecial: true })).toEqual(golden.prompt_tokens);
  });

  it("reproduces all 200 tokens through session.evaluate and argmax", async () => {
    const session = model.createSession();
    let logits = await session.evaluate(golden.prompt_tokens);
    const produced: number[] = [];
    for (let i = 0; i < golden.greedy_tokens.length; i++) {
      let best = 0;
      for (let v = 1; v < logits.length; v++) if (logits[v] > logits[best]) best = v;
      produced.push(best);
      if (i + 1 < golden.greedy_tokens.length) logits = await session.evaluate([best]);
    }
    expect(produced).toEqual(golden.greedy_tokens);
    session.dispose();
  });

  it("reproduces the tokens and text through model.complete at temperature 0", async () => {
    const out = await model.complete("", { temperature: 0, maxTokens: 200, ignoreEos: true });
    expect(out.tokens).toEqual(golden.greedy_tokens);
    expect(out.text).toBe(golden.text);
    expect(model.tokenizer.decode(golden.greedy_tokens)).toBe(golden.text);
  });

  it("reproduces the text through `tessera run --temperature 0`", () => {
    const cli = path.join(repoRoot, "dist/lib/cli/main.js");
    const stdout = execFileSync(process.execPath, [cli, "run", stories260K, "--prompt", "", "--temperature", "0", "--max-tokens", "200", "--threads", "1"], {
      encoding: "utf8",
    });
    expect(stdout.replace(/\n$/, "")).toBe(golden.text);
  });
});
