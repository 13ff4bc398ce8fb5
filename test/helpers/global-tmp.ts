import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * Vitest global setup: every temporary file of this run goes under one directory, removed when the
 * run ends. Test workers are forked after this runs and inherit TMPDIR, so os.tmpdir() in tests,
 * helpers and the processes they spawn points here. Per-file cleanup on process "exit" is not
 * enough: vitest ends its forks without running exit handlers, and synthetic models of a few
 * hundred MB each once filled the disk over a few runs.
 */
export default function setup(): () => void {
  const parent = process.env.TMPDIR && fs.existsSync(process.env.TMPDIR) ? process.env.TMPDIR : os.tmpdir();
  const dir = fs.mkdtempSync(path.join(parent, "tessera-run-"));
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    fs.rmSync(dir, { recursive: true, force: true });
  };
}
