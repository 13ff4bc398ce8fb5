/**
 * `tessera explore` as a user runs it: with no model it serves the shipped stories260K on
 * 127.0.0.1, says where, answers the page and the API, and stops cleanly on SIGTERM.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../helpers/paths.js";

const cli = path.join(repoRoot, "dist/lib/cli/main.js");

describe("tessera explore", () => {
  it("serves the page and the API for the shipped model, binds 127.0.0.1, stops on SIGTERM", async () => {
    const child = spawn(process.execPath, [cli, "explore", "--port", "0", "--threads", "1"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      const deadline = Date.now() + 20_000;
      while (!/: ready/.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const address = /open (http:\/\/[^ ]+)\//.exec(stderr)?.[1];
      expect(address, stderr).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const page = await fetch(`${address}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("Tessera explorer");
      expect((await fetch(`${address}/explore/main.js`)).status).toBe(200);
      const info = (await (await fetch(`${address}/explore/api/model`)).json()) as { architecture: string; nLayer: number };
      expect(info).toMatchObject({ architecture: "llama", nLayer: 5 });
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });
});
