#!/usr/bin/env bash
# Builds the CUDA backend against the CPU emulator (native/cuda/emulator) into build-emu/:
# the addon (build-emu/Release/tessera.node), libtessera_cuda.so with the kernels compiled as
# C++, and the kernel harness (build-emu/tessera_cuda_harness), so test/cuda/emulated-backend
# and the harness run the CUDA code on a machine without a GPU. Needs the CUDA headers
# (cuda_runtime.h, cuda_fp16.h), not nvcc or a device.
#   scripts/cuda-emulated.sh            configure and build the addon and the CUDA library (what
#                                       test/cuda loads; npm's pretest runs this)
#   scripts/cuda-emulated.sh harness    ... the harness too, then run it (exit status: its result)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${TESSERA_BUILD_JOBS:-2}"
cmake -S . -B build-emu -DCMAKE_BUILD_TYPE=Release -DTESSERA_CUDA_EMULATOR=ON -DTESSERA_CUDA_HARNESS=ON \
  -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PWD/build-emu/Release" -DCMAKE_JS_INC="$(node -p 'require("node-api-headers").include_dir')" >/dev/null
if [ "${1:-}" = "harness" ]; then
  cmake --build build-emu -j "$jobs"
  ./build-emu/tessera_cuda_harness
else
  # The harness is a large compile that npm test does not run: leave it to the harness mode.
  cmake --build build-emu -j "$jobs" --target tessera tessera_cuda
fi
