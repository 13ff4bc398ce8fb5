/**
 * The CUDA peer for the GPU benchmarks: llama.cpp's own `llama-bench`, built with its CUDA
 * backend from the llama.cpp release that node-llama-cpp bundles
 * (scripts/build-llama-cuda-peer.sh). node-llama-cpp's prebuilt CUDA package targets CUDA 12
 * and does not fit on a machine that only has CUDA 13; llama-bench runs the same kernels on
 * the same GGUF file without the Node binding around them.
 *
 * It measures pp512 and tg128 with flash attention off and on and keeps the faster of each,
 * so the peer is taken at its best configuration.
 */
import { spawnSync } from "node:child_process";

export interface PeerFigures {
  pp512: number;
  tg128: number;
  /** The flash-attention setting each figure came from. */
  ppFlashAttention: boolean;
  tgFlashAttention: boolean;
  buildCommit: string;
  gpu: string;
}

interface LlamaBenchRow {
  n_prompt: number;
  n_gen: number;
  avg_ts: number;
  /** llama_flash_attn_type: 0 off, 1 on. */
  flash_attn: number;
  build_commit: string;
  gpu_info: string;
}

function best(rows: LlamaBenchRow[], test: (r: LlamaBenchRow) => boolean, what: string): LlamaBenchRow {
  const matching = rows.filter(test);
  if (matching.length === 0) throw new Error(`llama-bench reported no ${what} result`);
  return matching.reduce((a, b) => (b.avg_ts > a.avg_ts ? b : a));
}

/** Runs llama-bench (all layers on the GPU) on `modelFile` and returns its best pp512 and tg128. */
export function measureLlamaCppCuda(binary: string, modelFile: string, repetitions = 5): PeerFigures {
  const args = ["-m", modelFile, "-p", "512", "-n", "128", "-ngl", "99", "-fa", "0,1", "-r", String(repetitions), "-o", "json"];
  const run = spawnSync(binary, args, { encoding: "utf8", maxBuffer: 16 << 20, timeout: 300_000 });
  if (run.error) throw new Error(`could not run the llama.cpp peer ${binary}: ${run.error.message}`);
  if (run.status !== 0) {
    throw new Error(`llama-bench exited with ${run.status ?? run.signal}: ${run.stderr.split("\n").slice(-8).join("\n")}`);
  }
  const rows = JSON.parse(run.stdout) as LlamaBenchRow[];
  // Without a usable device llama.cpp falls back to its CPU backend and says so on stderr
  // only; CPU figures must not stand in for the CUDA peer.
  if (rows.some((r) => !r.gpu_info)) {
    throw new Error(`llama-bench found no GPU, so it ran on the CPU: ${run.stderr.split("\n").find((l) => /cuda/i.test(l)) ?? ""}`);
  }
  const pp = best(rows, (r) => r.n_prompt === 512 && r.n_gen === 0, "pp512");
  const tg = best(rows, (r) => r.n_prompt === 0 && r.n_gen === 128, "tg128");
  return {
    pp512: pp.avg_ts,
    tg128: tg.avg_ts,
    ppFlashAttention: pp.flash_attn === 1,
    tgFlashAttention: tg.flash_attn === 1,
    buildCommit: tg.build_commit,
    gpu: tg.gpu_info,
  };
}
