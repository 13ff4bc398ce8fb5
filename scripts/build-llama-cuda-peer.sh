#!/usr/bin/env bash
# Builds the CUDA peer for the GPU benchmarks: llama.cpp's llama-bench with its CUDA backend,
# from the llama.cpp release node-llama-cpp bundles (node_modules/node-llama-cpp/llama/
# gitRelease.bundle), so Tessera is compared with the same llama.cpp the CPU conformance tests
# use. The result is one binary, $PEER_OUT/llama-bench (default build-peer/), linked statically
# to ggml and llama and dynamically to libcudart and libcublas.
#
#   CUDA_ARCH   GPU architectures to compile (default 90-real: H100/H200 only, small to carry)
#   CUBLAS_DIR  a folder with include/cublas_v2.h and lib/libcublas.so.* (default: the CUDA
#               toolkit's own; the nvidia-cublas wheel's nvidia/cu13 folder works too)
#
# Builds without a GPU or driver: when the toolkit has no libcuda stub, one is made from the
# eleven driver entry points ggml's CUDA memory pool calls (the real driver replaces it at run
# time). The build takes about an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${CUDA_ARCH:-90-real}"
out="$(realpath -m "${PEER_OUT:-build-peer}")"
work="${PEER_WORK:-/tmp/tessera-llama-peer}"
cuda_root="$(dirname "$(dirname "$(command -v nvcc)")")"
cublas="${CUBLAS_DIR:-$cuda_root}"
cublas_lib="$(ls "$cublas"/lib*/libcublas.so* | head -1)"
cublaslt_lib="$(ls "$cublas"/lib*/libcublasLt.so* | head -1)"

mkdir -p "$work" "$out"
# Kept between runs, so an interrupted build picks up where it stopped.
[ -d "$work/src" ] || git clone -q node_modules/node-llama-cpp/llama/gitRelease.bundle "$work/src" 2>/dev/null

driver_args=()
if ! ls "$cuda_root"/lib64/libcuda.so* "$cuda_root"/lib64/stubs/libcuda.so >/dev/null 2>&1; then
  syms="cuDeviceGet cuDeviceGetAttribute cuGetErrorString cuMemAddressFree cuMemAddressReserve cuMemCreate
        cuMemGetAllocationGranularity cuMemMap cuMemRelease cuMemSetAccess cuMemUnmap"
  for s in $syms; do echo "int $s(void) { return 999; }"; done >"$work/cuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$work/libcuda.so" "$work/cuda_stub.c"
  driver_args=(-DCUDA_cuda_driver_LIBRARY="$work/libcuda.so")
fi

cmake -S "$work/src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DGGML_CUDA=ON -DGGML_CUDA_NCCL=OFF -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON \
  -DCUDA_cublas_LIBRARY="$cublas_lib" -DCUDA_cublasLt_LIBRARY="$cublaslt_lib" "${driver_args[@]}" \
  -DCMAKE_CUDA_FLAGS="-I$cublas/include" -DCMAKE_CXX_FLAGS="-I$cublas/include" >/dev/null
nice ninja -C "$work/build" llama-bench
cp "$work/build/bin/llama-bench" "$out/llama-bench"
strip "$out/llama-bench"
ls -la "$out/llama-bench"
