#!/usr/bin/env bash
# Runs scripts/cuda-device.sh on a GPU machine from the bundle scripts/gpu-bundle.sh packed
# (.devgpu/ and dist/ carried beside the tracked tree): unpacks node and ../shared, points the
# check at the bundled build, and, when the bundle holds llama.cpp's CUDA llama-bench, finds
# the CUDA runtime and cuBLAS it links (the toolkit's or the nvidia-* Python wheels') and
# benchmarks it side by side.
#
#   bash scripts/gpu-bundle-run.sh [STAGE...]   stages of cuda-device.sh (default: all of them)
#
# Logs go to $OUT when the device tool sets it, else bench/results/cuda.
set -uo pipefail
cd "$(dirname "$0")/.."
bundle="$PWD/.devgpu"

unpacked=/tmp/tessera-bundle
mkdir -p "$unpacked/bin" "$unpacked/build"
xz -dc "$bundle/node.xz" >"$unpacked/bin/node" && chmod +x "$unpacked/bin/node"
export PATH="$unpacked/bin:$PATH"
xz -dc "$bundle/bin.tar.xz" | tar -C "$unpacked/build" -xf -
if [ ! -e ../shared ]; then
  mkdir -p "$unpacked/shared" && tar -C "$unpacked/shared" -xJf "$bundle/shared.tar.xz" && ln -s "$unpacked/shared" ../shared
fi

export TESSERA_BUILD="$unpacked/build"
export TESSERA_OUT="${OUT:-bench/results/cuda}"
if [ -f "$bundle/peer.xz" ]; then
  xz -dc "$bundle/peer.xz" >"$unpacked/bin/llama-bench" && chmod +x "$unpacked/bin/llama-bench"
  # One walk of the library folders, the toolkit's first. cuBLAS and cuBLASLt must come from
  # one folder (one release).
  found="$(find /usr/local/cuda*/ /usr/lib /opt /usr/local/lib \( -name libcublas.so.13 -o -name libcudart.so.13 \) 2>/dev/null)"
  cublas_dir=""
  for c in $(grep '/libcublas.so.13$' <<<"$found"); do
    [ -e "$(dirname "$c")/libcublasLt.so.13" ] && { cublas_dir="$(dirname "$c")"; break; }
  done
  cudart="$(grep -m1 '/libcudart.so.13$' <<<"$found")"
  lib_dirs="$cublas_dir${cudart:+:$(dirname "$cudart")}"
  export LD_LIBRARY_PATH="${lib_dirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if ldd "$unpacked/bin/llama-bench" | grep -q "not found"; then
    echo "llama.cpp peer: libraries missing, benchmarking without it:"
    ldd "$unpacked/bin/llama-bench" | grep "not found"
  else
    export TESSERA_CUDA_PEER="$unpacked/bin/llama-bench"
  fi
fi
exec bash scripts/cuda-device.sh "$@"
