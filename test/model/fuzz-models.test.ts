/**
 * A quick slice of structure-aware model fuzzing (dev/fuzz-models.ts) against the addon
 * this process loads (the plain build; under test/sanitize's child run, the ASan one): every
 * mutated model of every architecture and weight type loads and evaluates or fails with a
 * coded error, in worker processes, so a crash or hang is a finding rather than the end of
 * the test run. test/sanitize runs the same kind of slice under ASan + UBSan; this one, small to
 * keep npm test short, covers the optimized build (-O3, the AVX2 kernels as shipped) and
 * machines without a sanitizer runtime.
 *
 * A fresh seed each run (printed); TESSERA_FUZZ_SEED replays one.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { supportedArchitectures } from "../../lib/arch/registry.js";
import { ARCHITECTURES, describeCase, fuzzCoverage, makeCase, parseArchs, runFuzz, workerScript } from "../../dev/fuzz-models.js";
import { repoRoot } from "../helpers/paths.js";

describe("the fuzzer's architectures", () => {
  it("every registered architecture has a fuzz recipe (or a stated reason to leave it out)", () => {
    const c = fuzzCoverage();
    expect(c.missing, `registered but not fuzzed: add an entry to FUZZ_RECIPES in dev/fuzz-models.ts for ${c.missing.join(", ")}`).toEqual([]);
    expect(c.unknown, "FUZZ_RECIPES names architectures the registry does not have").toEqual([]);
    for (const [name, reason] of Object.entries(c.notFuzzed)) expect(reason.length, `${name}: notFuzzed needs a reason`).toBeGreaterThan(10);
    // What is fuzzed is the registry minus the stated exceptions, in the registry's order.
    expect(ARCHITECTURES).toEqual(supportedArchitectures().filter((a) => !(a in c.notFuzzed)));
  });
});

describe("--archs: a run of some architectures", () => {
  it("case I is of archs[I % archs.length]; unknown or unfuzzed names are refused", () => {
    const archs = parseArchs("mamba2, granitehybrid,phi3");
    expect(archs).toEqual(["mamba2", "granitehybrid", "phi3"]);
    for (let i = 0; i < 6; i++) expect(makeCase(9, i, { archs }).shape.arch).toBe(archs[i % 3]);
    // Without the option, the case of the same (seed, index) is of the whole cycle's architecture.
    expect(makeCase(9, 1).shape.arch).toBe(ARCHITECTURES[1]);
    expect(() => parseArchs("llama,nonesuch")).toThrow(/not fuzzed: nonesuch/);
    expect(() => parseArchs(",")).toThrow(/empty/);
  });

  it("the run's workers draw what `case` replays with the same options", async () => {
    const archs = ["granitehybrid", "mamba2"];
    const s = await runFuzz({ seed: 23, count: 8, archs, bigShare: 0 });
    expect(s.findings).toEqual([]);
    expect(Object.keys(s.byArch).sort()).toEqual(["granitehybrid", "mamba2"]);
    expect(s.archs).toEqual(archs);
    // Each outcome's first case, as the run described it, is the case makeCase replays.
    for (const example of Object.values(s.examples)) {
      const index = Number(/ case (\d+): /.exec(example)![1]);
      expect(example.startsWith(describeCase(makeCase(23, index, { archs, bigShare: 0 })))).toBe(true);
    }
  }, 120_000);
});

describe("structure-aware model fuzzing", () => {
  // 16 cases per fuzzed architecture: about half of a mutated case's loads end in a coded
  // refusal, so with 9 per architecture (140 over 16) one of them now and then reached no
  // evaluation at all (a CI run saw nomic-bert at 0); with 16 that is about 1 run in 1000.
  const cases = 16 * ARCHITECTURES.length;
  const seed = Number(process.env.TESSERA_FUZZ_SEED ?? Date.now() >>> 0);

  it(`${cases} mutated synthetic models: works or a coded error, never a crash, hang or uncoded error`, async () => {
    expect(fs.statSync(workerScript).mtimeMs, "dist/ is older than dev/fuzz-models.ts: run npx tsc").toBeGreaterThanOrEqual(
      fs.statSync(path.join(repoRoot, "dev/fuzz-models.ts")).mtimeMs,
    );
    // A tenth at realistic widths, as in test/sanitize.
    const s = await runFuzz({ seed, count: cases, jobs: 2, caseTimeoutMs: 120_000, bigShare: 0.1 });
    console.log(`TESSERA_FUZZ_SEED=${seed}: ${s.cases} cases in ${s.seconds.toFixed(0)} s, ${s.evaluated} evaluated; ${JSON.stringify(s.outcomes)}`);
    const findings = s.findings.map((f) => `${f.kind}: ${f.desc}\n${f.detail}`);
    expect(findings, findings.join("\n\n")).toEqual([]);
    expect(s.cases).toBe(cases);
    expect(s.clean.failures, s.clean.failures.join("\n")).toEqual([]);
    expect(s.clean.total).toBeGreaterThan(0);
    expect(s.evaluated / s.cases).toBeGreaterThan(0.2);
    // Cases cycle through the fuzzed architectures; each reached evaluation at least once.
    expect(Object.keys(s.byArch).filter((a) => s.byArch[a].evaluated > 0).sort()).toEqual([...ARCHITECTURES].sort());
  }, 300_000);

  it("a crash, a hang and a sanitizer report are findings naming seed, case and mutations; the run goes on", async () => {
    const env = { ...process.env, TESSERA_FUZZ_INJECT: "1:crash,3:hang,4:report" };
    // Small cases (bigShare 0) under a short timeout: the injected hang costs its 4 s.
    const s = await runFuzz({ seed: 5, count: 6, env, caseTimeoutMs: 4_000, bigShare: 0 });
    expect(s.findings.map((f) => [f.kind, f.index])).toEqual([["crash", 1], ["hang", 3], ["sanitizer", 4]]);
    for (const f of s.findings) expect(f.desc).toMatch(new RegExp(`^TESSERA_FUZZ_SEED=5 case ${f.index}: .*mutations: `));
    expect(s.findings[2].detail).toContain("ERROR: AddressSanitizer: injected");
    // The cases around them ran in restarted workers.
    expect(s.cases).toBe(6);
    expect(Object.entries(s.outcomes).filter(([k]) => k.startsWith("ERR_") || k === "ok").reduce((n, [, v]) => n + v, 0)).toBe(3);
  }, 120_000);

  it("a worker stopped (SIGSTOP) past the case timeout is not a hang: the timeout counts running time", async () => {
    // A long run may be paused during a benchmark; the injected pause stops the worker for 9 s,
    // over twice the timeout, which leaves a small case on a loaded 2-core CI machine 4 s of
    // running time (3 s failed once in 10 runs under load).
    const env = { ...process.env, TESSERA_FUZZ_INJECT: "1:pause" };
    const s = await runFuzz({ seed: 5, count: 3, env, caseTimeoutMs: 4_000, bigShare: 0 });
    expect(s.findings.map((f) => `${f.kind} ${f.index}: ${f.detail.slice(0, 200)}`)).toEqual([]);
    expect(s.cases).toBe(3);
    expect(s.seconds).toBeGreaterThan(9);
  }, 120_000);
});
