/**
 * The README's structured-output example runs as written: its ```js runnable block is run
 * with node from the repository root (where `import "tessera"` resolves to this package and
 * ../shared holds the model), and what it prints is checked.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { hasShared, repoRoot } from "../helpers/paths.js";

describe.runIf(hasShared && fs.existsSync(path.join(repoRoot, "dist/lib/index.js")))("README", () => {
  it("the structured-output example runs as written", () => {
    const readme = fs.readFileSync(path.join(repoRoot, "README.md"), "utf8");
    const blocks = [...readme.matchAll(/```js runnable\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(blocks.length).toBeGreaterThan(0);
    for (const [i, code] of blocks.entries()) {
      // Inside the package (dist/ is ignored by git), so the self-reference "tessera" resolves.
      const file = path.join(repoRoot, "dist", `readme-example-${process.pid}-${i}.mjs`);
      fs.writeFileSync(file, code);
      try {
        const out = execFileSync(process.execPath, [file], { cwd: repoRoot, encoding: "utf8", timeout: 120_000 });
        const lines = out.trim().split("\n");
        expect(lines[0]).toMatch(/ \d+ grammar$/);
        expect(lines[1]).toBe("object");
        expect(lines[2]).toBe("true");
        expect(lines[3]).toMatch(/^The (cat|dog|bird) is (big|small)\.$/);
      } finally {
        fs.rmSync(file, { force: true });
      }
    }
  });
});
