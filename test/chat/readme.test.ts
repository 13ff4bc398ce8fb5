/**
 * The README's chat examples run as written: each ```js block of its "Chat and tools"
 * section is saved inside the repository (so `import "tessera"` resolves to this package,
 * built in dist/) and run with node from the repository root.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { hasShared, repoRoot } from "../helpers/paths.js";

const readme = fs.readFileSync(path.join(repoRoot, "README.md"), "utf8");
const section = readme.slice(readme.indexOf("## Chat and tools"), readme.indexOf("\n## ", readme.indexOf("## Chat and tools") + 1));
const blocks = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
const built = fs.existsSync(path.join(repoRoot, "dist/lib/index.js"));

describe.runIf(hasShared && built)("README chat examples", () => {
  it("has the chat, tools, tool choice and parts examples", () => {
    expect(blocks.length).toBe(4);
  });
  blocks.forEach((code, i) => {
    it(`example ${i + 1} runs`, () => {
      const dir = path.join(repoRoot, ".scratch");
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `readme-chat-${i + 1}.mjs`);
      fs.writeFileSync(file, code);
      try {
        const r = spawnSync(process.execPath, [file], { cwd: repoRoot, encoding: "utf8", timeout: 120_000 });
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        if (i === 0) expect(r.stdout).toMatch(/\d+ of \d+ prompt tokens came from the cache/);
        if (i === 2) {
          expect(r.stdout).toMatch(/^get_weather \{ city: '[^']*', unit: '(celsius|fahrenheit)' \}\ntrue true\n0\nstring\n$/);
        }
        if (i === 3) {
          expect(r.stdout).toContain(JSON.stringify("<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"));
          expect(r.stdout).toContain("name: 'get_weather'");
        }
      } finally {
        fs.rmSync(file, { force: true });
      }
    });
  });
});
