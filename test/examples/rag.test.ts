/**
 * examples/rag.ts runs as written (dist/examples/rag.js, after tsc): with the shipped
 * stories260K alone, and with a synthetic qwen3 embedder (mean pooling) beside it, where a
 * question that is one passage's own text must retrieve that passage first.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { writeSyntheticModel } from "../../dev/synthetic-model.js";
import { hasShared, repoRoot, tempDir } from "../helpers/paths.js";

const script = path.join(repoRoot, "dist/examples/rag.js");
const rag = (...args: string[]) => spawnSync(process.execPath, [script, "--json", ...args], { encoding: "utf8" });

interface Out {
  retrieved: Array<{ id: string; score: number; text: string }>;
  answer: string;
  sources: string[];
}

describe.runIf(hasShared)("examples/rag.ts", () => {
  it("answers with the shipped model, citing the passages it retrieved", () => {
    const r = rag();
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Out;
    expect(out.retrieved).toHaveLength(3);
    expect(out.sources).toEqual(out.retrieved.map((h) => h.id));
    expect(out.answer.length).toBeGreaterThan(0);
    for (let i = 1; i < 3; i++) expect(out.retrieved[i].score).toBeLessThanOrEqual(out.retrieved[i - 1].score);
  });

  it("retrieves a passage first when asked its own text, with a synthetic embedder", () => {
    const file = path.join(tempDir("rag"), "embedder.gguf");
    writeSyntheticModel(file, { architecture: "qwen3", nLayer: 2, nEmbd: 128, nHead: 4, nHeadKv: 2, headDim: 32, nFf: 256, contextLength: 512, qkNorm: true, poolingType: 1 }, { weights: "F32", vocab: "stories", seed: 3 });
    const passage = "The shed holds a bicycle, three fishing rods and a box of old toys. Tom fixes the bicycle on rainy days.";
    const r = rag("--embed", file, "--question", passage, "--k", "2");
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Out;
    expect(out.retrieved[0]).toMatchObject({ id: "p3", text: passage });
    expect(out.retrieved[0].score).toBeCloseTo(1, 5);
    expect(out.sources).toEqual(["p3", out.retrieved[1].id]);
  });
});
