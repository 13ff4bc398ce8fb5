// loadModel's checkTensors (llama.cpp's --check-tensors): every weight scanned for NaN and
// Infinity before the backend prepares it, so a damaged file fails at load with the
// tensor's name instead of producing NaN logits at the first step.
#pragma once
#include "core/model_plan.h"
#include "core/status.h"

namespace tessera {

// NonFinite naming the tensor and the first bad element (or block) when any value of `t` is
// NaN or infinite. Float types are scanned whole; quantized blocks by their fp16 scales (d,
// and dmin for Q4_K): their integer parts are bounded, so finite scales give finite
// dequantized weights. Types no kernel reads are skipped.
Status check_tensor_finite(const TensorRef& t);

}  // namespace tessera
