/**
 * The README's server examples run as written: the `tessera serve` command of its "Serve over
 * HTTP" section starts the server (built in dist/; on a free port instead of 8080), its curl
 * commands run in bash against it, and its ```js blocks run with node from inside the
 * repository (so `import "tessera"` resolves to this package). SIGTERM then stops the server.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hasShared, repoRoot } from "../helpers/paths.js";

const readme = fs.readFileSync(path.join(repoRoot, "README.md"), "utf8");
const start = readme.indexOf("## Serve over HTTP");
const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
const sh = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
const js = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
const built = fs.existsSync(path.join(repoRoot, "dist/lib/cli/main.js"));

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe.runIf(hasShared && built)("README server examples", () => {
  let port: number;
  let server: ChildProcess;
  let stderr = "";
  const onPort = (code: string) => code.replaceAll("8080", String(port));

  beforeAll(async () => {
    port = await freePort();
    const command = onPort(sh[0]).replace("npx tessera", `${JSON.stringify(process.execPath)} dist/lib/cli/main.js`);
    server = spawn("bash", ["-c", `exec ${command}`], { cwd: repoRoot, stdio: ["ignore", "ignore", "pipe"] });
    await new Promise<void>((resolve, reject) => {
      server.stderr!.on("data", (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes(": ready")) resolve();
      });
      server.once("exit", (code) => reject(new Error(`tessera serve exited (${code}): ${stderr}`)));
    });
  });
  afterAll(() => {
    if (server.exitCode === null) server.kill("SIGKILL");
  });

  it("has the serve, curl and metrics commands and two js examples", () => {
    expect(sh.length).toBe(3);
    expect(sh[0]).toMatch(/^npx tessera serve /);
    expect(js.length).toBe(2);
  });

  it("curl gets a chat completion and the metrics", () => {
    const chat = spawnSync("bash", ["-c", onPort(sh[1])], { encoding: "utf8", timeout: 60_000 });
    expect(chat.status).toBe(0);
    const body = JSON.parse(chat.stdout);
    expect(body.object).toBe("chat.completion");
    expect(body.choices[0].message.content.length).toBeGreaterThan(0);
    const metrics = spawnSync("bash", ["-c", onPort(sh[2])], { encoding: "utf8", timeout: 60_000 });
    expect(metrics.status).toBe(0);
    expect(metrics.stdout).toMatch(/^vllm:num_requests_waiting 0$/m);
    expect(metrics.stdout).toMatch(/^vllm:kv_cache_usage_perc /m);
  });

  js.forEach((code, i) => {
    it(`js example ${i + 1} runs`, () => {
      const dir = path.join(repoRoot, ".scratch");
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `readme-serve-${i + 1}.mjs`);
      fs.writeFileSync(file, onPort(code));
      try {
        const r = spawnSync(process.execPath, [file], { cwd: repoRoot, encoding: "utf8", timeout: 60_000 });
        // The server's default log: one JSON line per request on stderr.
        for (const line of r.stderr.split("\n").filter((l) => l.length > 0)) expect(JSON.parse(line)).toHaveProperty("route");
        expect(r.status).toBe(0);
        expect(r.stdout.trim().length).toBeGreaterThan(0);
      } finally {
        fs.rmSync(file, { force: true });
      }
    });
  });

  it("stops on SIGTERM", async () => {
    const exited = new Promise<number | null>((r) => server.once("exit", (code) => r(code)));
    server.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(stderr).toContain("shutting down");
  });
});
