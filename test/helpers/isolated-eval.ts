/**
 * Evaluates a model in a child process (native-eval-child.mjs) from a plan built here, so a
 * file that makes native code write out of bounds fails the test with the signal or glibc's
 * message instead of taking the test runner down with it.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { architecture } from "../../lib/arch/registry.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import { buildPlan, type NativePlan } from "../../lib/model/plan.js";
import { repoRoot } from "./paths.js";

export type IsolatedResult =
  | { kind: "logits"; logits: Float32Array }
  | { kind: "error"; code: string; message: string }
  /** The child died (a signal, an abort from glibc's heap checks) or printed nothing usable. */
  | { kind: "crash"; detail: string };

/** `editPlan`: changes the plan before C++ sees it, to test the native checks on their own. */
export function evaluateIsolated(modelPath: string, tokens: number[], threads = 2, editPlan?: (plan: NativePlan) => void): IsolatedResult {
  const file = readGGUF(modelPath);
  const { plan } = buildPlan(file, architecture(String(file.metadata.get("general.architecture")?.value)));
  editPlan?.(plan);
  const child = spawnSync(process.execPath, [path.join(repoRoot, "test/helpers/native-eval-child.mjs")], {
    input: JSON.stringify({ addonRoot: repoRoot, modelPath, plan, tokens, threads }),
    encoding: "utf8",
    maxBuffer: 1 << 28,
    timeout: 120_000,
  });
  const line = child.stdout?.trim().split("\n").pop() ?? "";
  if (child.status !== 0 || child.signal || !line.startsWith("{"))
    return { kind: "crash", detail: `status ${child.status}, signal ${child.signal}: ${child.stderr?.slice(-500)}` };
  const out = JSON.parse(line) as { logits?: string; code?: string; message?: string };
  if (out.logits === undefined) return { kind: "error", code: out.code ?? "?", message: out.message ?? "" };
  return { kind: "logits", logits: new Float32Array(Uint8Array.from(Buffer.from(out.logits, "base64")).buffer) };
}
