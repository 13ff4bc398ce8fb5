/**
 * Native memory safety as a tested property (issue 25): the addon built with AddressSanitizer
 * and UBSan (CMake option TESSERA_SANITIZE, scripts/sanitized.sh: CPU backend, -O1, into
 * build-san/) runs the native kernel suite, the fuzzer's regression files and a slice of
 * structure-aware model fuzzing (dev/fuzz-models.ts), each in child processes with the ASan
 * runtime preloaded. Any sanitizer report aborts the child and fails the test with the report;
 * so do a crash, a hang, a failing test, or an uncoded error in a fuzz case.
 *
 * Kept cheap, because CI runs it on 2 cores inside npm test's budget: the build happens here,
 * as the first test (so its time shows in the report, not hidden in a pretest hook), once per
 * clone - later runs recompile only what changed in native/; the suites chosen are the ones
 * that reach native memory (the kernels against their references, the files the fuzzer found
 * bugs with) rather than every model test again; and the fuzz slice is a few hundred cases at
 * mostly small widths, a fresh seed per run so coverage grows run by run (the long run is
 * `node dist/dev/fuzz-models.js run --count 100000 --sanitized`, see the README).
 *
 * Without g++'s libasan or cmake every test here is skipped and its name says why: a skipped
 * check, not a passed one. TESSERA_SKIP_SANITIZED=1 skips it on purpose.
 * TESSERA_FUZZ_SEED replays a slice (one case alone: `scripts/sanitized.sh run node
 * dist/dev/fuzz-models.js case --seed S --index I`); TESSERA_FUZZ_CASES sets its size.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ARCHITECTURES, runFuzz, sanitizedEnv, workerScript } from "../../dev/fuzz-models.js";
import { repoRoot, tempDir } from "../helpers/paths.js";

/** Why the sanitizer build cannot be made here, or undefined when it can. */
function missingTool(): string | undefined {
  if (process.env.TESSERA_SKIP_SANITIZED === "1") return "TESSERA_SKIP_SANITIZED=1";
  if (process.platform !== "linux") return `set up for Linux only (this is ${process.platform})`;
  const cxx = process.env.CXX || "g++";
  const asan = spawnSync(cxx, ["-print-file-name=libasan.so"], { encoding: "utf8" });
  if (asan.status !== 0) return `no C++ compiler (${cxx})`;
  // gcc prints the bare name back when it has no such library.
  if (!fs.existsSync(asan.stdout.trim())) return `${cxx} has no AddressSanitizer runtime (libasan.so)`;
  if (spawnSync("cmake", ["--version"]).status !== 0) return "no cmake";
  return undefined;
}

const missing = missingTool();
const title = missing ? `under ASan + UBSan (skipped: ${missing})` : "under ASan + UBSan";
if (missing) console.log(`test/sanitize skipped: ${missing}`);

const REPORT = /ERROR: AddressSanitizer|runtime error:|SUMMARY: \w+Sanitizer/;

/** The sanitizer's report in a child's output, or its last lines. */
function tail(text: string): string {
  const at = text.search(REPORT);
  return at >= 0 ? text.slice(Math.max(0, at - 200), at + 6000) : text.slice(-4000);
}

describe.skipIf(missing)(title, () => {
  let env: NodeJS.ProcessEnv | undefined;
  const needEnv = (): NodeJS.ProcessEnv => {
    // A run filtered to one test (-t) uses the build a previous run made.
    env ??= sanitizedEnv().env;
    expect(env, "the sanitizer build failed (first test)").toBeDefined();
    return env!;
  };

  it("builds build-san/ (scripts/sanitized.sh build; only what changed after the first run)", () => {
    const t0 = performance.now();
    const r = spawnSync("bash", [path.join(repoRoot, "scripts/sanitized.sh"), "build"], { cwd: repoRoot, encoding: "utf8", maxBuffer: 1 << 26 });
    console.log(`sanitizer build: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    expect(r.status, `${r.stdout.slice(-3000)}\n${r.stderr.slice(-6000)}`).toBe(0);
    const s = sanitizedEnv();
    expect(s.reason).toBeUndefined();
    env = s.env;
  }, 1_200_000);

  it("children load the instrumented addon with the ASan and UBSan runtimes", () => {
    const script = `
      const fs = require("fs");
      require(process.env.TESSERA_ADDON_PATH).systemInfo();
      const maps = fs.readFileSync("/proc/self/maps", "utf8");
      console.log(JSON.stringify({ asan: /libasan\\.so/.test(maps), ubsan: /libubsan\\.so/.test(maps), addon: maps.includes("build-san/Release/tessera.node") }));`;
    const r = spawnSync(process.execPath, ["-e", script], { env: needEnv(), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ asan: true, ubsan: true, addon: true });
  });

  // The CPU kernels (every op, both ISAs, against float64 references) and the models the fuzzer
  // found bugs with: one vitest child, so its start-up is paid once.
  const files = ["test/kernels", "test/model/fuzz-regressions.test.ts"];
  it(`native suites: ${files.join(", ")}`, () => {
    const out = path.join(tempDir("asan-suite"), "results.json");
    const r = spawnSync(process.execPath, [path.join(repoRoot, "node_modules/vitest/vitest.mjs"), "run", ...files, "--reporter=json", `--outputFile=${out}`], {
      cwd: repoRoot,
      env: needEnv(),
      encoding: "utf8",
      maxBuffer: 1 << 28,
      timeout: 540_000,
    });
    const output = `${r.stdout}\n${r.stderr}`;
    expect(REPORT.test(output), `sanitizer report:\n${tail(output)}`).toBe(false);
    expect(r.signal, `killed by ${r.signal}:\n${tail(output)}`).toBeNull();
    expect(fs.existsSync(out), `no results (exit ${r.status}):\n${tail(output)}`).toBe(true);
    const results = JSON.parse(fs.readFileSync(out, "utf8")) as {
      numPassedTests: number;
      testResults: Array<{ name: string; status: string; message: string; assertionResults: Array<{ fullName: string; status: string; failureMessages: string[] }> }>;
    };
    const failed = results.testResults.flatMap((f) =>
      f.status === "failed" && f.assertionResults.length === 0
        ? [`${f.name}: ${f.message}`]
        : f.assertionResults.filter((a) => a.status === "failed").map((a) => `${a.fullName}: ${a.failureMessages.join("\n").slice(0, 2000)}`),
    );
    expect(failed, failed.join("\n\n")).toEqual([]);
    // Both files ran (a path typo would otherwise pass with fewer tests).
    expect(results.testResults.length).toBe(2);
    expect(results.numPassedTests).toBeGreaterThan(10);
    expect(r.status, tail(output)).toBe(0);
  }, 600_000);

  const cases = Number(process.env.TESSERA_FUZZ_CASES ?? 280);
  const seed = Number(process.env.TESSERA_FUZZ_SEED ?? Date.now() >>> 0);
  it(`${cases} structure-aware fuzz cases: every load works or fails with a coded error; 0 crashes, hangs, reports`, async () => {
    expect(fs.statSync(workerScript).mtimeMs, "dist/ is older than dev/fuzz-models.ts: run npx tsc").toBeGreaterThanOrEqual(
      fs.statSync(path.join(repoRoot, "dev/fuzz-models.ts")).mtimeMs,
    );
    console.log(`fuzzing ${cases} cases under ASan + UBSan, TESSERA_FUZZ_SEED=${seed}`);
    // A tenth at realistic widths (n_embd, n_ff in the thousands; the long run uses a quarter):
    // enough that every slice has some, few enough that the slice stays well under a minute.
    const s = await runFuzz({ seed, count: cases, jobs: 2, env: needEnv(), caseTimeoutMs: 120_000, bigShare: 0.1 });
    console.log(
      `TESSERA_FUZZ_SEED=${seed}: ${s.cases} cases in ${s.seconds.toFixed(0)} s, ${s.evaluated} evaluated ` +
        `(${s.big.evaluated} of ${s.big.total} at realistic widths), ${s.generated} generated; outcomes ${JSON.stringify(s.outcomes)}`,
    );
    const findings = s.findings.map((f) => `${f.kind}: ${f.desc}\n${f.detail}`);
    expect(findings, findings.join("\n\n")).toEqual([]);
    expect(s.sanitized, "a worker ran without the ASan runtime or without build-san's addon").toBe(true);
    expect(s.cases).toBe(cases);
    // Unmutated models must all load and evaluate, or the generator (not the engine) is broken.
    expect(s.clean.failures, s.clean.failures.join("\n")).toEqual([]);
    expect(s.clean.total).toBeGreaterThan(0);
    // Most of the value is in cases that pass validation and run: keep that share up.
    expect(s.evaluated / s.cases).toBeGreaterThan(0.2);
    // Cases cycle through the architectures: each reached evaluation.
    for (const arch of ARCHITECTURES) expect(s.byArch[arch]?.evaluated, arch).toBeGreaterThan(0);
  }, 900_000);
});
