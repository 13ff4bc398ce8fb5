/**
 * `tessera pull <owner>/<repo>/<file> [--cache-dir DIR] [--revision REV] [--endpoint URL]
 * [--force]`: downloads a GGUF from the Hugging Face hub into the cache (lib/hub/pull.ts) and
 * prints its path on stdout. Progress goes to stderr: a redrawn bar on a terminal, one line at
 * the end otherwise (logs stay readable).
 */
import { parseArgs } from "node:util";
import { TesseraError } from "../errors.js";
import { defaultCacheDir, pullModel, type PullProgress } from "../hub/pull.js";

export const PULL_USAGE = `usage: tessera pull <owner>/<repo>/<file.gguf> [options]
      downloads one file of a Hugging Face repository into the cache and prints its path
      --cache-dir DIR     (default $TESSERA_CACHE or ~/.cache/tessera/models)
      --revision REV      branch, tag or commit (default main)
      --endpoint URL      the hub (default $HF_ENDPOINT or https://huggingface.co)
      --force             download again even when cached
  An interrupted pull resumes where it stopped; the file is checked against the sha256 the
  hub announces. HF_TOKEN is sent to the hub for private or gated repositories.`;

const mb = (n: number) => (n / 1e6).toFixed(1);

function bar(p: PullProgress, startedAt: number): string {
  const seconds = (Date.now() - startedAt) / 1000;
  const rate = seconds > 0 ? (p.bytes - p.resumedFrom) / seconds : 0;
  const total = p.totalBytes;
  if (total === undefined || total === 0) return `${mb(p.bytes)} MB  ${mb(rate)} MB/s`;
  const width = 30;
  const filled = Math.min(width, Math.round((p.bytes / total) * width));
  const eta = rate > 0 ? Math.max(0, (total - p.bytes) / rate) : NaN;
  return (
    `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${((p.bytes / total) * 100).toFixed(0).padStart(3)}% ` +
    `${mb(p.bytes)}/${mb(total)} MB  ${mb(rate)} MB/s` +
    (Number.isFinite(eta) ? `  ${Math.ceil(eta)} s left` : "")
  );
}

export async function pull(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      "cache-dir": { type: "string" },
      revision: { type: "string" },
      endpoint: { type: "string" },
      force: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(PULL_USAGE + "\n");
    return 0;
  }
  if (positionals.length !== 1) throw new TesseraError("ERR_INVALID_ARGUMENT", "pull needs exactly one <owner>/<repo>/<file> reference");
  const tty = process.stderr.isTTY === true;
  const startedAt = Date.now();
  let lastLine = "";
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once("SIGINT", onSigint);
  try {
    const result = await pullModel(positionals[0], {
      cacheDir: values["cache-dir"] ?? defaultCacheDir(),
      revision: values.revision,
      endpoint: values.endpoint,
      force: values.force,
      signal: controller.signal,
      onProgress: tty
        ? (p) => {
            const line = bar(p, startedAt);
            process.stderr.write(`\r${line}${" ".repeat(Math.max(0, lastLine.length - line.length))}`);
            lastLine = line;
          }
        : undefined,
    });
    if (tty && lastLine) process.stderr.write("\n");
    const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
    process.stderr.write(
      result.cached
        ? `tessera: ${positionals[0]} is already in the cache (${mb(result.bytes)} MB)\n`
        : `tessera: pulled ${positionals[0]} (${mb(result.bytes)} MB in ${seconds} s${result.sha256 ? ", sha256 verified" : ""})\n`,
    );
    process.stdout.write(result.path + "\n");
    return 0;
  } catch (e) {
    if (tty && lastLine) process.stderr.write("\n");
    throw e;
  } finally {
    process.off("SIGINT", onSigint);
  }
}
