import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two test files at a time on CI's two cores. Most files spend their time in single-threaded
    // JavaScript (tokenizers, grammars, templates, the server) or in the CUDA emulator, which
    // runs a kernel's threads one after another; one file at a time left a core idle for most
    // of the run. Files that run native kernels on two threads share the cores with the other
    // file; each step's thread count follows its measured speed (ThreadChooser).
    fileParallelism: true,
    maxWorkers: 2,
    pool: "forks",
    // One temporary directory per run, removed at its end (see the file for why).
    globalSetup: ["test/helpers/global-tmp.ts"],
  },
});
