// Finds and dlopens the CUDA backend library (libtessera_cuda.so) that sits next to the
// addon. A machine without the library, a driver or a device gets a reason, never a crash.
#pragma once
#include <string>

namespace tessera {

class Backend;
struct BackendOptions;

struct CudaAvailability {
  bool available = false;
  int device_count = 0;
  std::string device_name;  // device 0, when available
  std::string reason;       // why not, when unavailable
};

const CudaAvailability& cuda_availability();

// Entry points the CUDA library exports with C linkage.
using CudaProbeFn = int (*)(char* name_out, int name_len, char* reason_out, int reason_len);
using CudaCreateBackendFn = Backend* (*)(const BackendOptions* options, char* error_out, int error_len);

CudaCreateBackendFn cuda_create_backend_fn();  // null when unavailable

}  // namespace tessera
