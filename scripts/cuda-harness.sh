#!/usr/bin/env bash
# Builds and runs the CUDA kernel harness (native/cuda/harness): each CUDA op against a
# float64 CPU reference, then timed. Needs nvcc and an NVIDIA GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${CUDA_ARCH:-90}"
cmake -S . -B build-harness -DCMAKE_BUILD_TYPE=Release -DTESSERA_CUDA_HARNESS=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DCMAKE_JS_INC="$(node -p 'require("node-api-headers").include_dir')" >/dev/null
cmake --build build-harness --target tessera_cuda_harness -j
./build-harness/tessera_cuda_harness
