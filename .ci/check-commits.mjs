#!/usr/bin/env node
// Commit subjects read `area: what changed` in at most 72 characters (CONTRIBUTING.md), so
// `git log --oneline` stays one readable line per change; measurements and reasons go in the
// body. Checks the commits after BASE (history before it stays as it was written), merges
// excepted. Run by test/ci/commits.test.ts, so CI counts it as a test.
//   node .ci/check-commits.mjs [REV]   (default HEAD) exit 1 and one line per bad subject
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const BASE = "1c8cb5ea547e5c48718c5a9d5b5497c7d9442d23";
export const MAX_SUBJECT = 72;
// One area (a word or a path: lib/cli, README, deps) or several joined by ", ", a colon, a
// space, then the change starting with a non-space.
const FORM = /^[A-Za-z0-9][\w./+-]*(?:, [A-Za-z0-9][\w./+-]*)*: \S/;

/** Why this subject is refused, or null when it is fine. */
export function subjectProblem(subject) {
  if (subject.length > MAX_SUBJECT) return `${subject.length} characters (at most ${MAX_SUBJECT})`;
  if (!FORM.test(subject)) return "not in the form `area: what changed`";
  if (/\s$/.test(subject)) return "trailing whitespace";
  return null;
}

/** [hash, subject] of the non-merge commits in BASE..rev, or null when BASE is not in this clone. */
export function commitsSinceBase(cwd, rev = "HEAD") {
  const git = (...args) => execFileSync("git", args, { cwd, encoding: "utf8" });
  try {
    git("cat-file", "-e", `${BASE}^{commit}`);
  } catch {
    return null;
  }
  const out = git("log", "--no-merges", "--format=%H%x09%s", `${BASE}..${rev}`);
  return out
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const tab = line.indexOf("\t");
      return [line.slice(0, tab), line.slice(tab + 1)];
    });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
  const commits = commitsSinceBase(root, process.argv[2] ?? "HEAD");
  if (commits === null) {
    // A shallow clone without the base: nothing to compare against, so nothing is judged.
    console.log(`check-commits: base ${BASE.slice(0, 12)} is not in this clone; skipped`);
    process.exit(0);
  }
  let bad = 0;
  for (const [hash, subject] of commits) {
    const problem = subjectProblem(subject);
    if (problem) {
      bad++;
      console.log(`${hash.slice(0, 12)} ${problem}: ${subject}`);
    }
  }
  console.log(`check-commits: ${commits.length} commits since ${BASE.slice(0, 12)}, ${bad} with a bad subject`);
  process.exit(bad ? 1 : 0);
}
