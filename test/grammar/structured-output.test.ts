/**
 * The acceptance test of constrained decoding: on stories260K and on a random-weight model
 * with the 128k Llama 3 byte-level vocabulary (which emits noise when unconstrained), every
 * one of 10 sampled generations (temperature 1, different seeds) for each of 56 schemas
 * (test/grammar/schemas.ts) parses and validates with ajv, and generations under llama.cpp's
 * arithmetic, c, chess, json and list grammars match the grammar by an independent
 * recognizer. maxTokens is tight enough that noise would often run past it: the constraint
 * must close its output in time, so a cut generation is never the excuse for bad output.
 */
import fs from "node:fs";
import path from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseGbnf } from "../../lib/grammar/gbnf.js";
import { loadModel, type Completion, type Model } from "../../lib/index.js";
import { writeSyntheticModel } from "../../dev/synthetic-model.js";
import { matchesGrammar } from "../helpers/grammar-matcher.js";
import { hasShared, repoRoot, stories260K, tempDir } from "../helpers/paths.js";
import { SCHEMAS } from "./schemas.js";

const SEEDS = 10;
const GRAMMARS = ["arithmetic", "c", "chess", "json", "list"];

interface Target {
  name: string;
  open: () => Promise<Model>;
  prompts: string[];
  maxTokens: number;
}

const targets: Target[] = [
  {
    name: "stories260K",
    open: () => loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 512 }),
    // "" is a BOS-only prompt: SentencePiece drops the first token's leading space there.
    prompts: ["Once upon a time", "", "Lily wanted"],
    maxTokens: 150,
  },
  {
    name: "random-weight llama3 vocabulary (128k)",
    open: async () => {
      const file = path.join(tempDir("structured"), "tiny-llama3.gguf");
      writeSyntheticModel(
        file,
        { architecture: "llama", nLayer: 1, nEmbd: 64, nHead: 2, nHeadKv: 1, nFf: 128, contextLength: 2048 },
        { weights: "Q8_0", vocab: "llama3", seed: 5 },
      );
      return loadModel(file, { backend: "cpu", threads: 2, contextSize: 512 });
    },
    prompts: ["Output JSON:", "{", "hello"],
    maxTokens: 120,
  },
];

function summarize(results: Completion[]): string {
  const reasons = new Map<string, number>();
  for (const r of results) reasons.set(r.stopReason, (reasons.get(r.stopReason) ?? 0) + 1);
  return [...reasons].map(([k, v]) => `${k} ${v}`).join(", ");
}

describe.runIf(hasShared)("structured output", () => {
  for (const target of targets) {
    describe(target.name, () => {
      let model: Model;
      beforeAll(async () => {
        model = await target.open();
      });
      afterAll(() => model?.dispose());

      it(`${SCHEMAS.length} schemas x ${SEEDS} generations parse and validate`, { timeout: 900_000 }, async () => {
        expect(SCHEMAS.length).toBeGreaterThanOrEqual(50);
        const ajv = new Ajv2020({ strict: false });
        const all: Completion[] = [];
        let generations = 0;
        for (const [k, { name, schema }] of SCHEMAS.entries()) {
          const validate = ajv.compile(schema);
          const prompt = target.prompts[k % target.prompts.length];
          // The seeds run together: the engine batches their steps.
          const results = await Promise.all(
            Array.from({ length: SEEDS }, (_, seed) => model.complete(prompt, { jsonSchema: schema, temperature: 1, seed, maxTokens: target.maxTokens })),
          );
          for (const [seed, r] of results.entries()) {
            let value: unknown;
            try {
              value = JSON.parse(r.text);
            } catch (e) {
              throw new Error(`${name}, seed ${seed} (${r.stopReason}): not JSON: ${JSON.stringify(r.text)}`, { cause: e });
            }
            expect(validate(value), `${name}, seed ${seed}: ${r.text}\n${JSON.stringify(validate.errors)}`).toBe(true);
            expect(r.tokens.length).toBeLessThanOrEqual(target.maxTokens);
            generations++;
          }
          all.push(...results);
        }
        expect(generations).toBeGreaterThanOrEqual(500);
        // Some of them ran into the token budget and were closed by it (and still validated).
        console.log(`${target.name}: ${generations} generations: ${summarize(all)}`);
      });

      it("llama.cpp's GBNF grammars are enforced", { timeout: 600_000 }, async () => {
        for (const name of GRAMMARS) {
          const text = fs.readFileSync(path.join(repoRoot, "test/fixtures/grammars", `${name}.gbnf`), "utf8");
          const g = parseGbnf(text);
          const results = await Promise.all(
            Array.from({ length: SEEDS }, (_, seed) => model.complete(target.prompts[0], { grammar: text, temperature: 1, seed, maxTokens: target.maxTokens })),
          );
          for (const [seed, r] of results.entries()) expect(matchesGrammar(g, r.text), `${name}, seed ${seed} (${r.stopReason}): ${JSON.stringify(r.text)}`).toBe(true);
          // Not all empty: the grammars were exercised.
          expect(results.some((r) => r.text.length > 10), name).toBe(true);
        }
      });
    });
  }
});
