/**
 * The commit-subject rule of CONTRIBUTING.md (`area: what changed`, at most 72 characters),
 * checked on this clone's history after the base commit, so CI counts it among the tests.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot as root } from "../helpers/paths.js";
// @ts-expect-error -- a plain .mjs script without type declarations
import { commitsSinceBase, subjectProblem } from "../../.ci/check-commits.mjs";

describe("commit subjects", () => {
  it("the rule accepts `area: what changed` up to 72 characters and nothing else", () => {
    expect(subjectProblem("cli: --help on inspect, info and serve")).toBeNull();
    expect(subjectProblem("lib/cli, README: pull a GGUF from the hub")).toBeNull();
    expect(subjectProblem("x".repeat(60) + ": " + "y".repeat(10))).toBeNull();
    expect(subjectProblem("cli: " + "y".repeat(68))).toMatch(/73 characters/);
    expect(subjectProblem("Fix the thing")).toMatch(/form/);
    expect(subjectProblem("two words: no")).toMatch(/form/);
    expect(subjectProblem("cli:no space")).toMatch(/form/);
    expect(subjectProblem("cli:  double space")).toMatch(/form/);
    expect(subjectProblem("cli: ")).toMatch(/form/);
  });

  it("every commit after the base has such a subject (.ci/check-commits.mjs)", () => {
    let output = "";
    let status = 0;
    try {
      output = execFileSync(process.execPath, [path.join(root, ".ci/check-commits.mjs")], { cwd: root, encoding: "utf8" });
    } catch (e) {
      const err = e as { status: number; stdout: string };
      status = err.status;
      output = err.stdout;
    }
    expect(output, output).toMatch(/check-commits: /);
    expect(status, output).toBe(0);
    const commits = commitsSinceBase(root) as Array<[string, string]> | null;
    if (commits) for (const [, subject] of commits) expect(subjectProblem(subject), subject).toBeNull();
  });
});
