/**
 * Native status codes map to lib/errors.ts codes in one place (native/addon/status_napi.cpp):
 * every code C++ can throw is one TypeScript declares, and a model or engine used after
 * dispose() is ERR_DISPOSED from C++ too, as the TypeScript checks in front of it say.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { architecture } from "../../lib/arch/registry.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import { buildPlan } from "../../lib/model/plan.js";
import { native } from "../../lib/native.js";
import { hasShared, repoRoot, stories260K } from "../helpers/paths.js";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe("native status codes", () => {
  it("every native error code is a TesseraErrorCode, ERR_DISPOSED and ERR_BUSY among them", () => {
    const declared = new Set([...fs.readFileSync(path.join(repoRoot, "lib/errors.ts"), "utf8").matchAll(/\|\s*"(ERR_[A-Z_0-9]+)"/g)].map((m) => m[1]));
    const codes = native().errorCodes();
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) expect(declared, c).toContain(c);
    expect(codes).toEqual(expect.arrayContaining(["ERR_DISPOSED", "ERR_BUSY"]));
  });

  it.runIf(hasShared)("a disposed native model or engine throws ERR_DISPOSED", async () => {
    const file = readGGUF(stories260K);
    const { plan } = buildPlan(file, architecture("llama"));
    const model = await native().loadModel(stories260K, plan, { backend: "cpu", threads: 1 });
    const engine = model.createEngine({ maxContext: 16, blocks: 1 });
    engine.dispose();
    const step = () => engine.step(Int32Array.of(1), Int32Array.of(0), Int32Array.of(0), Int32Array.of(0, 1), Int32Array.of(0), Int32Array.of(0), new Int32Array(0), new Float32Array(plan.nVocab));
    expect(codeOf(step)).toBe("ERR_DISPOSED");
    model.dispose();
    expect(codeOf(() => model.createEngine({ maxContext: 16, blocks: 1 }))).toBe("ERR_DISPOSED");
  });
});
