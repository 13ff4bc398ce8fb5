/**
 * Lazy grammars on generate(): free text until a trigger, the grammar from the trigger's
 * first byte, then free again (or the end). stories260K writes "Lily" often, in pieces of
 * its SentencePiece vocabulary, so a trigger on it is text spread over several tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../../lib/index.js";
import { hasShared, stories260K } from "../helpers/paths.js";
import { code } from "../helpers/error-code.js";

describe.runIf(hasShared)("lazyGrammar on stories260K", () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(stories260K, { backend: "cpu", threads: 2 });
  });
  afterAll(() => model?.dispose());

  const grammar = 'root ::= "Lily" " was " ("happy" | "sad" | "very " ("big" | "small")) "."';

  it("free text until the trigger, the grammar after each one, then free text again", async () => {
    const prompt = "Once upon a time, there was a little girl named";
    const free = await model.complete(prompt, { temperature: 0, maxTokens: 120 });
    // The model writes "Lily" on its own (several times), followed by other words.
    const plainCount = free.text.split("Lily").length - 1;
    expect(plainCount).toBeGreaterThanOrEqual(2);
    expect(free.text).not.toMatch(/Lily was (happy|sad|very big|very small)\./);
    const tokensOfLily = model.tokenizer.encode(" Lily", { addSpecial: false });
    expect(tokensOfLily.length).toBeGreaterThan(1);

    for (const seed of [1, 2, 3]) {
      const r = await model.complete(prompt, { lazyGrammar: { grammar, triggers: ["Lily"] }, temperature: 0.8, seed, maxTokens: 120 });
      const parts = r.text.split("Lily");
      expect(parts.length, r.text).toBeGreaterThanOrEqual(2);
      // Every "Lily" goes on as the grammar says; the text between is the model's own.
      for (const after of parts.slice(1)) expect(after, r.text).toMatch(/^ was (happy|sad|very big|very small)\./);
      expect(["length", "eos"]).toContain(r.stopReason);
    }
    // Before the first trigger the text is what the model writes unconstrained (greedy: the same).
    const greedy = await model.complete(prompt, { lazyGrammar: { grammar, triggers: ["Lily"] }, temperature: 0, maxTokens: 120 });
    const cut = free.text.indexOf("Lily");
    expect(greedy.text.slice(0, cut + 4)).toBe(free.text.slice(0, cut + 4));
  });

  it('active from the first token, then: "end" stops when the grammar is finished', async () => {
    const r = await model.complete("Once upon a time", { lazyGrammar: { grammar: 'root ::= " Lily was " ("happy" | "sad") "."', active: true, then: "end" }, temperature: 1, seed: 5 });
    expect(r.text).toMatch(/^ ?Lily was (happy|sad)\.$/);
    expect(r.stopReason).toBe("grammar");
  });

  it("refuses bad lazy grammars with coded errors", async () => {
    const gen = (lazyGrammar: unknown, extra: object = {}) => model.complete("Once", { lazyGrammar: lazyGrammar as never, maxTokens: 4, ...extra });
    expect(await code(() => gen({ grammar })) /* no trigger, not active */).toBe("ERR_INVALID_ARGUMENT");
    expect(await code(() => gen({ grammar, triggers: [""] }))).toBe("ERR_INVALID_ARGUMENT");
    expect(await code(() => gen({ grammar, triggers: ["Lily"], then: "stop" }))).toBe("ERR_INVALID_ARGUMENT");
    expect(await code(() => gen({ grammar, triggers: ["Lily"], trigger: "x" }))).toBe("ERR_INVALID_ARGUMENT");
    expect(await code(() => gen({ grammar: "root ::= undefined-rule", triggers: ["Lily"] }))).toBe("ERR_INVALID_ARGUMENT");
    expect(await code(() => gen({ grammar, triggers: ["Lily"] }, { jsonSchema: { type: "object" } }))).toBe("ERR_INVALID_ARGUMENT");
  });
});
