#include "core/cuda_loader.h"

#include <dlfcn.h>

#include <string>

namespace tessera {

namespace {

std::string directory_of_this_library() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&directory_of_this_library), &info) == 0 || !info.dli_fname) return ".";
  std::string path = info.dli_fname;
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

struct LoadedCuda {
  CudaAvailability availability;
  CudaCreateBackendFn create = nullptr;
};

LoadedCuda load() {
  LoadedCuda loaded;
  std::string path = directory_of_this_library() + "/libtessera_cuda.so";
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* err = dlerror();
    loaded.availability.reason =
        std::string("the CUDA backend library was not built or cannot load (") + (err ? err : path) +
        "); rebuild with nvcc on PATH to enable it";
    return loaded;
  }
  auto probe = reinterpret_cast<CudaProbeFn>(dlsym(handle, "tessera_cuda_probe"));
  auto create = reinterpret_cast<CudaCreateBackendFn>(dlsym(handle, "tessera_cuda_create_backend"));
  if (!probe || !create) {
    loaded.availability.reason = "libtessera_cuda.so is from another build (entry points missing); rebuild tessera";
    return loaded;
  }
  char name[256] = {0};
  char reason[512] = {0};
  int count = probe(name, sizeof name, reason, sizeof reason);
  loaded.availability.device_count = count > 0 ? count : 0;
  if (count <= 0) {
    loaded.availability.reason = reason[0] ? reason : "no CUDA device found";
    return loaded;
  }
  loaded.availability.available = true;
  loaded.availability.device_name = name;
  loaded.create = create;
  return loaded;
}

const LoadedCuda& loaded_cuda() {
  static const LoadedCuda loaded = load();
  return loaded;
}

}  // namespace

const CudaAvailability& cuda_availability() { return loaded_cuda().availability; }

CudaCreateBackendFn cuda_create_backend_fn() { return loaded_cuda().create; }

}  // namespace tessera
