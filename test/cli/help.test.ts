/** Every subcommand answers --help with its usage on stdout and exit 0, and refuses unknown flags. */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../helpers/paths.js";

const cli = path.join(repoRoot, "dist/lib/cli/main.js");
const tessera = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });

describe("tessera <command> --help", () => {
  it.each(["inspect", "info", "serve", "pull", "explore"])("%s --help", (command) => {
    const r = tessera(command, "--help");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^usage: tessera ${command}`));
    const bad = tessera(command, "--no-such-flag");
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/no-such-flag/);
  });

  it("inspect with no path shows the embedded model", () => {
    const r = tessera("inspect");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/general\.architecture\s+string\s+"llama"|llama/);
  });
});
