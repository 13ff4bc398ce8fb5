// Single-op entry points of the Mamba-2 ops (kernels.ssmConv, kernels.ssmScan) for the
// kernel harness: one sequence's rows through the op on a ThreadPool of the requested size,
// returning the output and the state the op leaves (both fresh arrays; the inputs are not
// modified). Every length and size is checked here before the op sees a pointer.
#include <cstring>
#include <vector>

#include "addon/bindings.h"
#include "addon/kernel_args.h"

namespace tessera {

namespace {

using namespace tessera::kernel_args;

Napi::Object result(Napi::Env env, Napi::Float32Array y, const std::vector<float>& state) {
  Napi::Object o = Napi::Object::New(env);
  auto s = new_output(env, state.size());
  std::memcpy(s.Data(), state.data(), state.size() * sizeof(float));
  o.Set("y", y);
  o.Set("state", s);
  return o;
}

// ssmConv(state[(dConv-1)*channels], x[nRows*channels], nRows, w[channels*dConv],
//         bias[channels], channels, dConv, threads) -> { y[nRows*channels], state }
Napi::Value SsmConv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n_rows = int(int_arg(info, 2, "nRows", 1, 1 << 16));
  const int64_t ch = int_arg(info, 5, "channels", 1, kMaxDim);
  const int d_conv = int(int_arg(info, 6, "dConv", 2, cpu::kMaxSsmConv));
  const int threads = int(int_arg(info, 7, "threads", 1, kMaxThreads));
  const float* state_in = array_arg<float, napi_float32_array>(info, 0, "state", size_t(d_conv - 1) * ch);
  const float* x = array_arg<float, napi_float32_array>(info, 1, "x", size_t(n_rows) * ch);
  const float* w = array_arg<float, napi_float32_array>(info, 3, "w", size_t(ch) * d_conv);
  const float* b = array_arg<float, napi_float32_array>(info, 4, "bias", size_t(ch));
  std::vector<float> state(state_in, state_in + size_t(d_conv - 1) * ch);
  auto y = new_output(env, size_t(n_rows) * ch);
  float* yd = y.Data();
  ThreadPool(threads).run([&](int ith, int nth) {
    int64_t c0, c1;
    split_range(ch, ith, nth, &c0, &c1);
    cpu::ssm_conv(state.data(), x, ch, n_rows, w, b, ch, d_conv, yd, ch, c0, c1);
  });
  return result(env, y, state);
}

// ssmScan(state[nHead*headDim*dState], x[nRows*nHead*headDim], B[nRows*nGroup*dState],
//         C[nRows*nGroup*dState], dt[nRows*nHead], dtBias[nHead], A[nHead], D[nHead],
//         nRows, nHead, headDim, dState, nGroup, threads) -> { y[nRows*nHead*headDim], state }
Napi::Value SsmScan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n_rows = int(int_arg(info, 8, "nRows", 1, 1 << 16));
  const int nh = int(int_arg(info, 9, "nHead", 1, 4096)), hd = int(int_arg(info, 10, "headDim", 1, 4096));
  const int ds = int(int_arg(info, 11, "dState", 1, 4096)), ng = int(int_arg(info, 12, "nGroup", 1, 4096));
  const int threads = int(int_arg(info, 13, "threads", 1, kMaxThreads));
  if (nh % ng != 0) invalid(env, "nHead must be a multiple of nGroup");
  const size_t inner = size_t(nh) * hd, bc = size_t(ng) * ds;
  const float* state_in = array_arg<float, napi_float32_array>(info, 0, "state", inner * ds);
  const float* x = array_arg<float, napi_float32_array>(info, 1, "x", n_rows * inner);
  const float* B = array_arg<float, napi_float32_array>(info, 2, "B", n_rows * bc);
  const float* C = array_arg<float, napi_float32_array>(info, 3, "C", n_rows * bc);
  const float* dt = array_arg<float, napi_float32_array>(info, 4, "dt", size_t(n_rows) * nh);
  const float* dt_bias = array_arg<float, napi_float32_array>(info, 5, "dtBias", nh);
  const float* A = array_arg<float, napi_float32_array>(info, 6, "A", nh);
  const float* D = array_arg<float, napi_float32_array>(info, 7, "D", nh);
  // The op reads x, B and C from one row (the conv output [x | B | C]): pack them so.
  const size_t ld = inner + 2 * bc;
  std::vector<float> rows(n_rows * ld);
  for (int t = 0; t < n_rows; ++t) {
    std::memcpy(&rows[t * ld], x + t * inner, inner * sizeof(float));
    std::memcpy(&rows[t * ld + inner], B + t * bc, bc * sizeof(float));
    std::memcpy(&rows[t * ld + inner + bc], C + t * bc, bc * sizeof(float));
  }
  std::vector<float> state(state_in, state_in + inner * ds);
  auto y = new_output(env, n_rows * inner);
  cpu::SsmScanArgs a;
  a.state = state.data();
  a.x = rows.data();
  a.B = rows.data() + inner;
  a.C = rows.data() + inner + bc;
  a.ld_x = int64_t(ld);
  a.dt = dt;
  a.ld_dt = nh;
  a.dt_bias = dt_bias;
  a.A = A;
  a.D = D;
  a.y = y.Data();
  a.ld_y = int64_t(inner);
  a.n_rows = n_rows;
  a.n_head = nh;
  a.head_dim = hd;
  a.d_state = ds;
  a.n_group = ng;
  ThreadPool(threads).run([&](int ith, int nth) {
    int64_t h0, h1;
    split_range(nh, ith, nth, &h0, &h1);
    cpu::ssm_scan(a, int(h0), int(h1));
  });
  return result(env, y, state);
}

}  // namespace

void register_ssm_kernel_bindings(Napi::Env env, Napi::Object kernels) {
  kernels.Set("ssmConv", Napi::Function::New(env, SsmConv));
  kernels.Set("ssmScan", Napi::Function::New(env, SsmScan));
}

}  // namespace tessera
