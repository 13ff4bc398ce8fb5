// npm pretest: brings the emulated CUDA build (build-emu/, scripts/cuda-emulated.sh) up to
// date when the CUDA headers are on this machine, so `npm test` runs the CUDA backend's
// kernels and executor (test/cuda) on the CPU even where no GPU is. Without the headers, or if
// that build fails, it says why and the CUDA suite reports itself skipped.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const roots = [process.env.CUDA_HOME, "/usr/local/cuda"].filter(Boolean);
const headers = roots.find((r) => fs.existsSync(path.join(r, "include", "cuda_runtime.h")));
if (!headers) {
  console.log("emulated CUDA build skipped: no CUDA headers (cuda_runtime.h) under CUDA_HOME or /usr/local/cuda");
} else {
  const r = spawnSync("bash", ["scripts/cuda-emulated.sh"], { stdio: ["ignore", "ignore", "inherit"] });
  if (r.status !== 0) console.log(`emulated CUDA build failed (exit ${r.status}); test/cuda will be skipped`);
}
