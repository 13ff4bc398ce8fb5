// C entry points of libtessera_cuda.so that the addon resolves with dlsym
// (core/cuda_loader.h). The library links cudart statically, so the only run-time
// requirement is the driver (libcuda.so.1); without one, probing reports why.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdio>

namespace {
void copy_message(char* out, int len, const char* message) {
  if (out && len > 0) std::snprintf(out, static_cast<size_t>(len), "%s", message);
}
}  // namespace

extern "C" __attribute__((visibility("default"))) int tessera_cuda_probe(char* name_out, int name_len,
                                                                         char* reason_out, int reason_len) {
#ifndef TESSERA_CUDA_EMULATOR
  // Without a driver cudart says "CUDA driver version is insufficient for CUDA runtime
  // version", which reads as an outdated driver; say what is actually missing. The handle
  // stays open: cudart loads the same library next.
  if (!dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL)) {
    copy_message(reason_out, reason_len, "no NVIDIA driver (libcuda.so.1 was not found); install the NVIDIA driver to use CUDA");
    return 0;
  }
#endif
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    char message[512];
    std::snprintf(message, sizeof message, "CUDA is not usable here: %s (%s)", cudaGetErrorString(err),
                  cudaGetErrorName(err));
    copy_message(reason_out, reason_len, message);
    cudaGetLastError();  // clear the sticky error so a later probe starts clean
    return 0;
  }
  if (count == 0) {
    copy_message(reason_out, reason_len, "the CUDA driver reports no devices");
    return 0;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
    char name[320];
    std::snprintf(name, sizeof name, "%s (sm_%d%d, %.1f GiB)", prop.name, prop.major, prop.minor,
                  static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
    copy_message(name_out, name_len, name);
  }
  return count;
}
