/**
 * The CLI (dist/lib/cli/main.js, built by tsc): --help on every command; `run` with the
 * stop, special-token, EOS and penalty flags gives what the API gives with those options;
 * `chat` over a pipe answers each line as model.chat does, /reset starts over, and
 * --json-schema is refused with a coded error while constrained decoding is missing.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../../lib/index.js";
import { hasShared, repoRoot, stories260K, tempDir } from "../helpers/paths.js";

const cli = path.join(repoRoot, "dist/lib/cli/main.js");
const hasCli = fs.existsSync(cli);

function tessera(args: string[], input?: string): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [cli, ...args], { input, encoding: "utf8", timeout: 120_000 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

describe.runIf(hasCli)("tessera --help", () => {
  for (const command of ["run", "chat", "inspect", "info"]) {
    it(command, () => {
      const r = tessera([command, "--help"]);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: tessera ${command}`));
    });
  }
  it("names the mistake and where the options are", () => {
    const r = tessera(["run", stories260K, "--temperature", "warm"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('ERR_INVALID_ARGUMENT: --temperature expects a number, got "warm"');
    expect(r.stderr).toContain('Run "tessera run --help"');
    expect(tessera(["chat", stories260K, "--bogus"]).stderr).toContain('Run "tessera chat --help"');
  });
});

describe.runIf(hasCli && hasShared)("tessera run and chat on stories260K", () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(stories260K, { backend: "cpu", threads: 1, contextSize: 512 });
  });
  afterAll(() => model?.dispose());
  const common = ["--threads", "1", "--context", "512"];

  it("run: --stop, --ignore-eos, --parse-special and the penalties", async () => {
    const args = ["--temperature", "0", "--max-tokens", "60", "--repeat-penalty", "1.3", "--repeat-last-n", "16", "--frequency-penalty", "0.2", "--presence-penalty", "0.1"];
    const options = { temperature: 0, maxTokens: 60, repeatPenalty: 1.3, repeatLastN: 16, frequencyPenalty: 0.2, presencePenalty: 0.1 };
    const full = await model.complete("Once upon a time", options);
    const stopAt = full.text.slice(20, 24);
    const r = tessera(["run", stories260K, "--prompt", "Once upon a time", ...args, "--stop", stopAt, "--stop", "zzz", ...common]);
    expect(r.status).toBe(0);
    const stopped = await model.complete("Once upon a time", { ...options, stop: [stopAt, "zzz"] });
    expect(r.stdout).toBe(stopped.text + "\n");
    expect(stopped.text.length).toBeLessThan(full.text.length);

    const eos = tessera(["run", stories260K, "--prompt", "", "--temperature", "0", "--max-tokens", "300", "--ignore-eos", ...common]);
    const api = await model.complete("", { temperature: 0, maxTokens: 300, ignoreEos: true });
    expect(api.tokens.length).toBe(300);
    expect(eos.stdout).toBe(api.text + "\n");

    // "<s>" is stories260K's BOS: with --parse-special it is that token, without it text.
    const special = tessera(["run", stories260K, "--prompt", "<s>Lily", "--parse-special", "--temperature", "0", "--max-tokens", "10", ...common]);
    expect(special.stdout).toBe((await model.complete("<s>Lily", { temperature: 0, maxTokens: 10, parseSpecial: true })).text + "\n");
  });

  it("chat: answers each piped line as model.chat does; /reset starts over", async () => {
    const opts = { temperature: 0, maxTokens: 12 };
    const r = tessera(["chat", stories260K, "--system", "You tell stories.", "--temperature", "0", "--max-tokens", "12", ...common], "Tell me about Lily.\nAnd Tom?\n/reset\nTell me about Lily.\n");
    expect(r.status).toBe(0);
    const system = { role: "system", content: "You tell stories." };
    const first = await model.chat([system, { role: "user", content: "Tell me about Lily." }], opts);
    const second = await model.chat([system, { role: "user", content: "Tell me about Lily." }, first.message, { role: "user", content: "And Tom?" }], opts);
    expect(r.stdout).toBe(`${first.text}\n${second.text}\n${first.text}\n`);
  });

  it("chat: --json-schema makes each reply JSON matching the schema", () => {
    const schema = path.join(tempDir("cli"), "schema.json");
    fs.writeFileSync(schema, JSON.stringify({ type: "object", properties: { a: { type: "string", maxLength: 8 } }, required: ["a"] }));
    const r = tessera(["chat", stories260K, "--json-schema", schema, "--max-tokens", "40", ...common], "Hi\n");
    expect(r.status, r.stderr).toBe(0);
    expect(typeof (JSON.parse(r.stdout.trim()) as { a: unknown }).a).toBe("string");
    expect(tessera(["chat", stories260K, "--json-schema", "/nonexistent/schema.json"]).stderr).toContain("ERR_IO");
    const template = path.join(path.dirname(schema), "plain.jinja");
    fs.writeFileSync(template, "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:");
    expect(tessera(["chat", stories260K, "--template", template, ...common], "Hi\n").status).toBe(0);
    fs.writeFileSync(template, "{% for m in messages %}");
    expect(tessera(["chat", stories260K, "--template", template, ...common], "Hi\n").stderr).toContain("ERR_CHAT_TEMPLATE");
  });
});
