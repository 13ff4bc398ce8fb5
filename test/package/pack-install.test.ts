/**
 * `npm install tessera` on a machine without build tools: the addon built here is staged as
 * the linux-x64 prebuild (scripts/stage-prebuild.mjs, the `prepack` hook), `npm pack` makes
 * the tarball, and an empty project installs it offline from the npm cache (the install
 * `npm install` of this repository made filled it) with cmake, make and the C/C++ compilers
 * absent from PATH. Proves: the tarball holds the prebuild, the embedded model and its
 * licence, and no build tooling among the dependencies; the install hook took the prebuild;
 * the package generates through its API and its CLI with no model path (stories260K it
 * ships), the same text as this checkout; its declarations compile for a TypeScript
 * consumer (stripInternal left nothing dangling). Reports the installed sizes.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../lib/index.js";
import { repoRoot, tempDir } from "../helpers/paths.js";

const addon = path.join(repoRoot, "build/Release/tessera.node");
// npm's own script: the one running `npm test` (npm_execpath), else the one installed with node.
const npmCli =
  process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath)
    ? process.env.npm_execpath
    : path.join(path.dirname(path.dirname(fs.realpathSync(process.execPath))), "lib/node_modules/npm/bin/npm-cli.js");
const runnable = process.platform === "linux" && process.arch === "x64" && fs.existsSync(addon) && fs.existsSync(npmCli);
const TOOLS = ["cmake", "make", "gcc", "g++", "cc", "c++", "clang", "clang++", "nvcc"];

interface LockEntry {
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [key: string]: unknown;
}

/**
 * A lockfile for a project depending on the tarball alone: tessera's run-time dependencies
 * with the versions and integrity hashes of this repository's lockfile, so npm installs them
 * from the cache by hash (--offline) without asking the registry for version lists a
 * lockfile-driven install never cached.
 */
function consumerLock(tarball: string, pkg: { name: string; version: string; dependencies: Record<string, string>; bin: object; engines: object; license: string }): object {
  const repoLock = JSON.parse(fs.readFileSync(path.join(repoRoot, "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> };
  const entries = repoLock.packages;
  const packages: Record<string, LockEntry | object> = {};
  // Node's resolution over lockfile paths: the nearest node_modules/<name> up the tree.
  const resolve = (from: string, name: string): string | undefined => {
    for (let at = from; ; ) {
      const candidate = (at ? `${at}/` : "") + `node_modules/${name}`;
      if (entries[candidate]) return candidate;
      if (!at) return undefined;
      const cut = at.lastIndexOf("/node_modules/");
      at = cut < 0 ? "" : at.slice(0, cut);
    }
  };
  const registry = execFileSync(process.execPath, [npmCli, "config", "get", "registry"], { encoding: "utf8" }).trim().replace(/\/?$/, "/");
  const queue: Array<[string, string, boolean]> = Object.keys(pkg.dependencies).map((n) => ["", n, false]);
  while (queue.length) {
    const [from, name, optional] = queue.shift()!;
    const at = resolve(from, name);
    if (!at) {
      if (optional) continue;
      throw new Error(`${name} (needed by ${from || "tessera"}) is not in package-lock.json`);
    }
    if (packages[at]) continue;
    const { dev: _dev, devOptional: _devOptional, ...entry } = entries[at];
    // This repository's lockfile leaves registry URLs out (omit-lockfile-registry-resolved);
    // without one npm asks the registry where the tarball is, even when the cache has it.
    const base = name.split("/").pop();
    if (!entry.resolved && !entry.link) entry.resolved = `${registry}${name}/-/${base}-${entry.version}.tgz`;
    packages[at] = entry;
    for (const n of Object.keys(entry.dependencies ?? {})) queue.push([at, n, false]);
    for (const n of Object.keys(entry.optionalDependencies ?? {})) queue.push([at, n, true]);
    for (const n of Object.keys(entry.peerDependencies ?? {})) queue.push([at, n, entry.peerDependenciesMeta?.[n]?.optional === true]);
  }
  const integrity = "sha512-" + createHash("sha512").update(fs.readFileSync(tarball)).digest("base64");
  const spec = `file:${path.basename(tarball)}`;
  return {
    name: "consumer",
    lockfileVersion: 3,
    requires: true,
    packages: {
      "": { name: "consumer", dependencies: { tessera: spec } },
      "node_modules/tessera": {
        version: pkg.version,
        resolved: spec,
        integrity,
        hasInstallScript: true,
        license: pkg.license,
        dependencies: pkg.dependencies,
        bin: pkg.bin,
        engines: pkg.engines,
      },
      ...packages,
    },
  };
}

function du(dir: string): number {
  let bytes = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) bytes += du(p);
    else if (e.isFile()) bytes += fs.statSync(p).size;
  }
  return bytes;
}

describe.runIf(runnable)("npm pack, then npm install without build tools", () => {
  it("installs the prebuild offline and generates with the embedded model", { timeout: 300_000 }, async () => {
    const started = Date.now();
    const phases: string[] = [];
    const phase = (name: string) => phases.push(`${name} ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const work = tempDir("pack");
    const project = path.join(work, "consumer");
    fs.mkdirSync(project);

    // Pack exactly as `npm pack` does, less `prepare` (the TypeScript is built already).
    execFileSync(process.execPath, [path.join(repoRoot, "scripts/stage-prebuild.mjs")], { cwd: repoRoot, stdio: "pipe" });
    const packed = JSON.parse(
      execFileSync(process.execPath, [npmCli, "pack", "--ignore-scripts", "--json", "--pack-destination", project], { cwd: repoRoot, encoding: "utf8" }),
    ) as Array<{ filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> }>;
    const tarball = path.join(project, packed[0].filename);
    phase("packed");
    const shipped = packed[0].files.map((f) => f.path);
    for (const f of ["prebuilds/linux-x64/node.napi.node", "models/stories260K.gguf", "models/stories260K.LICENSE", "dist/lib/index.js", "dist/lib/index.d.ts", "dist/lib/cli/main.js", "scripts/install.mjs", "CMakeLists.txt"])
      expect(shipped, f).toContain(f);
    if (fs.existsSync(path.join(repoRoot, "build/Release/libtessera_cuda.so"))) expect(shipped).toContain("prebuilds/linux-x64/libtessera_cuda.so");
    expect(shipped.filter((f) => /^(test|bench|build|\.ci)\/|\.map$|^dist\/(bench|scripts)\//.test(f))).toEqual([]);

    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8"));
    expect(Object.keys(pkg.dependencies)).not.toContain("cmake-js");
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module", dependencies: { tessera: `file:${packed[0].filename}` } }, null, 2));
    fs.writeFileSync(path.join(project, "package-lock.json"), JSON.stringify(consumerLock(tarball, pkg), null, 2));

    // A PATH holding node and sh (npm runs install scripts through it) and nothing else: no
    // cmake, make or compiler to fall back on.
    const bin = path.join(work, "bin");
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, "node"));
    fs.symlinkSync("/bin/sh", path.join(bin, "sh"));
    const env = { ...process.env, PATH: bin, npm_config_update_notifier: "false" };
    for (const tool of TOOLS) expect(spawnSync("/bin/sh", ["-c", `command -v ${tool}`], { env }).status, tool).not.toBe(0);

    const install = spawnSync(process.execPath, [npmCli, "install", "--offline", "--no-audit", "--no-fund", "--foreground-scripts"], { cwd: project, env, encoding: "utf8" });
    const log = install.stdout + install.stderr;
    phase("installed");
    expect(install.status, log).toBe(0);
    expect(log).toMatch(/tessera: using the prebuilt native addon \(prebuilds\/linux-x64\/node\.napi\.node\)/);
    const installed = path.join(project, "node_modules/tessera");
    expect(fs.existsSync(path.join(installed, "build")), "no build directory: nothing was compiled").toBe(false);
    expect(fs.existsSync(path.join(project, "node_modules/cmake-js"))).toBe(false);

    // The API with no model path, the same greedy text as this checkout gives.
    const options = { temperature: 0, maxTokens: 40, seed: 1 };
    fs.writeFileSync(
      path.join(project, "run.mjs"),
      `import { loadModel, systemInfo, DEFAULT_MODEL } from "tessera";
const model = await loadModel({ backend: "cpu", threads: 1 });
const { text } = await model.complete("Once upon a time", ${JSON.stringify(options)});
model.dispose();
console.log(JSON.stringify({ text, model: DEFAULT_MODEL, cuda: systemInfo().cuda }));`,
    );
    const run = spawnSync("node", ["run.mjs"], { cwd: project, env, encoding: "utf8" });
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { text: string; model: string; cuda: { available: boolean; reason?: string } };
    const here = await loadModel({ backend: "cpu", threads: 1 });
    const expected = (await here.complete("Once upon a time", options)).text;
    here.dispose();
    expect(out.text.length).toBeGreaterThan(20);
    expect(out.text).toBe(expected);
    expect(out.model).toBe(path.join(fs.realpathSync(installed), "models/stories260K.gguf"));
    // The shipped CUDA library is found beside the prebuilt addon: CUDA is usable, or the
    // reason is about this machine (no driver, no device), not a missing library.
    if (shipped.includes("prebuilds/linux-x64/libtessera_cuda.so") && !out.cuda.available) expect(out.cuda.reason).not.toMatch(/not built|cannot load/);

    // The CLI as `npx tessera run` runs it: no model argument.
    const cli = spawnSync(path.join(project, "node_modules/.bin/tessera"), ["run", "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "40", "--threads", "1", "--backend", "cpu"], {
      cwd: project,
      env,
      encoding: "utf8",
    });
    phase("generated");
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).toBe(expected + "\n");

    // A TypeScript consumer type-checks against the shipped declarations (their own
    // consistency is test/package/exports.test.ts's; skipLibCheck keeps this one quick).
    fs.writeFileSync(
      path.join(project, "consumer.ts"),
      `import { loadModel, pullModel, tokenizerFromHuggingFace, writeGGUF, ggufValue, GGMLType, GGUFValueType, systemInfo, createServer,
  type GGUFSpec, type LoadOptions, type ModelInfo, type PulledModel, type SystemInfo, type KvCacheType, type Tokenizer, type TesseraServer } from "tessera";
const options: LoadOptions = { backend: "cpu", kvCacheType: "q8_0" satisfies KvCacheType };
const model = await loadModel(options);
const info: ModelInfo = model.info;
const spec: GGUFSpec = { metadata: [["general.architecture", ggufValue.str("llama")]], tensors: [{ name: "t", type: GGMLType.F32, dims: [1], data: new Uint8Array(4) }] };
writeGGUF("/dev/null", spec);
const kind: GGUFValueType = GGUFValueType.STRING;
const pulled: Promise<PulledModel> = pullModel("a/b/c.gguf", { cacheDir: "/tmp/x" });
const tokenizer: Tokenizer = tokenizerFromHuggingFace("/nowhere");
const system: SystemInfo = systemInfo();
const server: TesseraServer = createServer({ model });
void [info, kind, pulled, tokenizer, system, server];
`,
    );
    fs.writeFileSync(
      path.join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: true, types: ["node"], typeRoots: [path.join(repoRoot, "node_modules/@types")] },
        files: ["consumer.ts"],
      }),
    );
    const tsc = spawnSync("node", [path.join(repoRoot, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: project, env, encoding: "utf8" });
    // Errors are listed for tessera's files first, the readable failure.
    const ours = (tsc.stdout + tsc.stderr).split("\n").filter((l) => /consumer\.ts|node_modules\/tessera\//.test(l));
    expect(ours).toEqual([]);
    expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
    phase("type-checked");

    const mb = (b: number) => (b / 1e6).toFixed(1);
    console.log(
      `tarball ${mb(fs.statSync(tarball).size)} MB; installed: node_modules/tessera ${mb(du(installed))} MB, ` +
        `node_modules ${mb(du(path.join(project, "node_modules")))} MB (${fs.readdirSync(path.join(project, "node_modules")).length} entries); ${phases.join(", ")}`,
    );
  });
});
