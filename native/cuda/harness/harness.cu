// CUDA kernel harness: runs every CUDA op on random inputs, compares it with a float64 CPU
// reference (weights decoded by the CPU engine's dequantize_row) by relative error against
// per-type budgets, then times it with CUDA events (median of many runs, weights rotated
// through copies larger than L2 so GEMV streams from HBM). Exit status 1 when any check
// fails. Run with scripts/cuda-harness.sh on a machine with an NVIDIA GPU.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cpu/ops.h"
#include "cuda/common.cuh"
#include "cuda/ops.cuh"

using namespace tessera;
using namespace tessera::cuda;

namespace {

int failures = 0;
std::mt19937 rng(12345);

#define CHECK_CUDA(x)                                                                        \
  do {                                                                                       \
    cudaError_t e = (x);                                                                     \
    if (e != cudaSuccess) {                                                                  \
      std::fprintf(stderr, "CUDA error %s at %s:%d\n", cudaGetErrorString(e), __FILE__, __LINE__); \
      return;                                                                                \
    }                                                                                        \
  } while (0)

float gauss() { return std::normal_distribution<float>(0.f, 1.f)(rng); }
uint8_t byte() { return uint8_t(rng() & 0xFF); }

// Random but well-formed bytes of `rows` rows of `cols` values of `type`.
std::vector<uint8_t> random_rows(GgmlType type, int64_t rows, int64_t cols) {
  const size_t rb = ggml_row_bytes(type, cols);
  std::vector<uint8_t> out(rb * rows);
  for (auto& b : out) b = byte();
  auto put16 = [&](size_t at, uint16_t v) { std::memcpy(out.data() + at, &v, 2); };
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = out.data() + r * rb;
    const size_t base = r * rb;
    switch (type) {
      case GgmlType::F32:
        for (int64_t i = 0; i < cols; ++i) {
          const float v = gauss() / std::sqrt(float(cols));
          std::memcpy(row + 4 * i, &v, 4);
        }
        break;
      case GgmlType::F16:
        for (int64_t i = 0; i < cols; ++i) put16(base + 2 * i, fp32_to_fp16(gauss() / std::sqrt(float(cols))));
        break;
      case GgmlType::BF16:
        for (int64_t i = 0; i < cols; ++i) put16(base + 2 * i, fp32_to_bf16(gauss() / std::sqrt(float(cols))));
        break;
      case GgmlType::Q8_0:
        for (int64_t b = 0; b < cols / 32; ++b) put16(base + b * 34, fp32_to_fp16(0.002f * (1 + (rng() % 100) / 100.f)));
        break;
      case GgmlType::Q4_0:
        for (int64_t b = 0; b < cols / 32; ++b) put16(base + b * 18, fp32_to_fp16(0.02f * (1 + (rng() % 100) / 100.f)));
        break;
      case GgmlType::Q4_K:
        for (int64_t b = 0; b < cols / 256; ++b) {
          put16(base + b * 144, fp32_to_fp16(0.001f));
          put16(base + b * 144 + 2, fp32_to_fp16(0.001f));
        }
        break;
      case GgmlType::Q6_K:
        for (int64_t b = 0; b < cols / 256; ++b) {
          put16(base + b * 210 + 208, fp32_to_fp16(0.0005f));
          for (int s = 0; s < 16; ++s) row[b * 210 + 192 + s] = uint8_t(int8_t(int(rng() % 128) - 64));
        }
        break;
      default: break;
    }
  }
  return out;
}

double rel_error(const std::vector<float>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

void report(const std::string& name, double err, double budget) {
  const bool ok = err <= budget;
  if (!ok) ++failures;
  std::printf("%-48s rel err %.2e (budget %.0e) %s\n", name.c_str(), err, budget, ok ? "ok" : "FAIL");
}

template <typename T>
T* to_device(const std::vector<T>& v) {
  T* d = nullptr;
  cudaMalloc(&d, v.size() * sizeof(T));
  cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice);
  return d;
}

void check_matmul(GgmlType type, int64_t rows, int64_t cols, int n) {
  const auto bytes = random_rows(type, rows, cols);
  std::vector<float> x(size_t(n) * cols);
  for (auto& v : x) v = gauss();
  std::vector<float> w(size_t(rows) * cols);
  const size_t rb = ggml_row_bytes(type, cols);
  for (int64_t r = 0; r < rows; ++r) cpu::dequantize_row(type, bytes.data() + r * rb, w.data() + r * cols, cols);
  std::vector<double> ref(size_t(n) * rows);
  for (int t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t c = 0; c < cols; ++c) s += double(w[r * cols + c]) * x[t * cols + c];
      ref[t * rows + r] = s;
    }
  DeviceWeight dw{type, rows, cols, to_device(bytes), rb};
  float* dx = to_device(x);
  float* dy = nullptr;
  cudaMalloc(&dy, ref.size() * sizeof(float));
  launch_matmul(dw, dx, n, dy, rows, nullptr);
  std::vector<float> got(ref.size());
  CHECK_CUDA(cudaMemcpy(got.data(), dy, got.size() * sizeof(float), cudaMemcpyDeviceToHost));
  // GEMV accumulates in fp32; the GEMM rounds both operands to fp16 for the tensor cores.
  const double budget = n > 8 ? 3e-3 : 1e-5;
  report("matmul " + std::string(ggml_type_traits(type).name) + " " + std::to_string(rows) + "x" + std::to_string(cols) +
             " n=" + std::to_string(n),
         rel_error(got, ref), budget);
  cudaFree(const_cast<uint8_t*>(dw.data));
  cudaFree(dx);
  cudaFree(dy);
}

void check_attention(int n_tokens, int n_ctx, int n_head, int n_head_kv, int hd, int splits, int window) {
  std::vector<float> q(size_t(n_tokens) * n_head * hd), k(size_t(n_ctx) * n_head_kv * hd), v(size_t(n_ctx) * n_head_kv * hd);
  for (auto* a : {&q, &k, &v})
    for (auto& e : *a) e = gauss();
  // The cache holds fp16; the reference uses the same rounded K/V.
  std::vector<uint16_t> kc(size_t(n_head_kv) * n_ctx * hd), vc(kc.size());
  for (int j = 0; j < n_ctx; ++j)
    for (int g = 0; g < n_head_kv; ++g)
      for (int i = 0; i < hd; ++i) {
        kc[(size_t(g) * n_ctx + j) * hd + i] = fp32_to_fp16(k[(size_t(j) * n_head_kv + g) * hd + i]);
        vc[(size_t(g) * n_ctx + j) * hd + i] = fp32_to_fp16(v[(size_t(j) * n_head_kv + g) * hd + i]);
      }
  std::vector<int32_t> pos(n_tokens);
  for (int t = 0; t < n_tokens; ++t) pos[t] = n_ctx - n_tokens + t;
  const float scale = 1.f / std::sqrt(float(hd));
  std::vector<double> ref(size_t(n_tokens) * n_head * hd);
  for (int t = 0; t < n_tokens; ++t)
    for (int h = 0; h < n_head; ++h) {
      const int g = h / (n_head / n_head_kv), lo = window > 0 ? std::max(0, pos[t] - window + 1) : 0;
      std::vector<double> s;
      double m = -1e300;
      for (int j = lo; j <= pos[t]; ++j) {
        double d = 0;
        for (int i = 0; i < hd; ++i) d += q[(size_t(t) * n_head + h) * hd + i] * fp16_to_fp32(kc[(size_t(g) * n_ctx + j) * hd + i]);
        s.push_back(d * scale);
        m = std::max(m, d * scale);
      }
      double z = 0;
      for (auto& e : s) z += (e = std::exp(e - m));
      for (int i = 0; i < hd; ++i) {
        double acc = 0;
        for (int j = lo; j <= pos[t]; ++j) acc += s[j - lo] / z * fp16_to_fp32(vc[(size_t(g) * n_ctx + j) * hd + i]);
        ref[(size_t(t) * n_head + h) * hd + i] = acc;
      }
    }
  float* dout = nullptr;
  float* dpart = nullptr;
  cudaMalloc(&dout, ref.size() * 4);
  cudaMalloc(&dpart, attention_partial_floats(n_tokens, n_head, hd, splits) * 4);
  AttentionLaunch a{to_device(q), to_device(kc), to_device(vc), n_ctx, to_device(pos), n_tokens, n_head, n_head_kv, hd, hd,
                    window, scale, 0.f, dout, dpart, splits};
  launch_attention(a, nullptr);
  std::vector<float> got(ref.size());
  CHECK_CUDA(cudaMemcpy(got.data(), dout, got.size() * 4, cudaMemcpyDeviceToHost));
  report("attention tokens=" + std::to_string(n_tokens) + " ctx=" + std::to_string(n_ctx) + " heads=" + std::to_string(n_head) +
             "/" + std::to_string(n_head_kv) + " hd=" + std::to_string(hd) + " splits=" + std::to_string(splits) +
             " window=" + std::to_string(window),
         rel_error(got, ref), 1e-4);
}

void check_rms_norm(int rows, int dim) {
  std::vector<float> x(size_t(rows) * dim), w(dim);
  for (auto& e : x) e = gauss();
  for (auto& e : w) e = 1 + 0.1f * gauss();
  std::vector<double> ref(x.size());
  for (int r = 0; r < rows; ++r) {
    double ss = 0;
    for (int i = 0; i < dim; ++i) ss += double(x[r * dim + i]) * x[r * dim + i];
    const double s = 1 / std::sqrt(ss / dim + 1e-5);
    for (int i = 0; i < dim; ++i) ref[r * dim + i] = x[r * dim + i] * s * w[i];
  }
  float* dx = to_device(x);
  launch_rms_norm(dx, to_device(w), dx, rows, dim, 1e-5f, nullptr);
  std::vector<float> got(x.size());
  CHECK_CUDA(cudaMemcpy(got.data(), dx, got.size() * 4, cudaMemcpyDeviceToHost));
  report("rms_norm " + std::to_string(rows) + "x" + std::to_string(dim), rel_error(got, ref), 1e-6);
}

void time_gemv(GgmlType type, int64_t rows, int64_t cols) {
  const auto bytes = random_rows(type, rows, cols);
  // Rotate through copies totalling > 4x a 50 MB L2 so every launch streams from HBM.
  const int copies = int(std::max<size_t>(2, (200u << 20) / bytes.size() + 1));
  std::vector<uint8_t*> dev(copies);
  for (auto& d : dev) d = to_device(bytes);
  std::vector<float> x(cols, 0.5f);
  float* dx = to_device(x);
  float* dy = nullptr;
  cudaMalloc(&dy, rows * 4);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> ms;
  for (int i = 0; i < 100; ++i) {
    DeviceWeight w{type, rows, cols, dev[i % copies], ggml_row_bytes(type, cols)};
    cudaEventRecord(a);
    launch_matmul(w, dx, 1, dy, rows, nullptr);
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float t = 0;
    cudaEventElapsedTime(&t, a, b);
    if (i >= 10) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  std::printf("gemv %-5s %6ldx%-6ld median %.4f ms  %7.1f GB/s\n", ggml_type_traits(type).name, long(rows), long(cols), med,
              bytes.size() / (med * 1e-3) / 1e9);
  for (auto* d : dev) cudaFree(d);
  cudaFree(dx);
  cudaFree(dy);
}

}  // namespace

int main() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::fprintf(stderr, "no CUDA device: nothing to check\n");
    return 2;
  }
  const GgmlType types[] = {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K};
  for (GgmlType t : types)
    for (int n : {1, 3, 8, 17, 64}) check_matmul(t, 333, 512, n);
  check_matmul(GgmlType::F32, 65, 172, 1);  // rows that are not whole 32-value chunks
  check_matmul(GgmlType::F32, 65, 172, 9);
  for (int splits : {1, 4})
    for (int hd : {64, 128}) check_attention(1, 700, 8, 2, hd, splits, 0);
  check_attention(37, 37, 8, 8, 64, 1, 0);
  check_attention(16, 300, 4, 1, 128, 1, 64);
  check_rms_norm(1, 4096);
  check_rms_norm(7, 896);
  for (GgmlType t : types) time_gemv(t, 14336, 4096);
  std::printf("%s: %d check(s) failed\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
