/**
 * The layout the package depends on: dist/lib is only the library, so nothing under lib/
 * imports test, benchmark or development code (dev/, test/, bench/, scripts/); and code that
 * tests and benchmarks share lives in dev/, so nothing under test/ or bench/ imports from
 * scripts/ (build and device scripts only).
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../helpers/paths.js";

function tsFiles(dir: string): string[] {
  return fs.readdirSync(path.join(repoRoot, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => path.relative(repoRoot, path.join(e.parentPath, e.name)));
}

/** Repository-relative targets of a file's relative imports (static and dynamic). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(repoRoot, file), "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)["'](\.{1,2}\/[^"']+)["']/g))
    out.push(path.relative(repoRoot, path.resolve(path.dirname(path.join(repoRoot, file)), m[1])));
  return out;
}

function crossings(dirs: string[], forbidden: string[]): string[] {
  return dirs.flatMap(tsFiles).flatMap((f) => importsOf(f).filter((t) => forbidden.some((d) => t.startsWith(d + "/"))).map((t) => `${f} -> ${t}`));
}

describe("source layout", () => {
  it("finds the imports it checks (the scan is not vacuous)", () => {
    expect(crossings(["test"], ["dev"]).length).toBeGreaterThan(0);
  });

  it("lib/ imports nothing from dev/, test/, bench/ or scripts/", () => {
    expect(crossings(["lib"], ["dev", "test", "bench", "scripts"])).toEqual([]);
  });

  it("test/ and bench/ import nothing from scripts/", () => {
    expect(crossings(["test", "bench"], ["scripts"])).toEqual([]);
  });
});
