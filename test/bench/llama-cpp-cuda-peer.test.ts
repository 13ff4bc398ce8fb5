// The CUDA peer wrapper reads llama-bench's JSON: these runs use a stand-in executable that
// prints rows in llama-bench's format, so the selection of the best flash-attention setting
// and the failure paths are checked without a GPU.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { measureLlamaCppCuda } from "../../dev/llama-cpp-cuda-peer.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tessera-peer-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function fakeLlamaBench(name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

const row = (n_prompt: number, n_gen: number, flash_attn: number, avg_ts: number) =>
  ({ build_commit: "de3ff81", gpu_info: "NVIDIA H100 80GB HBM3", n_prompt, n_gen, flash_attn, avg_ts });

describe("llama.cpp CUDA peer (llama-bench)", () => {
  it("passes the model and the benchmark shape, and keeps the faster flash-attention setting of each test", () => {
    const rows = [row(512, 0, 0, 9100.5), row(0, 128, 0, 171.25), row(512, 0, 1, 9800.75), row(0, 128, 1, 168.5)];
    // The stand-in fails unless it was asked for what the wrapper promises to measure.
    const bin = fakeLlamaBench(
      "args-checked",
      `case "$*" in *"-m /models/x.gguf"*"-p 512 -n 128 -ngl 99 -fa 0,1"*"-o json"*) ;; *) echo "bad args: $*" >&2; exit 3;; esac
cat <<'EOF'
${JSON.stringify(rows, null, 2)}
EOF`,
    );
    const peer = measureLlamaCppCuda(bin, "/models/x.gguf");
    expect(peer.pp512).toBe(9800.75);
    expect(peer.ppFlashAttention).toBe(true);
    expect(peer.tg128).toBe(171.25);
    expect(peer.tgFlashAttention).toBe(false);
    expect(peer.buildCommit).toBe("de3ff81");
    expect(peer.gpu).toContain("H100");
  });

  it("reports llama-bench's own error when it exits non-zero", () => {
    const bin = fakeLlamaBench("fails", `echo "ggml_cuda_init: failed to initialize CUDA: no CUDA-capable device" >&2; exit 1`);
    expect(() => measureLlamaCppCuda(bin, "/models/x.gguf")).toThrow(/exited with 1.*no CUDA-capable device/s);
  });

  it("refuses output without a tg128 row rather than reporting a partial comparison", () => {
    const bin = fakeLlamaBench("no-tg", `echo '${JSON.stringify([row(512, 0, 1, 9000)])}'`);
    expect(() => measureLlamaCppCuda(bin, "/models/x.gguf")).toThrow(/no tg128 result/);
  });

  it("refuses CPU figures from a llama-bench that found no GPU", () => {
    const cpuRows = [row(512, 0, 0, 13259), row(0, 128, 0, 1500)].map((r) => ({ ...r, gpu_info: "" }));
    const bin = fakeLlamaBench(
      "no-gpu",
      `echo "ggml_cuda_init: failed to initialize CUDA: CUDA driver version is insufficient" >&2; echo '${JSON.stringify(cpuRows)}'`,
    );
    expect(() => measureLlamaCppCuda(bin, "/models/x.gguf")).toThrow(/found no GPU.*failed to initialize CUDA/);
  });

  it("says which binary could not be started", () => {
    expect(() => measureLlamaCppCuda(path.join(dir, "missing"), "/models/x.gguf")).toThrow(/could not run the llama.cpp peer .*missing/);
  });
});
