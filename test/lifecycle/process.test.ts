/**
 * Native work outliving its JavaScript environment (issue 25): a worker terminated while
 * the addon registers, while a model loads or while a step runs on the libuv pool;
 * process.exit from a worker or the main thread with a step or a load in flight; models
 * never disposed that become garbage mid-generation. None may abort the process ("terminate
 * called after throwing an instance of 'Napi::Error'", SIGABRT or SIGSEGV): each scenario
 * runs in a child process (test/lifecycle/fixtures/child.mjs) that must exit with code 0,
 * still able to load and run a model afterwards. The model is over 32 MiB, so its steps
 * and load run on the pool, and its load copies about 100 MB (long enough to land in).
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { writeSyntheticModel } from "../../dev/synthetic-model.js";
import { hasShared, repoRoot, tempDir } from "../helpers/paths.js";
import { LARGE_SHAPE } from "./shapes.js";

const child = path.join(repoRoot, "test/lifecycle/fixtures/child.mjs");
const dir = tempDir("lifecycle");
const model = path.join(dir, "large-f32.gguf");

function run(scenario: string, nodeArgs: string[] = []): void {
  const r = spawnSync(process.execPath, [...nodeArgs, child, scenario, model], { encoding: "utf8", timeout: 90_000 });
  const output = `${r.stdout}\n${r.stderr}`;
  expect(output).not.toMatch(/terminate called|Napi::Error|FATAL ERROR|Segmentation fault/);
  expect({ scenario, status: r.status, signal: r.signal, stderr: r.stderr.slice(-2000) }).toEqual({
    scenario,
    status: 0,
    signal: null,
    stderr: "",
  });
  expect(r.stdout).toMatch(/^ok$/m);
}

describe.runIf(hasShared)("native work when its environment goes away", () => {
  beforeAll(() => {
    writeSyntheticModel(model, LARGE_SHAPE, { weights: "F32", vocab: "stories", seed: 11 });
  });

  it("worker.terminate() while the addon loads and registers, or the load is queued", () => run("terminate-init"));
  it("worker.terminate() while a model loads on the pool", () => run("terminate-load"));
  it("worker.terminate() while a step runs on the pool", () => run("terminate-step"));
  it("process.exit() in a worker with a step queued", () => run("worker-exit"));
  it("process.exit() on the main thread while a step runs", () => run("exit-step"));
  it("process.exit() on the main thread while a model loads", () => run("exit-load"));
  it("models never disposed, collected mid-generation", () => run("gc", ["--expose-gc"]));
});
