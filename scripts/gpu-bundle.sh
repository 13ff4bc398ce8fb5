#!/usr/bin/env bash
# Packs what scripts/cuda-device.sh needs into .devgpu/, for a GPU machine that has the CUDA
# driver but no Node.js, no npm registry and no ../shared (scripts/gpu-bundle-run.sh unpacks
# and runs it there). Built here with nvcc, for one architecture to stay small:
#
#   .devgpu/bin.tar.xz     tessera.node, libtessera_cuda.so, tessera_cuda_harness (CUDA_ARCH,
#                          default 90-real)
#   .devgpu/node.xz        this machine's node binary
#   .devgpu/shared.tar.xz  the files of ../shared that the check and the benchmark models read
#   .devgpu/peer.xz        llama-bench with llama.cpp's CUDA backend, when build-peer/ holds one
#                          (scripts/build-llama-cuda-peer.sh)
#
# Machine code for one GPU architecture shrinks about tenfold under xz, which is what lets the
# peer travel too. The device tool carries ignored folders only when named, so this prints the
# list to name (.devgpu and dist) and checks the total against its 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${CUDA_ARCH:-90-real}"
bundle=.devgpu
mkdir -p "$bundle"

npx cmake-js rebuild --log-level warn --out build-gpu \
  --CDCMAKE_CUDA_ARCHITECTURES="$arch" --CDTESSERA_CUDA_HARNESS=ON
rm -rf build-gpu/bundle && mkdir build-gpu/bundle
cp build-gpu/Release/tessera.node build-gpu/Release/libtessera_cuda.so build-gpu/tessera_cuda_harness build-gpu/bundle/
strip build-gpu/bundle/libtessera_cuda.so build-gpu/bundle/tessera_cuda_harness
tar -C build-gpu/bundle -cf - . | xz -9 -T2 >"$bundle/bin.tar.xz"
npx tsc -p tsconfig.json

[ -f "$bundle/node.xz" ] || xz -9 -T2 -c "$(command -v node)" >"$bundle/node.xz"
# stories260K and the vocabularies the synthetic check and benchmark models borrow
# (dev/synthetic-model.ts).
tar -C ../shared -cJf "$bundle/shared.tar.xz" models/stories260K.gguf tokenizers/llama3 tokenizers/qwen2 tokenizers/smollm2
if [ -x build-peer/llama-bench ]; then
  xz -9 -T2 -c build-peer/llama-bench >"$bundle/peer.xz"
else
  rm -f "$bundle/peer.xz"
  echo "no build-peer/llama-bench: the bench runs without the llama.cpp CUDA peer"
fi

tree_bytes=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
extra_bytes=$(du -cb "$bundle" dist | tail -1 | cut -f1)
total_mib=$(( (tree_bytes + extra_bytes) / 1048576 ))
echo "bundle: $(du -sh "$bundle" | cut -f1) in $bundle, $(du -sh dist | cut -f1) in dist; with the tracked tree ${total_mib} MiB of the 64 MiB a device call carries"
echo "device call: carry [\"$bundle\", \"dist\"], command: bash scripts/gpu-bundle-run.sh [STAGE...]"
[ "$total_mib" -lt 64 ] || { echo "too large to carry" >&2; exit 1; }
