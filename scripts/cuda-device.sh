#!/usr/bin/env bash
# Everything the CUDA backend is checked and measured by, in one command on a GPU machine:
#   1. the device's ceilings (device-to-device copy bandwidth, bf16 matrix peak, via PyTorch
#      when it is there),
#   2. the kernel harness (every op against a CPU reference, then timed),
#   3. CUDA vs CPU logits end to end (scripts/cuda-check.ts check),
#   4. prefill pp512 / decode tg128 on Llama-3-8B-shaped Q4_0 and Q4_K_M files and a
#      Qwen3-30B-A3B-shaped mixture of experts (12 of its 48 layers, Q4_0), with the share of
#      the active-bytes bandwidth limit, and beside each the same file on llama.cpp's CUDA
#      build when $TESSERA_CUDA_PEER names its llama-bench (scripts/build-llama-cuda-peer.sh).
#
#   bash scripts/cuda-device.sh [STAGE...]   STAGE: models ceilings harness check bench
#                                            (default: all but models)
#
# `models` starts writing the benchmark files (several GB, minutes each) in a process of its
# own session, which outlives the command, and returns at once; `bench` waits for it. On a
# device whose calls run at most 10 minutes: `models harness`, then `check`, then `bench`
# with TESSERA_CUDA_BENCH naming one or two of the models, in calls back to back.
# Needs a build with the CUDA backend and the harness in $TESSERA_BUILD (default build/Release:
# `cmake-js rebuild --CDTESSERA_CUDA_HARNESS=ON`), dist/ (npx tsc) and ../shared.
# Logs go to $TESSERA_OUT (default bench/results/cuda).
set -uo pipefail
cd "$(dirname "$0")/.."
build="${TESSERA_BUILD:-build/Release}"
out="${TESSERA_OUT:-bench/results/cuda}"
models="${TESSERA_CUDA_BENCH:-llama-3-8b-Q4_0 llama-3-8b-Q4_K_M qwen3moe-30b-a3b-12l-Q4_0}"
mkdir -p "$out"
export TESSERA_ADDON_PATH="${TESSERA_ADDON_PATH:-$build/tessera.node}"
stages="${*:-ceilings harness check bench}"
models_log="${TMPDIR:-/tmp}/tessera-bench-models.log"
wants() { [[ " $stages " == *" $1 "* ]]; }
status=0

if wants models; then
  echo "== writing $models in the background ($models_log)"
  setsid nohup node dist/scripts/cuda-check.js write $models >"$models_log" 2>&1 </dev/null &
fi

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 | tee "$out/device.txt"

bandwidth=0
# The bench needs the measured bandwidth for its shares, so it measures the ceilings too.
if { wants ceilings || wants bench; } && python3 -c "import torch" 2>/dev/null; then
  python3 - <<'EOF' 2>&1 | tee "$out/ceilings.txt"
import torch
def timed(fn, reps):
    fn(); torch.cuda.synchronize()
    s, e = torch.cuda.Event(True), torch.cuda.Event(True)
    times = []
    for _ in range(reps):
        s.record(); fn(); e.record(); torch.cuda.synchronize(); times.append(s.elapsed_time(e))
    return sorted(times)[len(times) // 2]
src = torch.randn(1 << 30, device="cuda", dtype=torch.float32)  # 4 GiB, far beyond L2
dst = torch.empty_like(src)
ms = timed(lambda: dst.copy_(src), 20)
print(f"copy bandwidth (read+write) {2 * src.numel() * 4 / ms / 1e6:.0f} GB/s")
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
ms = timed(lambda: a @ b, 20)
print(f"bf16 matmul peak {2 * 8192**3 / ms / 1e9:.0f} TFLOP/s")
EOF
  bandwidth=$(sed -n 's/^copy bandwidth (read+write) \([0-9]*\) GB\/s/\1/p' "$out/ceilings.txt")
fi

if wants harness; then
  echo "== kernel harness"
  timeout 300 "$build/tessera_cuda_harness" 2>&1 | tee "$out/harness.log" || status=1
fi
if wants check; then
  echo "== CUDA vs CPU logits"
  timeout 400 node dist/scripts/cuda-check.js check 2>&1 | tee "$out/check.log" || status=1
fi
if wants bench; then
  echo "== prefill / decode"
  while pgrep -f "cuda-check.js write" >/dev/null; do sleep 5; done
  [ -s "$models_log" ] && cat "$models_log"
  peer=()
  [ -n "${TESSERA_CUDA_PEER:-}" ] && peer=(--peer "$TESSERA_CUDA_PEER")
  # One model per run (each writes its multi-GB file on first use): $out/bench-MODEL.json.
  : >"$out/bench.log"
  for model in $models; do
    timeout 600 node dist/scripts/cuda-check.js bench "$model" --bandwidth "${bandwidth:-0}" "${peer[@]}" \
      --out "$out/bench-$model.json" 2>&1 | tee -a "$out/bench.log" || status=1
  done
fi
exit $status
