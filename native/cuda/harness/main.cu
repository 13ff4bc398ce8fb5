// Harness entry point: one table of cases {op, weight type, run}, walked in order with
// filters, as test-backend-ops does.
//   tessera_cuda_harness [-o op[,op...]] [-t type[,type...]] [-m check|perf|all] [-l]
//   -o: only these ops (get_rows, matmul, attention, ...); -t: only cases of these weight
//   types (F32, Q4_K, ...; cases without a weight type are skipped by -t); -m: checks,
//   timings (GPU only) or both (default); -l: list the cases and exit.
// Exit status: 0 all checks passed, 1 a check failed, 2 no device or bad arguments.
#include "cuda/harness/common.h"

using namespace tessera;
using namespace tessera::harness;

namespace {

constexpr GgmlType kNoType = static_cast<GgmlType>(-1);

struct Case {
  const char* op;
  GgmlType type;  // kNoType: the op has no weight type
  std::function<void()> run;
  bool perf = false;  // a timing, not a check
};

std::vector<Case> cases() {
  std::vector<Case> c;
  auto add = [&](const char* op, GgmlType t, std::function<void()> f) { c.push_back({op, t, std::move(f)}); };
  auto perf = [&](const char* op, GgmlType t, std::function<void()> f) { c.push_back({op, t, std::move(f), true}); };
  const auto& types = kWeightTypes;  // core/weight_types.h

  for (GgmlType t : types) add("get_rows", t, [=] { check_get_rows(t, 37, 512, 5); });
  add("get_rows", GgmlType::F32, [] { check_get_rows(GgmlType::F32, 11, 72, 3); });  // rows that are not whole 32-value chunks
  add("get_rows", GgmlType::F16, [] { check_get_rows(GgmlType::F16, 11, 100, 3); });

  add("copy_stage", kNoType, [] { check_copy_stage(3, 100); });
  add("copy_stage", kNoType, [] { check_copy_stage(2, 512); });
  for (NormKind k : {NormKind::Rms, NormKind::Layer})
    for (bool affine : {false, true}) add("norm_stage", kNoType, [=] { check_norm_stage(k, 3, kEmulated ? 1000 : 4096, affine); });
  add("norm_stage", kNoType, [] { check_norm_stage(NormKind::Rms, 2, 72, true); });
  add("norm_stage", kNoType, [] { check_norm_stage(NormKind::Rms, 1, kEmulated ? 2080 : 4096, true); });  // a decode row over many blocks
  add("swiglu_stage", kNoType, [] { check_swiglu_stage(1, kEmulated ? 1400 : 14336, GateActivation::Silu); });
  add("swiglu_stage", kNoType, [] { check_swiglu_stage(3, kEmulated ? 700 : 11008, GateActivation::Silu); });
  add("swiglu_stage", kNoType, [] { check_swiglu_stage(2, 300, GateActivation::Gelu); });
  add("swiglu_stage", kNoType, [] { check_swiglu_stage(3, 200, GateActivation::SwigluOai); });
  add("post_norm_add", kNoType, [] { check_post_norm_add(3, 2304, 0.f); });
  add("post_norm_add", kNoType, [] { check_post_norm_add(1, 77, 0.25f); });

  // The shapes test/kernels/ops.test.ts checks on the CPU, in units of max(block, 32) columns.
  for (GgmlType t : types) {
    const int64_t unit = std::max<int64_t>(ggml_type_traits(t).block_size, 32);
#define TESSERA_MATMUL_CASE(rows, units, tokens) add("matmul", t, [=] { check_matmul({t, rows, (units) * unit, tokens}); });
#include "../../../dev/kernels/matmul_cases.def"
#undef TESSERA_MATMUL_CASE
  }
  const int64_t rows = kEmulated ? 67 : 333;
  for (GgmlType t : types)
    for (int n : {1, 3, 8, 9, 64, 65, 70, 133}) add("matmul", t, [=] { check_matmul({t, rows, 512, n}); });
  // SMs + 1 row blocks x 2 token tiles of 128: enough blocks for the GEMM to take 128-token
  // tiles on any device (gemm.cu); the last row block and token tile are partial.
  for (GgmlType t : types)
    add("matmul", t, [=] { check_matmul({t, 128 * int64_t(device_sm_count()) + 100, 256, 133}); });
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16})
    for (int n : {1, 5, 20}) add("matmul", t, [=] { check_matmul({t, 45, 100, n}); });  // rows not whole chunks
  add("matmul", GgmlType::F32, [] { check_matmul({GgmlType::F32, 45, 20, 20}); });   // one K tile: the pipeline's loads all clamp
  add("matmul", GgmlType::Q8_0, [] { check_matmul({GgmlType::Q8_0, 45, 64, 20}); });  // two K tiles
  add("matmul", GgmlType::F16, [] { check_matmul({GgmlType::F16, 45, 96, 70}); });   // three
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q8_0})
    for (int n : {2, 12}) add("matmul", t, [=] { check_matmul({t, 130, 256, n, true}); });
  for (GgmlType t : {GgmlType::F32, GgmlType::Q8_0, GgmlType::Q4_K})  // the MoE router in prefill
    for (int n : {9, 21}) add("matmul", t, [=] { check_matmul({t, 60, 256, n, n == 21, true}); });
  if (!kEmulated) {
    add("matmul", GgmlType::Q4_K, [] { check_matmul({GgmlType::Q4_K, 4096, 4096, 1}); });
    add("matmul", GgmlType::Q6_K, [] { check_matmul({GgmlType::Q6_K, 1000, 4096, 200}); });
  }

  const ExpertGating kSoftmax = ExpertGating::Softmax, kSigmoid = ExpertGating::Sigmoid;
  for (const RouteCase& r : std::vector<RouteCase>{
           {1, 8, 2, kSoftmax, false, false, 1.f, 0, 0},     // mixtral
           {7, 60, 4, kSoftmax, false, false, 1.f, 0, 0},    // qwen2moe
           {5, 128, 8, kSoftmax, true, false, 1.f, 0, 0},    // qwen3moe
           {3, 64, 6, kSoftmax, false, false, 16.f, 0, 0},   // deepseek2 (v2-lite)
           {5, 256, 8, kSigmoid, true, true, 2.5f, 8, 4},    // deepseek3: sigmoid, bias, groups
           {2, 96, 16, kSigmoid, false, true, 1.f, 12, 2},   // k > experts of one group
           {9, 512, 12, kSoftmax, true, false, 1.f, 0, 0}})  // the widest router
    add("moe_route", kNoType, [=] { check_moe_route(r); });
  for (GgmlType t : types) {
    const int64_t cols = 256;
    add("moe_matmul", t, [=] { check_moe_matmul({t, 8, 2, 40, cols, 2, 1, true}); });    // decode gate/up
    add("moe_matmul", t, [=] { check_moe_matmul({t, 8, 2, 72, cols, 1, 1, false}); });   // decode down (pair rows)
    add("moe_matmul", t, [=] { check_moe_matmul({t, 16, 8, 24, cols, 2, 3, true}); });   // odd token count, GEMV
    add("moe_matmul", t, [=] { check_moe_matmul({t, 8, 2, 136, cols, 2, 27, true}); });  // GEMM, parts split inside a 128-row tile
    add("moe_matmul", t, [=] { check_moe_matmul({t, 16, 4, 40, cols, 1, 37, false}); }); // GEMM over pair rows, odd counts
  }
  add("moe_matmul", GgmlType::Q4_0, [] { check_moe_matmul({GgmlType::Q4_0, 2, 2, 40, 256, 2, 70, true}); });   // 70 slots per expert: two tiles each
  add("moe_matmul", GgmlType::Q6_K, [] { check_moe_matmul({GgmlType::Q6_K, 4, 3, 48, 256, 1, 90, false}); });  // ~68 per expert, uneven
  add("moe_matmul", GgmlType::BF16, [] { check_moe_matmul({GgmlType::BF16, 4, 2, 33, 100, 2, 1, true}); });    // rows that are not whole chunks
  add("moe_matmul", GgmlType::F16, [] { check_moe_matmul({GgmlType::F16, 4, 3, 33, 100, 1, 11, false}); });
  if (!kEmulated) add("moe_matmul", GgmlType::Q4_K, [] { check_moe_matmul({GgmlType::Q4_K, 128, 8, 768, 2048, 2, 200, true}); });
  for (int k : {1, 2, 8}) add("moe_combine", kNoType, [=] { check_moe_combine(3, 100, k, false, false); });
  add("moe_combine", kNoType, [] { check_moe_combine(2, 300, 4, true, false); });
  add("moe_combine", kNoType, [] { check_moe_combine(5, 64, 8, true, true); });

  for (const QkvCase& q : std::vector<QkvCase>{
           {3, 4, 2, 64, 0, RopeKind::Normal, RopeScaling::None, false, false},
           {2, 4, 1, 128, 3000, RopeKind::Neox, RopeScaling::None, true, false},
           {2, 2, 2, 64, 700, RopeKind::Neox, RopeScaling::Yarn, false, false},
           {2, 2, 1, 64, 9000, RopeKind::Normal, RopeScaling::Llama3, false, false},
           {2, 2, 1, 64, 123, RopeKind::Neox, RopeScaling::Linear, false, true},
           {1, 2, 2, 96, 5, RopeKind::None, RopeScaling::None, true, false}})
    add("qkv_post", kNoType, [=] { check_qkv_post(q); });

  add("mla_post", kNoType, [] { check_mla_post(3, 4, 64, 32, 128, 10); });
  add("mla_post", kNoType, [] { check_mla_post(1, 16, 128, 64, 512, 5000); });
  for (GgmlType t : types) {
    if (ggml_type_traits(t).block_size <= 32) add("head_matmul", t, [=] { check_head_matmul(t, 3, 4, 40, 64); });
    else add("head_matmul", t, [=] { check_head_matmul(t, 2, 3, 16, 256); });  // K-quants: rows of whole 256-value blocks
  }
  add("head_matmul", GgmlType::Q8_0, [] { check_head_matmul(GgmlType::Q8_0, 2, 5, 24, 96); });
  if (!kEmulated) add("head_matmul", GgmlType::Q8_0, [] { check_head_matmul(GgmlType::Q8_0, 512, 128, 8, 32); });  // 65536 rows: sliced launches

  std::vector<AttnCase> attn;
  for (int hd : {64, 128}) {
    attn.push_back({1, kEmulated ? 300 : 3000, 8, 2, hd, hd, 0, 0.f, false, 1});
    attn.push_back({1, kEmulated ? 300 : 3000, 8, 2, hd, hd, 0, 0.f, false, 5});
    attn.push_back({kEmulated ? 70 : 200, kEmulated ? 150 : 700, 4, 2, hd, hd, 0, 0.f, true, 1});
    attn.push_back({37, 37, 4, 4, hd, hd, 0, 0.f, true, 1});
  }
  attn.push_back({1, 200, 12, 1, 96, 96, 0, 0.f, false, 3});      // MQA, 12 heads on one kv head
  attn.push_back({3, 90, 4, 2, 256, 256, 0, 30.f, false, 2});     // head size 256, soft-capping
  attn.push_back({2, 120, 4, 2, 80, 48, 0, 0.f, false, 2});       // K and V head sizes differ
  attn.push_back({1, 300, 4, 2, 64, 64, 64, 0.f, false, 4});      // sliding window
  attn.push_back({kEmulated ? 66 : 130, 300, 4, 2, 64, 64, 50, 0.f, true, 1});
  attn.push_back({20, 100, 4, 1, 128, 128, 0, 20.f, true, 1});
  // gpt-oss's sinks, decode (split, combined over 3 splits) and prefill (flash), windowed.
  attn.push_back({1, 200, 8, 2, 64, 64, 0, 0.f, false, 3, false, true});
  attn.push_back({kEmulated ? 40 : 100, 160, 8, 2, 64, 64, 32, 0.f, true, 1, false, true});
  // MLA's latent cache: one kv head, values the latent prefix of each key row; DeepSeek-V2's
  // 576/512 and a small 160/128, decode and prefill (one split).
  attn.push_back({1, kEmulated ? 150 : 2000, 16, 1, 576, 512, 0, 0.f, false, 3, true});
  attn.push_back({5, 60, 4, 1, 160, 128, 0, 0.f, false, 1, true});
  attn.push_back({1, 90, 6, 1, 160, 128, 0, 0.f, false, 2, true});
  for (const AttnCase& a : attn) add("attention", kNoType, [=] { check_attention(a); });

  // Timings (GPU only), run after every check: a wrong kernel's speed still says where it stands.
  perf("staging", kNoType, [] { time_decode_staging(); });
  for (GgmlType t : types) perf("matmul", t, [=] { time_matmul(t, 4096, 4096, 1); });
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    perf("matmul", t, [=] { time_matmul(t, 14336, 4096, 1); });
    perf("matmul", t, [=] { time_matmul(t, 4096, 14336, 1); });
    perf("matmul", t, [=] { time_matmul(t, 4096, 4096, 4); });
  }
  for (GgmlType t : {GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K})
    perf("matmul", t, [=] { time_matmul(t, 4096, 4096, 512); });
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_K}) {
    perf("matmul", t, [=] { time_matmul(t, 14336, 4096, 512); });
    perf("matmul", t, [=] { time_matmul(t, 4096, 14336, 512); });
  }
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q8_0}) perf("moe_matmul", t, [=] { time_moe_decode(t); });
  for (int ctx : {128, 1024, 8192, 32768}) perf("attention", kNoType, [=] { time_attention(1, ctx, 32, 8, 128, false, 32); });
  perf("attention", kNoType, [] { time_attention(512, 512, 32, 8, 128, true, 1); });
  perf("attention", kNoType, [] { time_attention(512, 4096, 32, 8, 128, true, 1); });
  perf("attention", kNoType, [] { time_attention(512, 512, 32, 8, 64, true, 1); });
  return c;
}

std::vector<std::string> split(const char* s) {
  std::vector<std::string> out;
  std::string cur;
  for (const char* p = s;; ++p) {
    if (*p == ',' || *p == 0) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
      if (*p == 0) break;
    } else {
      cur += *p;
    }
  }
  return out;
}

bool listed(const std::vector<std::string>& filter, const std::string& name) {
  return filter.empty() || std::find(filter.begin(), filter.end(), name) != filter.end();
}

int usage() {
  std::fprintf(stderr, "usage: tessera_cuda_harness [-o op[,op...]] [-t type[,type...]] [-m check|perf|all] [-l]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> ops, types;
  std::string mode = "all";
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "-o" || a == "-t" || a == "-m") && i + 1 < argc) {
      const char* v = argv[++i];
      if (a == "-o") ops = split(v);
      else if (a == "-t") types = split(v);
      else mode = v;
    } else if (a == "-l") {
      list = true;
    } else {
      return usage();
    }
  }
  if (mode != "check" && mode != "perf" && mode != "all") return usage();
  const std::vector<Case> table = cases();
  // A filter naming nothing in the table is a typo, not "run nothing and pass".
  for (const std::string& o : ops)
    if (std::none_of(table.begin(), table.end(), [&](const Case& c) { return o == c.op; })) {
      std::fprintf(stderr, "unknown op %s\n", o.c_str());
      return 2;
    }
  for (const std::string& t : types)
    if (std::none_of(std::begin(kWeightTypes), std::end(kWeightTypes), [&](GgmlType w) { return t == type_name(w); })) {
      std::fprintf(stderr, "unknown weight type %s\n", t.c_str());
      return 2;
    }
  auto selected = [&](const Case& c) {
    if (c.perf ? mode == "check" : mode == "perf") return false;
    if (c.perf && kEmulated) return false;
    if (!listed(ops, c.op)) return false;
    return types.empty() || (c.type != kNoType && listed(types, type_name(c.type)));
  };
  if (list) {
    for (const Case& c : table)
      if (selected(c)) std::printf("%s %s %s\n", c.perf ? "perf " : "check", c.op, c.type == kNoType ? "-" : type_name(c.type));
    return 0;
  }

  const char* seed_env = std::getenv("TESSERA_SEED");
  const unsigned seed = seed_env ? unsigned(std::strtoul(seed_env, nullptr, 10)) : std::random_device{}();
  g_rng.seed(seed);
  std::printf("input seed %u\n", seed);
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::fprintf(stderr, "no CUDA device: nothing to check\n");
    return 2;
  }
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  device_sm_count() = prop.multiProcessorCount;
  std::printf("device: %s (sm_%d%d)%s\n", prop.name, prop.major, prop.minor, kEmulated ? " [emulated: no timing]" : "");

  int ran = 0;
  const char* last = "";
  bool last_perf = false;
  for (const Case& c : table) {
    if (!selected(c)) continue;
    if (std::strcmp(last, c.op) != 0 || last_perf != c.perf) std::printf("%s%s\n", c.op, c.perf ? " (timing: median of 50, inputs rotated beyond L2)" : "");
    last = c.op;
    last_perf = c.perf;
    c.run();
    ++ran;
  }
#ifdef TESSERA_CUDA_EMULATOR
  if (tessera_emu::failure_count() > 0) {
    std::printf("the emulator reported %d failed launch(es)\n", tessera_emu::failure_count());
    ++g_failures;
  }
#endif
  std::printf("%s: %d case(s) run, %d check(s) failed\n", g_failures ? "FAIL" : "PASS", ran, g_failures);
  return g_failures ? 1 : 0;
}
