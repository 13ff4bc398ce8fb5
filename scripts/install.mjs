// npm "install" hook: use a prebuilt or existing addon when one loads on this machine,
// otherwise compile from source with cmake-js (CPU always; CUDA too when nvcc is found).
// cmake-js is a development dependency, so an install that finds a prebuild (linux-x64
// ships one) carries no build tooling; a source build takes cmake-js from the package's
// own node_modules when present (a clone) and through npx otherwise.
import { createRequire } from "node:module";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);

function loadableAddon() {
  try {
    const gypBuild = require("node-gyp-build");
    const file = gypBuild.resolve(root);
    require(file);
    return path.relative(root, file);
  } catch {
    return undefined;
  }
}

const existing = process.env.TESSERA_FORCE_BUILD === "1" ? undefined : loadableAddon();
if (existing) {
  console.log(`tessera: using the ${existing.startsWith("prebuilds") ? "prebuilt" : "existing"} native addon (${existing})`);
  process.exit(0);
}

let cmakeJs;
try {
  cmakeJs = [process.execPath, require.resolve("cmake-js/bin/cmake-js")];
} catch {
  cmakeJs = [process.platform === "win32" ? "npx.cmd" : "npx", "--yes", "cmake-js@^8.0.0"];
}
const build = (...flags) =>
  spawnSync(cmakeJs[0], [...cmakeJs.slice(1), "rebuild", "--log-level", "warn", ...flags], { cwd: root, stdio: "inherit" });
let result = build();
if (result.status !== 0) {
  // A CUDA toolchain that cannot build the backend must not cost the CPU engine.
  console.error("tessera: the build failed; retrying without the CUDA backend");
  result = build("--CDTESSERA_CUDA=OFF");
}
if (result.status !== 0) {
  console.error(
    "tessera: building the native addon failed. It needs cmake >= 3.18 and a C++17 compiler " +
      "(g++ or clang++); install them and run `npm rebuild tessera`.",
  );
  process.exit(result.status ?? 1);
}
