/**
 * Loading (issue 25): non-regular files are refused with ERR_IO without blocking (a FIFO
 * with no writer used to hang the event loop forever), in TypeScript and natively; mmap:
 * false reads the file so that truncating it under a live model is harmless (with a mapping
 * that is SIGBUS, as documented); the native load reports real per-tensor progress and stops
 * between tensors when its signal aborts, freeing what it built; and on the worker-thread
 * step path too, non-finite logits fail only the request they belong to.
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { isTesseraError, loadModel, type LoadProgress } from "../../lib/index.js";
import { architecture } from "../../lib/arch/registry.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import { buildPlan } from "../../lib/model/plan.js";
import { native } from "../../lib/native.js";
import { writeSyntheticModel } from "../../dev/synthetic-model.js";
import { hasShared, repoRoot, stories260K, tempDir } from "../helpers/paths.js";
import { LARGE_SHAPE } from "./shapes.js";

async function expectCode(p: Promise<unknown>, code: string): Promise<Error> {
  try {
    await p;
  } catch (e) {
    expect((e as { code?: string }).code, String(e)).toBe(code);
    return e as Error;
  }
  throw new Error(`expected ${code}, the call succeeded`);
}

const dir = tempDir("load");
const fixture = (name: string) => path.join(repoRoot, "test/lifecycle/fixtures", name);

describe.runIf(hasShared)("files that are not regular", () => {
  const fifo = path.join(dir, "model.fifo");
  beforeAll(() => execFileSync("mkfifo", [fifo]));

  it("loadModel on a FIFO with no writer gives ERR_IO at once (in a child: it used to block the event loop)", () => {
    const script = `import(${JSON.stringify(path.join(repoRoot, "dist/lib/index.js"))}).then(({ loadModel }) =>
      loadModel(${JSON.stringify(fifo)}).then(() => console.log("loaded"), (e) => console.log(e.code)))`;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 20_000 });
    expect({ signal: r.signal, status: r.status, out: r.stdout.trim() }).toEqual({ signal: null, status: 0, out: "ERR_IO" });
  });

  it("the native loader refuses a FIFO, a device and a directory with ERR_IO", async () => {
    const { plan } = buildPlan(readGGUF(stories260K), architecture("llama"));
    for (const p of [fifo, "/dev/zero", dir]) {
      const e = await expectCode(native().loadModel(p, plan, { backend: "cpu", threads: 1 }), "ERR_IO");
      expect(e.message).toMatch(/not a regular file/);
    }
  });

  it("loadModel on a device or a directory: ERR_IO", async () => {
    for (const p of ["/dev/zero", dir]) expect(isTesseraError(await expectCode(loadModel(p), "ERR_IO"))).toBe(true);
  });
});

describe.runIf(hasShared)("mmap: false", () => {
  it("gives the mapped model's logits", async () => {
    const logits = [];
    for (const mmap of [true, false]) {
      const m = await loadModel(stories260K, { backend: "cpu", threads: 1, contextSize: 64, mmap });
      logits.push(await m.createSession().evaluate([1, 5, 9, 22]));
      m.dispose();
    }
    expect(Buffer.from(logits[1].buffer).equals(Buffer.from(logits[0].buffer))).toBe(true);
  });

  it("a read model survives its file being truncated; a mapped one dies of SIGBUS (documented)", () => {
    for (const mmap of [false, true]) {
      const copy = path.join(dir, `truncate-${mmap}.gguf`);
      fs.copyFileSync(stories260K, copy);
      const r = spawnSync(process.execPath, [fixture("truncate.mjs"), copy, String(mmap)], { encoding: "utf8", timeout: 30_000 });
      if (mmap) expect(r.signal).toBe("SIGBUS");
      else expect({ status: r.status, out: r.stdout.trim(), err: r.stderr }).toEqual({ status: 0, out: "same", err: "" });
    }
  });
});

describe.runIf(hasShared)("progress and cancellation of a 100 MB load", () => {
  const file = path.join(dir, "large-f32.gguf");
  beforeAll(() => {
    writeSyntheticModel(file, LARGE_SHAPE, { weights: "F32", vocab: "stories", seed: 11 });
  });
  const load = { backend: "cpu", threads: 2, contextSize: 256 } as const;

  for (const options of [{}, { mmap: false }, { checkTensors: true }]) {
    it(`onProgress per tensor, never decreasing, to 1 (${JSON.stringify(options)})`, async () => {
      const events: LoadProgress[] = [];
      const model = await loadModel(file, { ...load, ...options, onProgress: (p) => events.push(p) });
      model.dispose();
      expect(events[0]).toEqual({ phase: "metadata", progress: 0 });
      expect(events.at(-1)).toEqual({ phase: "ready", progress: 1 });
      const weights = events.filter((e) => e.phase === "weights").map((e) => e.progress);
      expect(weights[0]).toBe(0);
      expect(weights.at(-1)).toBe(1);
      for (let i = 1; i < weights.length; i++) expect(weights[i]).toBeGreaterThanOrEqual(weights[i - 1]);
      // Reports while the native load runs, not only its start and end.
      expect(weights.filter((p) => p > 0 && p < 1).length).toBeGreaterThanOrEqual(1);
    });
  }

  for (const options of [{}, { mmap: false }]) {
    it(`abort mid-load rejects with ERR_ABORTED at once and frees the memory (${JSON.stringify(options)})`, async () => {
      (await loadModel(file, { ...load, ...options })).dispose(); // warm-up: the page cache, the allocator
      const rss0 = process.memoryUsage().rss;
      const ac = new AbortController();
      let abortedAt = 0;
      let progressAtAbort = -1;
      const t0 = performance.now();
      await expectCode(
        loadModel(file, {
          ...load,
          ...options,
          signal: ac.signal,
          onProgress: (p) => {
            if (abortedAt || p.phase !== "weights" || !(p.progress > 0)) return;
            progressAtAbort = p.progress;
            abortedAt = performance.now();
            ac.abort();
          },
        }),
        "ERR_ABORTED",
      );
      const sinceAbort = performance.now() - abortedAt;
      expect(progressAtAbort).toBeGreaterThan(0);
      expect(progressAtAbort).toBeLessThan(1);
      expect(sinceAbort, `the load went on ${sinceAbort.toFixed(0)} ms after the abort (started ${(abortedAt - t0).toFixed(0)} ms in)`).toBeLessThan(250);
      const grown = (process.memoryUsage().rss - rss0) / 2 ** 20;
      expect(grown, `RSS grew ${grown.toFixed(1)} MiB`).toBeLessThan(24);
      // Nothing is left half-built: the next load works.
      const m = await loadModel(file, { ...load, ...options });
      expect((await m.createSession().evaluate([1, 5])).every(Number.isFinite)).toBe(true);
      m.dispose();
    });
  }

  it("non-finite logits on the worker-thread path fail only their own request", async () => {
    // Token 100's embedding (F32 row of 768) made NaN at one element.
    const bad = path.join(dir, "large-nan.gguf");
    const bytes = fs.readFileSync(file);
    const t = readGGUF(file).tensors.find((x) => x.name === "token_embd.weight")!;
    new DataView(bytes.buffer, bytes.byteOffset).setFloat32(t.offset + (100 * 768 + 5) * 4, NaN, true);
    fs.writeFileSync(bad, bytes);
    const model = await loadModel(bad, { ...load, contextSize: 128 });
    const good = [[1, 5, 9], [1, 300]];
    const alone = [];
    for (const p of good) alone.push((await model.complete(p, { maxTokens: 6, temperature: 0, ignoreEos: true })).tokens);
    const results = await Promise.allSettled([
      model.complete([1, 100], { maxTokens: 6, temperature: 0 }),
      ...good.map((p) => model.complete(p, { maxTokens: 6, temperature: 0, ignoreEos: true })),
    ]);
    expect(results[0].status).toBe("rejected");
    expect((results[0] as PromiseRejectedResult).reason.code).toBe("ERR_NON_FINITE");
    for (let i = 0; i < good.length; i++) expect((results[1 + i] as PromiseFulfilledResult<{ tokens: number[] }>).value.tokens).toEqual(alone[i]);
    await expectCode(loadModel(bad, { ...load, checkTensors: true }), "ERR_NON_FINITE");
    model.dispose();
  });
});
