#!/usr/bin/env node
// Stages the addon built here (build/Release) as this platform's prebuild, where
// node-gyp-build looks for one: prebuilds/<platform>-<arch>/node.napi.node (the name
// prebuildify --napi gives it), with libtessera_cuda.so beside it when the CUDA backend was
// built (core/cuda_loader.cpp loads it from the addon's own folder). Both are stripped of
// symbols. Runs as `prepack`, so `npm pack` and `npm publish` ship the prebuild and
// `npm install tessera` needs no cmake or compiler on this platform.
//   node scripts/stage-prebuild.mjs [package-dir]   (default: this package)
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const target = path.resolve(process.argv[2] ?? root);
const release = path.join(root, "build", "Release");
const addon = path.join(release, "tessera.node");
if (!fs.existsSync(addon)) {
  console.error("stage-prebuild: build/Release/tessera.node is missing; build first (npm install or npm run build:native)");
  process.exit(1);
}
const dir = path.join(target, "prebuilds", `${process.platform}-${process.arch}`);
fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(dir, { recursive: true });

const staged = [[addon, "node.napi.node"]];
const cuda = path.join(release, "libtessera_cuda.so");
if (fs.existsSync(cuda)) staged.push([cuda, "libtessera_cuda.so"]);
for (const [from, name] of staged) {
  const to = path.join(dir, name);
  fs.copyFileSync(from, to);
  // Symbols are a third of the addon and unused at run time; strip is optional (binutils).
  const strip = spawnSync("strip", ["--strip-unneeded", to], { stdio: "ignore" });
  const size = (fs.statSync(to).size / 1048576).toFixed(1);
  console.log(`stage-prebuild: ${path.relative(target, to)} ${size} MiB${strip.status === 0 ? " (stripped)" : ""}`);
}
