/**
 * The model the package ships (models/stories260K.gguf): loadModel() without a path loads it,
 * and `tessera run` without a model path generates with it — the README's main job on a
 * fresh install, with no ../shared and no download. It is the same file as the shared one.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_MODEL, loadModel } from "../../lib/index.js";
import { hasShared, repoRoot, stories260K } from "../helpers/paths.js";

describe("the embedded default model", () => {
  it("loadModel() loads stories260K from the package, with its licence beside it", async () => {
    expect(DEFAULT_MODEL).toBe(path.join(repoRoot, "models/stories260K.gguf"));
    expect(fs.readFileSync(path.join(repoRoot, "models/stories260K.LICENSE"), "utf8")).toMatch(/MIT License/);
    if (hasShared) expect(fs.readFileSync(DEFAULT_MODEL).equals(fs.readFileSync(stories260K))).toBe(true);
    const model = await loadModel({ backend: "cpu", threads: 1 });
    try {
      expect(model.info.architecture).toBe("llama");
      expect(model.info.nVocab).toBe(512);
      const viaUndefined = await loadModel(undefined, { backend: "cpu", threads: 1 });
      const a = await model.complete("Once upon a time", { temperature: 0, maxTokens: 30 });
      const b = await viaUndefined.complete("Once upon a time", { temperature: 0, maxTokens: 30 });
      viaUndefined.dispose();
      expect(a.text).toBe(b.text);
      expect(a.tokens.length).toBe(30);
    } finally {
      model.dispose();
    }
  });

  it("`tessera run --prompt` needs no model path", () => {
    const cli = path.join(repoRoot, "dist/lib/cli/main.js");
    const out = execFileSync(process.execPath, [cli, "run", "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "30", "--threads", "1"], { encoding: "utf8" });
    expect(out.trim().length).toBeGreaterThan(20);
  });
});
