/** `tessera embed`: --help, texts from --text and --file, plain and --json output equal to model.embed. */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../lib/index.js";
import { hasShared, repoRoot, stories260K, tempDir } from "../helpers/paths.js";

const cli = path.join(repoRoot, "dist/lib/cli/main.js");
const tessera = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });

describe.runIf(hasShared)("tessera embed", () => {
  it("--help, and a bad flag or pooling is a usage error", () => {
    const r = tessera("embed", "--help");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^usage: tessera embed/);
    expect(tessera("embed", stories260K, "--no-such-flag").status).toBe(2);
    const bad = tessera("embed", stories260K, "--text", "x", "--pooling", "max");
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/ERR_INVALID_ARGUMENT.*pooling/);
  });

  it("prints model.embed's vectors for --text and --file, plain and as JSON", async () => {
    const texts = ["Once upon a time", "The cat sat"];
    const model = await loadModel(stories260K, { backend: "cpu", threads: 2 });
    const local = await model.embed(texts, { pooling: "mean" });
    model.dispose();
    const json = tessera("embed", stories260K, "--text", texts[0], "--text", texts[1], "--pooling", "mean", "--json", "--threads", "2");
    expect(json.status, json.stderr).toBe(0);
    const out = JSON.parse(json.stdout) as { dimensions: number; data: Array<{ index: number; embedding: number[] }> };
    expect(out.dimensions).toBe(64);
    expect(out.data.map((d) => d.index)).toEqual([0, 1]);
    for (let i = 0; i < 2; i++) expect(Float32Array.from(out.data[i].embedding)).toEqual(local[i]);
    const file = path.join(tempDir("cli-embed"), "texts.txt");
    fs.writeFileSync(file, `${texts[0]}\n\n${texts[1]}\n`);
    const plain = tessera("embed", stories260K, "--file", file, "--pooling", "mean", "--threads", "2");
    expect(plain.status, plain.stderr).toBe(0);
    const lines = plain.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    for (let i = 0; i < 2; i++) {
      const v = lines[i].split(" ").map(Number);
      expect(v).toHaveLength(64);
      for (let j = 0; j < 64; j++) expect(v[j]).toBeCloseTo(local[i][j], 6);
    }
  });
});
