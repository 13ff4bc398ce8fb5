// npm "install" hook: use a prebuilt or existing addon when one loads on this machine,
// otherwise compile from source with cmake-js (CPU always; CUDA too when nvcc is found).
import { createRequire } from "node:module";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);

function addonLoads() {
  try {
    require("node-gyp-build")(root);
    return true;
  } catch {
    return false;
  }
}

if (process.env.TESSERA_FORCE_BUILD !== "1" && addonLoads()) {
  console.log("tessera: using the existing native addon");
  process.exit(0);
}

const cmakeJs = require.resolve("cmake-js/bin/cmake-js");
const build = (...flags) =>
  spawnSync(process.execPath, [cmakeJs, "rebuild", "--log-level", "warn", ...flags], { cwd: root, stdio: "inherit" });
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
