// A loaded model: the mapped GGUF, the validated plan whose tensors point into it, and the
// backend holding the prepared weights. Shared (shared_ptr) by every executor created from
// it, so disposing the JS model while a session still runs cannot free memory under it.
#pragma once
#include <memory>
#include <string>

#include "core/backend.h"
#include "core/mapped_file.h"
#include "core/model_plan.h"

namespace tessera {

enum class BackendKind { Cpu = 0, Cuda = 1 };

// How load_model gets the weights (loadModel's mmap and checkTensors options).
struct LoadSettings {
  bool map = true;             // false: read the file into memory (core/mapped_file.h)
  bool check_tensors = false;  // scan every weight for NaN/Inf first (core/tensor_check.h)
};

struct LoadedModel {
  MappedFile file;
  ModelPlan plan;
  std::unique_ptr<Backend> backend;
};

// Maps (or reads) `path`, binds and validates every tensor of `plan` against the file and the
// hyperparameters, optionally checks every weight's values, then creates and prepares the
// backend. Progress goes to `control` per tensor (and per chunk read); once it is aborted
// the load stops at the next tensor, frees what it built and returns Aborted.
Status load_model(const std::string& path, ModelPlan plan, BackendKind kind, const BackendOptions& options,
                  const LoadSettings& settings, LoadControl& control, std::shared_ptr<LoadedModel>* out);

// Checks that every tensor lies inside a file of file_size bytes, that sizes match types and
// dims, and that each role has the shape the hyperparameters imply.
Status validate_plan(const ModelPlan& plan, uint64_t file_size);

}  // namespace tessera
