/**
 * A greedy verification pass (EvaluateRequest.greedyRows) copies the rows greedy sampling can
 * reach: every row up to and including the first whose argmax is not the request's next
 * token, those rows bit-identical to a full copy; argmaxRows holds every row's pick.
 */
import { describe, expect, it } from "vitest";
import { loadModel } from "../../lib/index.js";
import { argmax } from "../../lib/sampling/sampler.js";
import { hasShared, stories260K } from "../helpers/paths.js";

describe.runIf(hasShared)("greedy verification rows", () => {
  it("copies rows up to the first mispredicted one, and every row's argmax", async () => {
    const model = await loadModel(stories260K, { threads: 1 });
    try {
      const nVocab = model.info.nVocab;
      const prompt = model.tokenizer.encode("Once upon a time, there was a little girl", { addSpecial: true });
      // The model's own greedy continuation: 6 tokens it predicts, then one it does not.
      const cont = (await model.complete(prompt, { maxTokens: 6, temperature: 0, ignoreEos: true })).tokens;
      const wrong = (cont[5] + 1) % nVocab;
      const guesses = [...cont.slice(0, 5), wrong, cont[0], cont[1]];
      const last = prompt[prompt.length - 1];
      const tokens = [last, ...guesses];

      const run = async (greedyRows: boolean) => {
        const s = model.createSession();
        await s.evaluate(prompt.slice(0, -1));
        const out = new Float32Array(tokens.length * nVocab).fill(Number.NaN);
        const res = await s.run(undefined, tokens, true, undefined, out, greedyRows);
        s.dispose();
        return { out, res };
      };
      const full = await run(false);
      const greedy = await run(true);
      // Rows 0..5 predict cont[0..5]; row 5 predicts cont[5], the request's next token there is `wrong`.
      for (let i = 0; i < tokens.length; i++) {
        const row = (r: Float32Array) => r.subarray(i * nVocab, (i + 1) * nVocab);
        expect(greedy.res.argmaxRows![i], `argmax row ${i}`).toBe(argmax(row(full.out)));
        if (i <= 5) expect(row(greedy.out), `row ${i}`).toEqual(row(full.out));
        else expect(Number.isNaN(row(greedy.out)[0]), `row ${i} left uncopied`).toBe(true);
      }
      expect(full.res.argmaxRows!.slice(0, 6)).toEqual(Int32Array.from(cont.slice(0, 6)));
    } finally {
      model.dispose();
    }
  });
});
