/**
 * pullModel and `tessera pull` against a local server that answers the way the Hugging Face
 * hub's resolve URLs do: GET /<owner>/<repo>/resolve/<rev>/<file> is a 302 to a CDN URL
 * carrying X-Linked-Etag (the sha256) and X-Linked-Size; the CDN serves Content-Length and
 * Range requests (206); unknown files are 404 with X-Error-Code. Proves: the download lands
 * in the cache verified; a cut-off download resumes with a Range request from where it
 * stopped; a wrong sha256 is a coded error and leaves no file; 404 and a refused connection
 * are coded errors; a cached file needs no network; the CLI prints the path.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTesseraError } from "../../lib/errors.js";
import { pullModel, type PullProgress } from "../../lib/hub/pull.js";
import { repoRoot, tempDir } from "../helpers/paths.js";

interface Served {
  bytes: Buffer;
  /** What X-Linked-Etag announces (default: the real sha256). */
  etag?: string;
}

const files = new Map<string, Served>();
const requests: Array<{ url: string; range: string | undefined; auth: string | undefined }> = [];
/** When set, the CDN's next full or partial answer stops after this many body bytes. */
let cutAfter: number | undefined;
/** The CDN's origin: another port, so another origin than the hub's, as on the real hub. */
let cdnBase = "";

function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

function hubServer(): http.Server {
  return http.createServer((req, res) => {
    requests.push({ url: req.url!, range: req.headers.range, auth: req.headers.authorization });
    const url = new URL(req.url!, "http://x");
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (resolve) {
      const f = files.get(`${resolve[1]}/${decodeURIComponent(resolve[3])}`);
      if (!f || resolve[2] !== "main") {
        res.writeHead(404, { "x-error-code": "EntryNotFound", "content-type": "text/plain" }).end("Entry not found");
        return;
      }
      const sha = sha256(f.bytes);
      res
        .writeHead(302, {
          location: `${cdnBase}/cdn/${sha}?download=true`,
          "x-linked-etag": `"${f.etag ?? sha}"`,
          "x-linked-size": String(f.bytes.length),
          "x-repo-commit": "0123456789abcdef0123456789abcdef01234567",
          etag: `"${sha}"`,
        })
        .end();
      return;
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    const f = cdn && [...files.values()].find((x) => sha256(x.bytes) === cdn[1]);
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (m) start = Number(m[1]);
    if (start >= f.bytes.length && m) {
      res.writeHead(416, { "content-range": `bytes */${f.bytes.length}` }).end();
      return;
    }
    const body = f.bytes.subarray(start);
    res.writeHead(m ? 206 : 200, {
      "content-length": String(body.length),
      "accept-ranges": "bytes",
      ...(m ? { "content-range": `bytes ${start}-${f.bytes.length - 1}/${f.bytes.length}` } : {}),
    });
    if (cutAfter !== undefined) {
      const n = cutAfter;
      cutAfter = undefined;
      res.write(body.subarray(0, n), () => res.destroy());
      return;
    }
    res.end(body);
  });
}

describe("tessera pull", () => {
  let server: http.Server;
  let cdn: http.Server;
  let endpoint: string;
  const model = randomBytes(3 << 20);
  const bad = randomBytes(100_000);

  beforeAll(async () => {
    files.set("owner/repo/model.gguf", { bytes: model });
    files.set("owner/repo/sub dir/other.gguf", { bytes: randomBytes(5000) });
    files.set("owner/repo/corrupt.gguf", { bytes: bad, etag: sha256(Buffer.from("something else")) });
    server = hubServer();
    cdn = hubServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    await new Promise<void>((r) => cdn.listen(0, "127.0.0.1", r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    cdnBase = `http://127.0.0.1:${(cdn.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await new Promise<void>((r) => cdn.close(() => r()));
  });

  it("downloads through the redirect into the cache and verifies the sha256", async () => {
    const cacheDir = tempDir("pull");
    const progress: PullProgress[] = [];
    requests.length = 0;
    const r = await pullModel("owner/repo/model.gguf", { endpoint, cacheDir, token: "secret", onProgress: (p) => progress.push(p) });
    expect(r).toEqual({ path: path.join(cacheDir, "owner/repo/model.gguf"), bytes: model.length, sha256: sha256(model), cached: false });
    expect(fs.readFileSync(r.path).equals(model)).toBe(true);
    expect(fs.existsSync(r.path + ".incomplete")).toBe(false);
    expect(progress.at(-1)).toEqual({ bytes: model.length, totalBytes: model.length, resumedFrom: 0 });
    // The token goes to the hub, not to the CDN (another origin) it redirects to.
    expect(requests.map((q) => [q.url.split("?")[0], q.auth])).toEqual([
      ["/owner/repo/resolve/main/model.gguf", "Bearer secret"],
      [`/cdn/${sha256(model)}`, undefined],
    ]);

    // Cached: no request at all.
    requests.length = 0;
    const again = await pullModel("owner/repo/model.gguf", { endpoint, cacheDir });
    expect(again.cached).toBe(true);
    expect(requests).toEqual([]);

    // A file in a folder of the repository, a name with a space.
    const sub = await pullModel("owner/repo/sub dir/other.gguf", { endpoint, cacheDir });
    expect(sub.path).toBe(path.join(cacheDir, "owner/repo/sub dir/other.gguf"));
  });

  it("resumes a cut-off download with a Range request", async () => {
    const cacheDir = tempDir("pull-resume");
    cutAfter = 1 << 20;
    const first = await pullModel("owner/repo/model.gguf", { endpoint, cacheDir }).catch((e: unknown) => e);
    expect(isTesseraError(first, "ERR_NETWORK"), String(first)).toBe(true);
    const partial = path.join(cacheDir, "owner/repo/model.gguf.incomplete");
    const kept = fs.statSync(partial).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(model.length);

    requests.length = 0;
    const progress: PullProgress[] = [];
    const r = await pullModel("owner/repo/model.gguf", { endpoint, cacheDir, onProgress: (p) => progress.push(p) });
    expect(requests.map((q) => q.range)).toEqual([`bytes=${kept}-`, `bytes=${kept}-`]);
    expect(progress[0].resumedFrom).toBe(kept);
    expect(r.sha256).toBe(sha256(model));
    expect(fs.readFileSync(r.path).equals(model)).toBe(true);
    expect(fs.existsSync(partial)).toBe(false);
  });

  it("a partial file that is already whole (416) is verified and kept", async () => {
    const cacheDir = tempDir("pull-416");
    const partial = path.join(cacheDir, "owner/repo/model.gguf.incomplete");
    fs.mkdirSync(path.dirname(partial), { recursive: true });
    fs.writeFileSync(partial, model);
    const r = await pullModel("owner/repo/model.gguf", { endpoint, cacheDir });
    expect(r.sha256).toBe(sha256(model));
    expect(fs.existsSync(r.path)).toBe(true);
  });

  it("a sha256 mismatch is ERR_CHECKSUM and leaves no file behind", async () => {
    const cacheDir = tempDir("pull-bad");
    const e = await pullModel("owner/repo/corrupt.gguf", { endpoint, cacheDir }).catch((x: unknown) => x);
    expect(isTesseraError(e, "ERR_CHECKSUM"), String(e)).toBe(true);
    expect(fs.readdirSync(path.join(cacheDir, "owner/repo"))).toEqual([]);
  });

  it("a missing file is ERR_NOT_FOUND, a refused connection ERR_NETWORK, a bad reference ERR_INVALID_ARGUMENT", async () => {
    const cacheDir = tempDir("pull-errors");
    const missing = await pullModel("owner/repo/nope.gguf", { endpoint, cacheDir }).catch((x: unknown) => x);
    expect(isTesseraError(missing, "ERR_NOT_FOUND"), String(missing)).toBe(true);
    expect((missing as Error).message).toMatch(/404/);

    // A port nothing listens on: the "offline" case.
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const offline = await pullModel("owner/repo/model.gguf", { endpoint: `http://127.0.0.1:${port}`, cacheDir }).catch((x: unknown) => x);
    expect(isTesseraError(offline, "ERR_NETWORK"), String(offline)).toBe(true);
    expect((offline as Error).message).toMatch(/ECONNREFUSED/);

    for (const ref of ["model.gguf", "owner/repo", "owner/../x.gguf", "owner/repo/../../x.gguf"]) {
      const e = await pullModel(ref, { endpoint, cacheDir }).catch((x: unknown) => x);
      expect(isTesseraError(e, "ERR_INVALID_ARGUMENT"), ref).toBe(true);
    }
    const unknown = await pullModel("owner/repo/model.gguf", { endpoint, cacheDir, cacheDirectory: "x" } as never).catch((x: unknown) => x);
    expect(isTesseraError(unknown, "ERR_INVALID_ARGUMENT")).toBe(true);
  });

  it("`tessera pull` takes HF_ENDPOINT and TESSERA_CACHE, prints the path, reports one line off a terminal", async () => {
    const cacheDir = tempDir("pull-cli");
    const cli = path.join(repoRoot, "dist/lib/cli/main.js");
    const env = { ...process.env, HF_ENDPOINT: endpoint, TESSERA_CACHE: cacheDir };
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, "pull", "owner/repo/model.gguf"], { env, encoding: "utf8" });
    expect(stdout).toBe(path.join(cacheDir, "owner/repo/model.gguf") + "\n");
    expect(stderr).toMatch(/^tessera: pulled owner\/repo\/model\.gguf \(3\.1 MB in [\d.]+ s, sha256 verified\)\n$/);

    const missing = await promisify(execFile)(process.execPath, [cli, "pull", "owner/repo/nope.gguf"], { env, encoding: "utf8" }).catch((e: unknown) => e as { code: number; stderr: string });
    expect((missing as { code: number }).code).toBe(2);
    expect((missing as { stderr: string }).stderr).toMatch(/^tessera: ERR_NOT_FOUND: /);

    const help = await promisify(execFile)(process.execPath, [cli, "pull", "--help"], { encoding: "utf8" });
    expect(help.stdout).toMatch(/^usage: tessera pull/);
  });
});
