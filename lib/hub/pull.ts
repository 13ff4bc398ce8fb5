/**
 * pullModel: downloads one GGUF file of a Hugging Face repository into a local cache, the way
 * huggingface_hub does: GET <endpoint>/<repo>/resolve/<revision>/<file>, whose answer for a
 * large (LFS) file is a redirect to a CDN carrying X-Linked-Etag (the file's sha256) and
 * X-Linked-Size. The bytes go to `<file>.incomplete` beside the final path; a later pull
 * resumes it with a Range request; the finished file is checked against the announced size
 * and sha256 before it is renamed into place, and removed when it does not match.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { TesseraError } from "../errors.js";

export interface PullOptions {
  /** Where files go: <cacheDir>/<owner>/<repo>/<file>. Default: $TESSERA_CACHE, else ~/.cache/tessera/models. */
  cacheDir?: string;
  /** The hub's base URL. Default: $HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Branch, tag or commit. Default "main". */
  revision?: string;
  /** Sent as a bearer token to the hub (not to the CDN it redirects to). Default: $HF_TOKEN. */
  token?: string;
  /** Download again even when the file is in the cache. */
  force?: boolean;
  signal?: AbortSignal;
  /** Called as bytes arrive (at most every 100 ms, and once at the end). */
  onProgress?: (progress: PullProgress) => void;
}

export interface PullProgress {
  /** Bytes of the file on disk so far, resumed ones included. */
  bytes: number;
  /** The file's size when the server said it. */
  totalBytes: number | undefined;
  /** Bytes that were already on disk from an interrupted pull. */
  resumedFrom: number;
}

export interface PulledModel {
  /** Absolute path of the file in the cache. */
  path: string;
  bytes: number;
  /** The sha256 the download was verified against (undefined when the server announced none, and for cached files). */
  sha256: string | undefined;
  /** True when the file was already in the cache and nothing was downloaded. */
  cached: boolean;
}

/** Default cache directory: $TESSERA_CACHE, else ~/.cache/tessera/models. */
export function defaultCacheDir(): string {
  return process.env.TESSERA_CACHE || path.join(os.homedir(), ".cache", "tessera", "models");
}

/** Splits "owner/repo/path/to/file.gguf" into the repository and the file path. */
export function parseModelRef(ref: string): { repo: string; file: string } {
  const parts = typeof ref === "string" ? ref.replace(/^hf:\/\//, "").split("/") : [];
  const ok = (p: string) => p.length > 0 && p !== "." && p !== ".." && !p.includes("\\");
  if (parts.length < 3 || !parts.every(ok))
    throw new TesseraError("ERR_INVALID_ARGUMENT", `a model reference is <owner>/<repo>/<file>, e.g. ggml-org/models/tinyllamas/stories260K.gguf; got ${JSON.stringify(ref)}`);
  return { repo: parts.slice(0, 2).join("/"), file: parts.slice(2).join("/") };
}

const PULL_OPTION_KEYS = { cacheDir: true, endpoint: true, revision: true, token: true, force: true, signal: true, onProgress: true } satisfies Record<keyof PullOptions, true>;

export async function pullModel(ref: string, options: PullOptions = {}): Promise<PulledModel> {
  for (const key of Object.keys(options))
    if (!Object.hasOwn(PULL_OPTION_KEYS, key))
      throw new TesseraError("ERR_INVALID_ARGUMENT", `pullModel: unknown option "${key}" (known: ${Object.keys(PULL_OPTION_KEYS).join(", ")})`);
  const { repo, file } = parseModelRef(ref);
  const revision = options.revision ?? "main";
  const endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? "https://huggingface.co").replace(/\/+$/, "");
  const token = options.token ?? process.env.HF_TOKEN;
  const dest = path.resolve(options.cacheDir ?? defaultCacheDir(), repo, ...file.split("/"));
  const partial = dest + ".incomplete";

  if (!options.force && fs.existsSync(dest)) return { path: dest, bytes: fs.statSync(dest).size, sha256: undefined, cached: true };
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  if (options.force) fs.rmSync(partial, { force: true });

  const url = `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split("/").map(encodeURIComponent).join("/")}`;
  let start = fs.existsSync(partial) ? fs.statSync(partial).size : 0;
  const { response, linked } = await request(url, start, token, options.signal, `${repo}/${file}`);

  let total = linked.size;
  let actual: string;
  if (response.status === 416) {
    // The partial file already holds every byte (a pull that died between download and rename).
    await response.body?.cancel();
    actual = await hashFile(partial, createHash("sha256"));
  } else {
    if (response.status === 200 && start > 0) start = 0; // the server ignored the range: start over
    if (response.status === 206) {
      const m = /\/(\d+)\s*$/.exec(response.headers.get("content-range") ?? "");
      if (m) total ??= Number(m[1]);
    } else {
      const length = response.headers.get("content-length");
      if (length !== null) total ??= Number(length);
    }
    actual = await download(response, partial, start, total, options, `${repo}/${file}`);
  }

  const bytes = fs.statSync(partial).size;
  const sha256 = linked.sha256;
  if (total !== undefined && bytes !== total) {
    if (bytes < total)
      throw new TesseraError("ERR_NETWORK", `the download of ${repo}/${file} ended at ${bytes} of ${total} bytes; run the pull again to resume`);
    fs.rmSync(partial, { force: true });
    throw new TesseraError("ERR_CHECKSUM", `${repo}/${file} came to ${bytes} bytes but the server announced ${total}; the file was removed`);
  }
  if (sha256 !== undefined && actual !== sha256) {
    fs.rmSync(partial, { force: true });
    throw new TesseraError("ERR_CHECKSUM", `${repo}/${file}: sha256 ${actual} but the server announced ${sha256}; the file was removed`);
  }
  fs.renameSync(partial, dest);
  return { path: dest, bytes, sha256, cached: false };
}

interface Linked {
  sha256: string | undefined;
  size: number | undefined;
}

/**
 * GET with redirects followed by hand: the hub's own answer (not the CDN's) carries the
 * X-Linked-* headers, and the token must not travel to another origin.
 */
async function request(url: string, start: number, token: string | undefined, signal: AbortSignal | undefined, what: string): Promise<{ response: Response; linked: Linked }> {
  const linked: Linked = { sha256: undefined, size: undefined };
  const origin = new URL(url).origin;
  let current = url;
  for (let hop = 0; hop < 10; hop++) {
    const headers: Record<string, string> = { "user-agent": "tessera" };
    if (start > 0) headers.range = `bytes=${start}-`;
    if (token && new URL(current).origin === origin) headers.authorization = `Bearer ${token}`;
    let response: Response;
    try {
      response = await fetch(current, { headers, redirect: "manual", signal });
    } catch (e) {
      throw networkError(e, current, signal);
    }
    const etag = response.headers.get("x-linked-etag") ?? undefined;
    const sha = etag?.replace(/^W\//, "").replace(/"/g, "");
    if (sha && /^[0-9a-f]{64}$/.test(sha)) linked.sha256 ??= sha;
    const size = response.headers.get("x-linked-size");
    if (size !== null && /^\d+$/.test(size)) linked.size ??= Number(size);
    if (response.status >= 300 && response.status < 400 && response.headers.has("location")) {
      await response.body?.cancel();
      current = new URL(response.headers.get("location")!, current).href;
      continue;
    }
    if (response.status === 200 || response.status === 206 || response.status === 416) return { response, linked };
    await response.body?.cancel();
    if (response.status === 401 || response.status === 403 || response.status === 404)
      throw new TesseraError(
        "ERR_NOT_FOUND",
        `${what} was not found at ${url} (HTTP ${response.status}${response.headers.get("x-error-code") ? `, ${response.headers.get("x-error-code")}` : ""}); ` +
          "check the repository and file name, and for a private or gated repository set HF_TOKEN",
      );
    throw new TesseraError("ERR_NETWORK", `${current} answered HTTP ${response.status}`);
  }
  throw new TesseraError("ERR_NETWORK", `${url}: too many redirects`);
}

function networkError(e: unknown, url: string, signal: AbortSignal | undefined): TesseraError {
  if (signal?.aborted) return new TesseraError("ERR_ABORTED", "the pull was aborted", { cause: e });
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ? ` (${cause.code})` : cause?.message ? ` (${cause.message})` : "";
  return new TesseraError(
    "ERR_NETWORK",
    `cannot reach ${new URL(url).host}${code}; check the network connection (or HF_ENDPOINT); a partial download is kept and resumes on the next pull`,
    { cause: e },
  );
}

/** Appends the body to `partial` (from `start`) and returns the sha256 of the whole file. */
async function download(response: Response, partial: string, start: number, total: number | undefined, options: PullOptions, what: string): Promise<string> {
  // The bytes already on disk are hashed first, so the new ones are hashed as they arrive
  // and the file is never read twice.
  const hash = createHash("sha256");
  if (start > 0) await hashFile(partial, hash);
  const out = await fs.promises.open(partial, start > 0 ? "a" : "w");
  let bytes = start;
  let last = 0;
  const report = (force: boolean) => {
    const now = Date.now();
    if (!options.onProgress || (!force && now - last < 100)) return;
    last = now;
    options.onProgress({ bytes, totalBytes: total, resumedFrom: start });
  };
  try {
    report(true);
    if (response.body) {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        await out.write(chunk);
        hash.update(chunk);
        bytes += chunk.length;
        report(false);
      }
    }
    report(true);
  } catch (e) {
    if (options.signal?.aborted) throw new TesseraError("ERR_ABORTED", "the pull was aborted; the partial file is kept and resumes on the next pull", { cause: e });
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new TesseraError(
      "ERR_NETWORK",
      `the download of ${what} broke off at ${bytes}${total !== undefined ? ` of ${total}` : ""} bytes (${cause?.code ?? cause?.message ?? (e as Error).message}); run the pull again to resume`,
      { cause: e },
    );
  } finally {
    await out.close();
  }
  return hash.digest("hex");
}

async function hashFile(file: string, hash: ReturnType<typeof createHash>): Promise<string> {
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.copy().digest("hex");
}
