//===- RuntimeTest.cpp - manifests, argument packing, runtime errors ------===//
//
// The parts of the GPU runtime that need no GPU: they run in CI.
//
//===----------------------------------------------------------------------===//

#include "attn/Runtime/KernelArgs.h"
#include "attn/Runtime/Manifest.h"
#ifdef ATTN_HAVE_CUDA
#include "attn/Runtime/CudaRuntime.h"
#endif

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <dlfcn.h>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>

using namespace attn;

namespace {

const char *kCausalSpec =
    R"({"name": "c", "kind": "attention", "dtype": "bf16", "layout": "bshd",
        "shape": {"heads_q": 4, "heads_kv": 2, "head_dim": 8}, "mask": {"causal": true}})";

std::string writeTemp(const std::string &name, const std::string &text) {
  std::string path = testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

std::string manifestJson(const std::string &grid0 = R"({"symbol": "Sq", "ceil_div": 64})",
                         const std::string &args =
                             R"(["query", "key", "value", "out", "lse"])") {
  return std::string(R"({"format": "attn.kernel/1", "name": "c", "entry": "c",
    "chip": "sm_90a", "ptx": "c.ptx", "cubin": null, "sha256": "00",
    "launch": {"block": [256, 1, 1], "grid": [)") +
         grid0 + R"(, {"symbol": "Hq"}, {"symbol": "B"}], "dynamic_shared_memory": 0},
    "arguments": )" + args + R"(, "spec": )" + kCausalSpec + "}";
}

/// The manifest with a "tensor_maps" entry (Hopper kernels).
std::string withTensorMaps(const std::string &maps) {
  std::string j = manifestJson();
  return j.substr(0, j.rfind('}')) + R"(, "tensor_maps": )" + maps + "}";
}

ExecInputs smallInputs(const Spec &spec) {
  ExecInputs in;
  in.B = 2;
  in.Hq = 4;
  in.Hkv = 2;
  in.Sq = 3;
  in.Sk = 5;
  in.Dqk = in.Dv = 8;
  auto fill = [](HostArray &a, std::vector<int64_t> shape) {
    a = HostArray(shape);
    for (size_t i = 0; i < a.data.size(); ++i)
      a.data[i] = double(i % 7) - 3.0;
  };
  fill(in.q, {2, 4, 3, 8});
  fill(in.k, {2, 2, 5, 8});
  fill(in.v, {2, 2, 5, 8});
  (void)spec;
  return in;
}

} // namespace

TEST(Manifest, ReadsAValidManifest) {
  KernelManifest m;
  std::string error;
  ASSERT_TRUE(readManifest(writeTemp("ok.json", manifestJson()), m, error)) << error;
  EXPECT_EQ(m.entry, "c");
  EXPECT_EQ(m.chip, "sm_90a");
  EXPECT_EQ(m.block[0], 256);
  ASSERT_TRUE(m.spec);
  EXPECT_TRUE(m.spec->causal);
  ExecInputs in = smallInputs(*m.spec);
  in.Sq = 130;
  auto grid = m.gridFor(in);
  EXPECT_EQ(grid[0], 3); // ceil(130 / 64)
  EXPECT_EQ(grid[1], 4);
  EXPECT_EQ(grid[2], 2);
}

/// The manifest with launch.persistent_blocks_per_sm set to `value` (JSON).
std::string withPersistent(const std::string &value) {
  std::string j = manifestJson();
  std::string key = R"("dynamic_shared_memory": 0)";
  return j.replace(j.find(key), key.size(), key + R"(, "persistent_blocks_per_sm": )" + value);
}

TEST(Manifest, PersistentKernelsLaunchAtMostOneWaveOfBlocks) {
  KernelManifest m;
  std::string error;
  ASSERT_TRUE(readManifest(writeTemp("pers.json", withPersistent("1")), m, error)) << error;
  EXPECT_EQ(m.persistentBlocksPerSm, 1);
  ExecInputs in = smallInputs(*m.spec);
  in.Sq = 4096; // 64 q tiles x 4 heads x 2 batches = 512 work items
  EXPECT_EQ(m.gridFor(in), (std::array<int64_t, 3>{64, 4, 2}));
  EXPECT_EQ(m.launchGridFor(in, 132), (std::array<int64_t, 3>{132, 1, 1}));
  in.Sq = 100; // 2 x 4 x 2 = 16 items: fewer than the SMs
  EXPECT_EQ(m.launchGridFor(in, 132), (std::array<int64_t, 3>{16, 1, 1}));
  // Written back and read again.
  KernelManifest back;
  ASSERT_TRUE(readManifest(writeTemp("pers2.json", m.toJson(kCausalSpec)), back, error)) << error;
  EXPECT_EQ(back.persistentBlocksPerSm, 1);
  // A non-persistent kernel launches its grid as is.
  KernelManifest plain;
  ASSERT_TRUE(readManifest(writeTemp("plain.json", manifestJson()), plain, error)) << error;
  EXPECT_EQ(plain.launchGridFor(in, 132), plain.gridFor(in));
  // Bad values are located errors.
  for (const char *bad : {"0", "-2", "\"one\"", "1.5"}) {
    KernelManifest x;
    EXPECT_FALSE(readManifest(writeTemp("persbad.json", withPersistent(bad)), x, error)) << bad;
    EXPECT_NE(error.find("launch.persistent_blocks_per_sm"), std::string::npos) << error;
  }
}

TEST(Manifest, ReadsTensorMapsAndWritesThemBack) {
  KernelManifest m;
  std::string error;
  ASSERT_TRUE(readManifest(writeTemp("maps.json", withTensorMaps(
                                         R"([{"argument": 0, "box": [64, 128], "swizzle": 128},
                                             {"argument": 2, "box": [64, 64]}])")),
                           m, error))
      << error;
  ASSERT_EQ(m.tensorMaps.size(), 2u);
  EXPECT_EQ(m.tensorMaps[0].argument, 0);
  EXPECT_EQ(m.tensorMaps[0].boxCols, 64);
  EXPECT_EQ(m.tensorMaps[0].boxRows, 128);
  EXPECT_EQ(m.tensorMaps[0].swizzle, 128);
  EXPECT_EQ(m.tensorMaps[1].argument, 2);
  EXPECT_EQ(m.tensorMaps[1].swizzle, 0);
  KernelManifest back;
  ASSERT_TRUE(readManifest(writeTemp("maps2.json", m.toJson(kCausalSpec)), back, error)) << error;
  ASSERT_EQ(back.tensorMaps.size(), 2u);
  EXPECT_EQ(back.tensorMaps[1].boxRows, 64);
}

TEST(Manifest, ReadsAnyStridesOfTensorMapsAndWritesThemBack) {
  KernelManifest m;
  std::string error;
  ASSERT_TRUE(readManifest(writeTemp("anys.json", withTensorMaps(
                                         R"([{"argument": 0, "box": [64, 128], "swizzle": 128,
                                              "any_strides": true},
                                             {"argument": 1, "box": [64, 128], "swizzle": 128,
                                              "any_strides": false},
                                             {"argument": 2, "box": [64, 128], "swizzle": 128}])")),
                           m, error))
      << error;
  ASSERT_EQ(m.tensorMaps.size(), 3u);
  EXPECT_TRUE(m.tensorMaps[0].anyStrides);
  EXPECT_FALSE(m.tensorMaps[1].anyStrides);
  EXPECT_FALSE(m.tensorMaps[2].anyStrides); // absent: the layout's strides only
  KernelManifest back;
  ASSERT_TRUE(readManifest(writeTemp("anys2.json", m.toJson(kCausalSpec)), back, error)) << error;
  ASSERT_EQ(back.tensorMaps.size(), 3u);
  EXPECT_TRUE(back.tensorMaps[0].anyStrides);
  EXPECT_FALSE(back.tensorMaps[1].anyStrides);
  KernelManifest bad;
  EXPECT_FALSE(readManifest(writeTemp("anys3.json", withTensorMaps(
                                          R"([{"argument": 0, "box": [64, 128],
                                               "any_strides": "yes"}])")),
                            bad, error));
  EXPECT_NE(error.find("tensor_maps[0].any_strides: expected true or false"), std::string::npos)
      << error;
}

TEST(Manifest, MarksTensorMapsWhoseArgumentsOnlyTheMapReads) {
  // Arguments: a rank-4 memref (11 parameters), another (11), a rank-1 memref
  // (5), then three tensor-map pointers (1 each).
  std::vector<int64_t> parameters = {11, 11, 5, 1, 1, 1};
  std::vector<bool> used(11 + 11 + 5 + 3, false);
  used[3] = used[5] = true;       // argument 0: sizes only
  used[11 + 1] = true;            // argument 1: its aligned pointer
  used[22 + 1] = true;            // argument 2: its aligned pointer (no map)
  used[27] = used[28] = used[29] = true;
  auto maps = [] {
    return std::vector<TensorMapArgument>{{0, 64, 128, 128}, {1, 64, 128, 128}};
  };
  std::vector<TensorMapArgument> m = maps();
  markAnyStrides(parameters, used, m);
  EXPECT_TRUE(m[0].anyStrides);
  EXPECT_FALSE(m[1].anyStrides);
  // The allocated pointer, the offset and a stride count as reads too.
  for (int p : {0, 2, 7, 10}) {
    used[p] = true;
    m = maps();
    markAnyStrides(parameters, used, m);
    EXPECT_FALSE(m[0].anyStrides) << p;
    used[p] = false;
  }
  // Counts that do not add up (or nothing recorded): nothing is marked.
  used.pop_back();
  m = maps();
  markAnyStrides(parameters, used, m);
  EXPECT_FALSE(m[0].anyStrides);
  m = maps();
  markAnyStrides(parameters, {}, m);
  EXPECT_FALSE(m[0].anyStrides);
}

TEST(Manifest, ReadsTheDynamicSchedulersTileCounterRole) {
  KernelManifest m;
  std::string error;
  // A manifest without the role: as before.
  ASSERT_TRUE(readManifest(writeTemp("notc.json", manifestJson()), m, error)) << error;
  EXPECT_FALSE(m.hasTileCounter());
  // The tile counter follows the spec's arguments (attn-compile
  // --dynamic-scheduler) and survives a round trip.
  ASSERT_TRUE(readManifest(
      writeTemp("tc.json", manifestJson(R"({"symbol": "Sq", "ceil_div": 64})",
                                        R"(["query", "key", "value", "out", "lse", "tile_counter"])")),
      m, error)) << error;
  EXPECT_TRUE(m.hasTileCounter());
  ASSERT_EQ(m.argumentRoles.size(), 6u);
  EXPECT_EQ(m.argumentRoles.back(), kTileCounterRole);
  KernelManifest back;
  ASSERT_TRUE(readManifest(writeTemp("tc2.json", m.toJson(kCausalSpec)), back, error)) << error;
  EXPECT_EQ(back.argumentRoles, m.argumentRoles);
  // Anywhere but last, it is refused.
  EXPECT_FALSE(readManifest(
      writeTemp("tcbad.json", manifestJson(R"({"symbol": "Sq", "ceil_div": 64})",
                                           R"(["query", "key", "value", "tile_counter", "out", "lse"])")),
      m, error));
  EXPECT_NE(error.find("tile_counter must be the last argument"), std::string::npos) << error;
}

std::string withDispatch(const std::string &dispatch,
                         const std::string &base = manifestJson()) {
  return base.substr(0, base.rfind('}')) + R"(, "dispatch": )" + dispatch + "}";
}

TEST(Manifest, ReadsSequenceDispatchAndPicksTheLongestMatchingVariant) {
  KernelManifest m;
  std::string error;
  // An ordinary manifest: no variants, every launch runs its own kernel.
  ASSERT_TRUE(readManifest(writeTemp("nodispatch.json", manifestJson()), m, error)) << error;
  EXPECT_TRUE(m.dispatch.empty());
  EXPECT_EQ(m.selectVariant(1 << 20), -1);
  ASSERT_TRUE(readManifest(writeTemp("dispatch.json",
                                     withDispatch(R"([{"min_seq_k": 8192, "manifest": "c_sk8192.json"},
                                                     {"min_seq_k": 16384, "manifest": "c_sk16384.json"}])")),
                           m, error))
      << error;
  ASSERT_EQ(m.dispatch.size(), 2u);
  EXPECT_EQ(m.dispatch[1].manifest, "c_sk16384.json");
  EXPECT_EQ(m.selectVariant(8191), -1);
  EXPECT_EQ(m.selectVariant(8192), 0);
  EXPECT_EQ(m.selectVariant(16383), 0);
  EXPECT_EQ(m.selectVariant(16384), 1);
  EXPECT_EQ(m.selectVariant(100000), 1);
  // Written back in the same order.
  KernelManifest back;
  ASSERT_TRUE(readManifest(writeTemp("dispatch2.json", m.toJson(kCausalSpec)), back, error))
      << error;
  ASSERT_EQ(back.dispatch.size(), 2u);
  EXPECT_EQ(back.dispatch[0].minSeqK, 8192);
  EXPECT_EQ(back.dispatch[0].manifest, "c_sk8192.json");
}

TEST(Manifest, RejectsMalformedFilesWithTheKeyPath) {
  struct Case {
    std::string text, message;
  } cases[] = {
      {"not json", "not a JSON object"},
      {R"({"format": "other"})", "format: expected \"attn.kernel/1\", got \"other\""},
      {manifestJson(R"({"symbol": "Sk"})"), "launch.grid[0].symbol: expected B, Hq or Sq, got \"Sk\""},
      {manifestJson(R"({"symbol": "Sq", "ceil_div": 0})"), "launch.grid[0].ceil_div: expected a positive integer"},
      {manifestJson(R"({"symbol": "Sq"})", R"(["query", "out"])"),
       "arguments: do not match the argument list of the spec"},
      {withTensorMaps(R"([{"argument": 7, "box": [64, 128]}])"),
       "tensor_maps[0].argument: expected an argument index below 5"},
      {withTensorMaps(R"([{"argument": 0, "box": [64, 512]}])"),
       "tensor_maps[0].box: expected [columns, rows], each in [1, 256]"},
      {withTensorMaps(R"([{"argument": 0, "box": [64, 128], "swizzle": 100}])"),
       "tensor_maps[0].swizzle: expected 0, 32, 64 or 128"},
      {withDispatch(R"({"min_seq_k": 8192})"), "dispatch: expected an array"},
      {withDispatch(R"([{"min_seq_k": 0, "manifest": "v.json"}])"),
       "dispatch[0].min_seq_k: expected a positive integer"},
      {withDispatch(R"([{"min_seq_k": 8192}])"),
       "dispatch[0].manifest: expected the file name of a manifest in this directory"},
      {withDispatch(R"([{"min_seq_k": 8192, "manifest": "../v.json"}])"),
       "dispatch[0].manifest: expected the file name of a manifest in this directory"},
      {withDispatch(R"([{"min_seq_k": 8192, "manifest": "a.json"},
                        {"min_seq_k": 4096, "manifest": "b.json"}])"),
       "dispatch[1].min_seq_k: expected increasing values"},
  };
  for (const Case &c : cases) {
    KernelManifest m;
    std::string error;
    EXPECT_FALSE(readManifest(writeTemp("bad.json", c.text), m, error)) << c.text;
    EXPECT_NE(error.find(c.message), std::string::npos) << error;
  }
  KernelManifest m;
  std::string error;
  EXPECT_FALSE(readManifest(testing::TempDir() + "does-not-exist.json", m, error));
  EXPECT_NE(error.find("cannot open"), std::string::npos);
}

TEST(KernelArgs, BshdStridesRolesAndPoisonedOutputs) {
  Spec spec;
  std::string error;
  ASSERT_TRUE(parseSpec(kCausalSpec, spec, error)) << error;
  ExecInputs in = smallInputs(spec);
  std::vector<HostBuffer> buffers = bindArguments(spec, in, /*withLse=*/true);
  std::vector<std::string> roles;
  for (const HostBuffer &b : buffers)
    roles.push_back(b.role);
  EXPECT_EQ(roles, argumentRoles(spec, true));
  EXPECT_EQ(roles, (std::vector<std::string>{"query", "key", "value", "out", "lse"}));
  // bshd: logical [B, H, S, D] with memory order [B, S, H, D].
  EXPECT_EQ(buffers[0].strides, (std::vector<int64_t>{3 * 4 * 8, 8, 4 * 8, 1}));
  EXPECT_EQ(buffers[0].elem, BufferElem::BF16);
  // The value at logical (1, 2, 1, 3) sits at 1*96 + 1*32 + 2*8 + 3.
  double expected = in.q.at({1, 2, 1, 3});
  EXPECT_EQ(buffers[0].load(96 + 32 + 16 + 3), expected);
  // Outputs start as NaN so an unwritten element cannot pass.
  EXPECT_TRUE(std::isnan(buffers[3].load(0)));
  EXPECT_TRUE(buffers[3].isOutput && buffers[4].isOutput);
  // Reading back gives logical order.
  buffers[3].store(buffers[3].physicalOffset({1, 3, 2, 7}), 42.0);
  ExecOutputs out;
  readOutputs(spec, buffers, out);
  EXPECT_EQ(out.out.at({1, 3, 2, 7}), 42.0);
  ASSERT_TRUE(out.lse.has_value());
}

#ifdef ATTN_HAVE_CUDA
TEST(CudaRuntime, FailsWithAMessageWithoutADriver) {
  if (void *lib = dlopen("libcuda.so.1", RTLD_NOW)) {
    dlclose(lib);
    GTEST_SKIP() << "a CUDA driver is present; this test is for machines without one";
  }
  KernelManifest m;
  std::string error;
  ASSERT_TRUE(readManifest(writeTemp("ok.json", manifestJson()), m, error)) << error;
  ExecInputs in = smallInputs(*m.spec);
  ExecOutputs out;
  EXPECT_FALSE(runCudaKernel(m, in, out, error));
  EXPECT_NE(error.find("libcuda.so.1"), std::string::npos) << error;
}
#endif

#ifdef ATTN_HAVE_CUDA
namespace {

attn_tensor tensor(std::vector<int64_t> shape, attn_dtype dtype, void *data,
                   std::vector<int64_t> strides = {}) {
  attn_tensor t{};
  t.data = data;
  t.ndim = int32_t(shape.size());
  t.dtype = dtype;
  if (strides.empty()) {
    strides.assign(shape.size(), 1);
    for (int64_t d = int64_t(shape.size()) - 2; d >= 0; --d)
      strides[d] = strides[d + 1] * shape[d + 1];
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    t.shape[i] = shape[i];
    t.strides[i] = strides[i];
  }
  return t;
}

} // namespace

TEST(CApi, LoadReportsUnreadableManifests) {
  attn_kernel *kernel = nullptr;
  char err[256];
  EXPECT_EQ(attn_kernel_load((testing::TempDir() + "nope.json").c_str(), &kernel, err, sizeof err),
            ATTN_ERROR_IO);
  EXPECT_NE(std::string(err).find("cannot open"), std::string::npos) << err;
  EXPECT_EQ(attn_kernel_load(nullptr, &kernel, err, sizeof err), ATTN_ERROR_INVALID_ARGUMENT);
}

TEST(CApi, LoadChecksDispatchVariants) {
  attn_kernel *kernel = nullptr;
  char err[1024];
  // Loads a default kernel whose dispatch names `variantFile` for Sk >= 64.
  auto loadWithVariant = [&](const std::string &mainFile, const std::string &variantFile) {
    writeTemp(mainFile, withDispatch(R"([{"min_seq_k": 64, "manifest": ")" + variantFile +
                                     R"("}])"));
    return attn_kernel_load((testing::TempDir() + mainFile).c_str(), &kernel, err, sizeof err);
  };
  // A variant that is missing, one with other argument roles, one with a
  // dispatch of its own: each refused at load, naming the file.
  EXPECT_EQ(loadWithVariant("dv_main_missing.json", "dv_absent.json"), ATTN_ERROR_IO);
  EXPECT_NE(std::string(err).find("dispatch variant"), std::string::npos) << err;
  EXPECT_NE(std::string(err).find("dv_absent.json"), std::string::npos) << err;
  // Other roles: the spec without an lse output (kCausalSpec's arguments
  // less "lse" are still its argument list).
  writeTemp("dv_other.json", manifestJson(R"({"symbol": "Sq", "ceil_div": 64})",
                                          R"(["query", "key", "value", "out"])"));
  EXPECT_EQ(loadWithVariant("dv_main_other.json", "dv_other.json"), ATTN_ERROR_IO);
  EXPECT_NE(std::string(err).find("same chip and argument roles"), std::string::npos) << err;
  writeTemp("dv_nested.json",
            withDispatch(R"([{"min_seq_k": 128, "manifest": "dv_ok.json"}])"));
  EXPECT_EQ(loadWithVariant("dv_main_nested.json", "dv_nested.json"), ATTN_ERROR_IO);
  EXPECT_NE(std::string(err).find("no dispatch of its own"), std::string::npos) << err;
  // A variant with the dynamic scheduler's counter besides the same roles:
  // accepted (the counter is the runtime's).
  writeTemp("dv_counter.json",
            manifestJson(R"({"symbol": "Sq", "ceil_div": 64})",
                         R"(["query", "key", "value", "out", "lse", "tile_counter"])"));
  ASSERT_EQ(loadWithVariant("dv_main_ok.json", "dv_counter.json"), ATTN_OK) << err;
  EXPECT_EQ(attn_kernel_num_arguments(kernel), 5);
  attn_kernel_destroy(kernel);
}

TEST(CApi, ChecksArgumentsAgainstTheSpec) {
  attn_kernel *kernel = nullptr;
  char err[512];
  ASSERT_EQ(attn_kernel_load(writeTemp("capi.json", manifestJson()).c_str(), &kernel, err,
                             sizeof err),
            ATTN_OK)
      << err;
  ASSERT_EQ(attn_kernel_num_arguments(kernel), 5);
  EXPECT_STREQ(attn_kernel_argument_role(kernel, 4), "lse");
  EXPECT_EQ(attn_kernel_argument_role(kernel, 5), nullptr);
  int dummy = 0;
  // A [B, S, H, D] buffer viewed as [B, H, S, D]: strides permuted, no copy.
  auto bshd = [&](int64_t b, int64_t h, int64_t s, int64_t d) {
    return tensor({b, h, s, d}, ATTN_BF16, &dummy, {s * h * d, d, h * d, 1});
  };
  std::vector<attn_tensor> args = {bshd(2, 4, 100, 8), bshd(2, 2, 130, 8), bshd(2, 2, 130, 8),
                                   bshd(2, 4, 100, 8), tensor({2, 4, 100}, ATTN_F32, &dummy)};
  KernelManifest manifest;
  std::string error;
  ASSERT_TRUE(readManifest(writeTemp("capi2.json", manifestJson()), manifest, error)) << error;
  attn::ExecInputs sizes;
  ASSERT_TRUE(attn::validateLaunchArguments(manifest, args.data(), 5, sizes, error)) << error;
  EXPECT_EQ(sizes.Sq, 100);
  EXPECT_EQ(sizes.Sk, 130);

  EXPECT_EQ(attn_kernel_launch(kernel, args.data(), 4, nullptr, err, sizeof err),
            ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("expected 5 tensors (query, key, value, out, lse), got 4"),
            std::string::npos) << err;

  auto bad = args;
  bad[1].dtype = ATTN_F16;
  EXPECT_EQ(attn_kernel_launch(kernel, bad.data(), 5, nullptr, err, sizeof err),
            ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("key: expected bf16 [2, 2, 130, 8], got f16 [2, 2, 130, 8]"),
            std::string::npos) << err;

  bad = args;
  bad[3] = bshd(2, 4, 99, 8);
  EXPECT_EQ(attn_kernel_launch(kernel, bad.data(), 5, nullptr, err, sizeof err),
            ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("out: expected bf16 [2, 4, 100, 8], got bf16 [2, 4, 99, 8]"),
            std::string::npos) << err;

  bad = args;
  bad[0].strides[3] = 2;
  EXPECT_EQ(attn_kernel_launch(kernel, bad.data(), 5, nullptr, err, sizeof err),
            ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("query: the head dimension must be contiguous"),
            std::string::npos) << err;

  // A contiguous [B, H, S, D] tensor for a bshd kernel: refused, not misread.
  bad = args;
  bad[2] = tensor({2, 2, 130, 8}, ATTN_BF16, &dummy, {2 * 130 * 8, 130 * 8, 8, 1});
  EXPECT_EQ(attn_kernel_launch(kernel, bad.data(), 5, nullptr, err, sizeof err),
            ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("value: strides [2080, 1040, 8, 1] do not match the "
                                  "kernel's bshd layout [2080, 8, 16, 1]"),
            std::string::npos) << err;
  bad = args;
  bad[4].strides[1] = 1000;
  EXPECT_EQ(attn_kernel_launch(kernel, bad.data(), 5, nullptr, err, sizeof err),
            ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("lse: strides [400, 1000, 1] do not match"),
            std::string::npos) << err;

  bad = args;
  bad[0] = bshd(2, 3, 100, 8);
  bad[3] = bshd(2, 3, 100, 8);
  EXPECT_EQ(attn_kernel_launch(kernel, bad.data(), 5, nullptr, err, sizeof err),
            ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("do not match the spec"), std::string::npos) << err;

  // Valid arguments on a machine without a driver: a CUDA error, no crash.
  if (void *lib = dlopen("libcuda.so.1", RTLD_NOW)) {
    dlclose(lib);
  } else {
    EXPECT_EQ(attn_kernel_launch(kernel, args.data(), 5, nullptr, err, sizeof err),
              ATTN_ERROR_CUDA);
    EXPECT_NE(std::string(err).find("libcuda.so.1"), std::string::npos) << err;
  }
  attn_kernel_destroy(kernel);
}
#endif

#ifdef ATTN_HAVE_CUDA
// The C API's argument checks under random damage to valid arguments (a
// seeded property test, 20,000 cases): ranks past ATTN_MAX_RANK or negative,
// extreme sizes and strides, unknown dtypes, null data, wrong counts. Each
// case must come back as accepted with sane sizes or refused with a message;
// a crash or an out-of-bounds read (under the sanitizers) fails the suite.
//
// Twice: with the layout's strides required of every tensor, and with query,
// key and value read only through tensor maps (any_strides), whose strides
// reach describeTensorMap's arithmetic unchecked by the layout.
class ArgumentDamage : public testing::TestWithParam<bool> {};

TEST_P(ArgumentDamage, ChecksSurviveIt) {
  KernelManifest manifest;
  std::string error;
  std::string text = GetParam() ? withTensorMaps(R"([
      {"argument": 0, "box": [8, 64], "swizzle": 0, "any_strides": true},
      {"argument": 1, "box": [8, 64], "swizzle": 0, "any_strides": true},
      {"argument": 2, "box": [8, 64], "swizzle": 0, "any_strides": true}])")
                                : manifestJson();
  ASSERT_TRUE(readManifest(writeTemp("capi_fuzz.json", text), manifest, error)) << error;
  alignas(16) static int dummy[4] = {};
  auto bshd = [&](int64_t b, int64_t h, int64_t s, int64_t d) {
    return tensor({b, h, s, d}, ATTN_BF16, &dummy, {s * h * d, d, h * d, 1});
  };
  const std::vector<attn_tensor> valid = {bshd(2, 4, 100, 8), bshd(2, 2, 130, 8),
                                          bshd(2, 2, 130, 8), bshd(2, 4, 100, 8),
                                          tensor({2, 4, 100}, ATTN_F32, &dummy)};
  const int64_t extremes[] = {0, -1, 1, 3, 1 << 20, int64_t(1) << 31, int64_t(1) << 62,
                              std::numeric_limits<int64_t>::max(),
                              std::numeric_limits<int64_t>::min()};
  const int32_t ranks[] = {-1, 0, 1, 3, 4, 5, ATTN_MAX_RANK, ATTN_MAX_RANK + 1, 1 << 30};
  std::mt19937_64 rng(22);
  auto pick = [&](auto &array) { return array[rng() % std::size(array)]; };
  int accepted = 0, refused = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<attn_tensor> args = valid;
    int numArgs = 5;
    for (int m = 0, n = 1 + int(rng() % 3); m < n; ++m) {
      attn_tensor &t = args[rng() % args.size()];
      int d = int(rng() % ATTN_MAX_RANK);
      switch (rng() % 7) {
      case 0: t.ndim = pick(ranks); break;
      case 1: t.shape[d] = pick(extremes); break;
      case 2: t.strides[d] = pick(extremes); break;
      case 3: t.dtype = attn_dtype(int(rng() % 9) - 2); break;
      case 4: t.data = nullptr; break;
      case 5: numArgs = int(rng() % 8) - 1; break;
      default: t = args[rng() % args.size()]; break; // another role's tensor
      }
    }
    ExecInputs sizes;
    std::string message;
    bool ok = validateLaunchArguments(manifest, numArgs > 0 ? args.data() : nullptr, numArgs,
                                      sizes, message);
    if (ok) {
      ++accepted;
      EXPECT_TRUE(sizes.B > 0 && sizes.Hq > 0 && sizes.Sq > 0 && sizes.Sk > 0) << iter;
    } else {
      ++refused;
      EXPECT_FALSE(message.empty()) << iter;
    }
  }
  // Damage that changes nothing (a stride of a size-1 dimension, the same
  // tensor again; with any_strides, some other strides too) is accepted;
  // most is refused.
  EXPECT_GT(refused, GetParam() ? 12000 : 15000);
  EXPECT_GT(accepted, 0);
  if (GetParam())
    return;

  // The two refusals the sanitizers asked for, by message.
  ExecInputs sizes;
  std::string message;
  std::vector<attn_tensor> args = valid;
  int32_t garbage = 17;
  std::memcpy(&args[1].dtype, &garbage, sizeof garbage);
  EXPECT_FALSE(validateLaunchArguments(manifest, args.data(), 5, sizes, message));
  EXPECT_NE(message.find("key: expected bf16 [2, 2, 130, 8], got unknown dtype 17"),
            std::string::npos) << message;
  args = valid;
  args[0].shape[2] = int64_t(1) << 62;
  EXPECT_FALSE(validateLaunchArguments(manifest, args.data(), 5, sizes, message));
  EXPECT_NE(message.find("query: shape [2, 4, 4611686018427387904, 8] is negative or larger "
                         "than any device memory (at most 2^40 elements)"),
            std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(CApi, ArgumentDamage, testing::Bool(),
                         [](const testing::TestParamInfo<bool> &info) {
                           return info.param ? "AnyStrides" : "LayoutStrides";
                         });

TEST(CApi, BindsTheTileCounterRoleOrLeavesItToTheRuntime) {
  KernelManifest manifest;
  std::string error;
  ASSERT_TRUE(readManifest(
      writeTemp("capitc.json", manifestJson(R"({"symbol": "Sq", "ceil_div": 64})",
                                            R"(["query", "key", "value", "out", "lse", "tile_counter"])")),
      manifest, error)) << error;
  int dummy = 0;
  auto bshd = [&](int64_t b, int64_t h, int64_t s, int64_t d) {
    return tensor({b, h, s, d}, ATTN_BF16, &dummy, {s * h * d, d, h * d, 1});
  };
  std::vector<attn_tensor> args = {bshd(2, 4, 100, 8), bshd(2, 2, 130, 8), bshd(2, 2, 130, 8),
                                   bshd(2, 4, 100, 8), tensor({2, 4, 100}, ATTN_F32, &dummy),
                                   tensor({1}, ATTN_I32, &dummy)};
  attn::ExecInputs sizes;
  // Passed (the PyTorch binding's torch.zeros(1, dtype=torch.int32)) ...
  EXPECT_TRUE(attn::validateLaunchArguments(manifest, args.data(), 6, sizes, error)) << error;
  // ... or left out: the launch uses (and zeroes) one of its own.
  EXPECT_TRUE(attn::validateLaunchArguments(manifest, args.data(), 5, sizes, error)) << error;
  EXPECT_FALSE(attn::validateLaunchArguments(manifest, args.data(), 4, sizes, error));
  EXPECT_NE(error.find("expected 6 tensors (query, key, value, out, lse, tile_counter), got 4 "
                       "(the last, tile_counter, may be left out)"),
            std::string::npos) << error;
  auto bad = args;
  bad[5] = tensor({2}, ATTN_I32, &dummy);
  EXPECT_FALSE(attn::validateLaunchArguments(manifest, bad.data(), 6, sizes, error));
  EXPECT_NE(error.find("tile_counter: expected i32 [1], got i32 [2]"), std::string::npos) << error;
  bad[5] = tensor({1}, ATTN_F32, &dummy);
  EXPECT_FALSE(attn::validateLaunchArguments(manifest, bad.data(), 6, sizes, error));
  EXPECT_NE(error.find("tile_counter: expected"), std::string::npos) << error;
  // A manifest without the role still wants exactly its tensors.
  KernelManifest plain;
  ASSERT_TRUE(readManifest(writeTemp("capitc2.json", manifestJson()), plain, error)) << error;
  EXPECT_FALSE(attn::validateLaunchArguments(plain, args.data(), 6, sizes, error));
  EXPECT_TRUE(attn::validateLaunchArguments(plain, args.data(), 5, sizes, error)) << error;
}
#endif

#ifdef ATTN_HAVE_CUDA
TEST(CApi, TakesAnyStridesWhereTheKernelReadsOnlyThroughTensorMaps) {
  // query and key: read only through their maps; value: a map, but the
  // kernel also reads its pointer (no any_strides).
  std::string maps = R"([{"argument": 0, "box": [8, 64], "swizzle": 0, "any_strides": true},
                         {"argument": 1, "box": [8, 64], "swizzle": 0, "any_strides": true},
                         {"argument": 2, "box": [8, 64], "swizzle": 0}])";
  KernelManifest manifest;
  std::string error;
  ASSERT_TRUE(readManifest(writeTemp("anycapi.json", withTensorMaps(maps)), manifest, error))
      << error;
  alignas(16) static char data[64];
  const int64_t B = 2, Hq = 4, Hkv = 2, Sq = 100, Sk = 130, D = 8;
  // Slices of packed projections, [B, S, 3, Hq, D] for the query and
  // [B, S, 2, Hkv, D] for key and value: neither bhsd nor bshd strides.
  attn_tensor q = tensor({B, Hq, Sq, D}, ATTN_BF16, data, {Sq * 3 * Hq * D, D, 3 * Hq * D, 1});
  attn_tensor k = tensor({B, Hkv, Sk, D}, ATTN_BF16, data, {Sk * 2 * Hkv * D, D, 2 * Hkv * D, 1});
  attn_tensor v = tensor({B, Hkv, Sk, D}, ATTN_BF16, data, {Sk * Hkv * D, D, Hkv * D, 1});
  attn_tensor out = tensor({B, Hq, Sq, D}, ATTN_BF16, data, {Sq * Hq * D, D, Hq * D, 1});
  attn_tensor lse = tensor({B, Hq, Sq}, ATTN_F32, data);
  std::vector<attn_tensor> args = {q, k, v, out, lse};
  attn::ExecInputs sizes;
  ASSERT_TRUE(attn::validateLaunchArguments(manifest, args.data(), 5, sizes, error)) << error;
  EXPECT_EQ(sizes.Sq, Sq);
  EXPECT_EQ(sizes.Sk, Sk);
  // The value's pointer is read: its strides must still be the layout's.
  auto bad = args;
  bad[2] = k;
  EXPECT_FALSE(attn::validateLaunchArguments(manifest, bad.data(), 5, sizes, error));
  EXPECT_NE(error.find("value: strides [4160, 8, 32, 1] do not match the kernel's bshd layout"),
            std::string::npos) << error;
  // What a tensor map cannot describe is refused, naming the dimension.
  bad = args;
  bad[0].strides[2] = 3 * Hq * D + 4; // 200 bytes
  EXPECT_FALSE(attn::validateLaunchArguments(manifest, bad.data(), 5, sizes, error));
  EXPECT_NE(error.find("c: query: stride of dimension 2 (S) is 200 bytes; TMA needs a positive "
                       "multiple of 16"),
            std::string::npos) << error;
  bad = args;
  bad[0].strides[0] = std::numeric_limits<int64_t>::max(); // not scaled into an overflow
  EXPECT_FALSE(attn::validateLaunchArguments(manifest, bad.data(), 5, sizes, error));
  EXPECT_NE(error.find("query: stride of dimension 0 (B) is 9223372036854775807 elements"),
            std::string::npos) << error;
  bad = args;
  bad[1].strides[1] = 0; // a broadcast over heads
  EXPECT_FALSE(attn::validateLaunchArguments(manifest, bad.data(), 5, sizes, error));
  EXPECT_NE(error.find("key: stride of dimension 1 (H) is 0 bytes"), std::string::npos) << error;
  bad = args;
  bad[0].data = data + 8;
  EXPECT_FALSE(attn::validateLaunchArguments(manifest, bad.data(), 5, sizes, error));
  EXPECT_NE(error.find("query: the data pointer must be 16-byte aligned for TMA"),
            std::string::npos) << error;
  bad = args;
  bad[1].strides[3] = 2;
  EXPECT_FALSE(attn::validateLaunchArguments(manifest, bad.data(), 5, sizes, error));
  EXPECT_NE(error.find("key: the head dimension must be contiguous"), std::string::npos) << error;
  // The C API's accessor, for a framework deciding whether to copy.
  attn_kernel *kernel = nullptr;
  char err[512];
  ASSERT_EQ(attn_kernel_load(writeTemp("anycapi2.json", withTensorMaps(maps)).c_str(), &kernel,
                             err, sizeof err),
            ATTN_OK)
      << err;
  EXPECT_EQ(attn_kernel_argument_any_strides(kernel, 0), 1);
  EXPECT_EQ(attn_kernel_argument_any_strides(kernel, 1), 1);
  EXPECT_EQ(attn_kernel_argument_any_strides(kernel, 2), 0);
  EXPECT_EQ(attn_kernel_argument_any_strides(kernel, 3), 0);
  EXPECT_EQ(attn_kernel_argument_any_strides(kernel, 5), 0);
  EXPECT_EQ(attn_kernel_argument_any_strides(kernel, -1), 0);
  EXPECT_EQ(attn_kernel_argument_any_strides(nullptr, 0), 0);
  attn_kernel_destroy(kernel);
}

TEST(TensorMaps, DescribeBshdViewsAndRejectWhatTmaCannotRead) {
  TensorMapArgument spec{0, 64, 128, 128};
  TensorMapGeometry g;
  std::string error;
  // [B=2, H=4, S=100, D=128] bf16 viewed from [B, S, H, D] memory.
  ASSERT_TRUE(describeTensorMap("k", "query", spec, 0x1000, {2, 4, 100, 128},
                                {100 * 4 * 128, 128, 4 * 128, 1}, 2, g, error))
      << error;
  EXPECT_EQ(g.dims[0], 128u);
  EXPECT_EQ(g.dims[1], 100u);
  EXPECT_EQ(g.dims[2], 4u);
  EXPECT_EQ(g.dims[3], 2u);
  EXPECT_EQ(g.strides[0], 4u * 128 * 2); // S step
  EXPECT_EQ(g.strides[1], 128u * 2);     // H step
  EXPECT_EQ(g.strides[2], 100u * 4 * 128 * 2);
  EXPECT_EQ(g.box[0], 64u);
  EXPECT_EQ(g.box[1], 128u);
  // An extent-1 batch may carry any stride.
  EXPECT_TRUE(describeTensorMap("k", "query", spec, 0x1000, {1, 4, 100, 128},
                                {3, 100 * 128, 128, 1}, 2, g, error))
      << error;

  struct Case {
    std::vector<int64_t> shape, strides;
    uint64_t address;
    const char *message;
  } cases[] = {
      {{4, 100, 128}, {12800, 128, 1}, 0x1000, "k: key: a TMA tensor map needs a rank-4 tensor"},
      {{2, 4, 100, 128}, {51200, 12800, 1, 100}, 0x1000, "the last dimension must be contiguous"},
      {{2, 4, 100, 128}, {51200, 12800, 128, 1}, 0x1008, "must be 16-byte aligned for TMA"},
      {{2, 4, 100, 60}, {24000, 6000, 60, 1}, 0x1000,
       "stride of dimension 2 (S) is 120 bytes; TMA needs a positive multiple of 16 below 2^40"},
  };
  for (const Case &c : cases) {
    EXPECT_FALSE(describeTensorMap("k", "key", spec, c.address, c.shape, c.strides, 2, g, error));
    EXPECT_NE(error.find(c.message), std::string::npos) << error;
  }
}

#include "attn/attn_dlpack.h"

TEST(DLPack, ConvertsCudaTensorsAndRejectsTheRest) {
  // A [B, S, H, D] = [2, 100, 4, 8] buffer viewed as the logical [B, H, S, D],
  // as torch's .transpose(1, 2) gives.
  int64_t vshape[4] = {2, 4, 100, 8};
  int64_t vstrides[4] = {3200, 8, 32, 1};
  char buffer[64];
  DLTensor t{};
  t.data = buffer;
  t.device = {kDLCUDA, 0};
  t.ndim = 4;
  t.dtype = {kDLBfloat, 16, 1};
  t.shape = vshape;
  t.strides = vstrides;
  t.byte_offset = 16;
  attn_tensor out;
  char err[256];
  ASSERT_EQ(attn_tensor_from_dlpack(&t, &out, err, sizeof err), ATTN_OK) << err;
  EXPECT_EQ(out.data, buffer + 16);
  EXPECT_EQ(out.dtype, ATTN_BF16);
  EXPECT_EQ(out.strides[1], 8);
  EXPECT_EQ(out.strides[2], 32);
  // NULL strides mean compact row-major.
  t.strides = nullptr;
  ASSERT_EQ(attn_tensor_from_dlpack(&t, &out, err, sizeof err), ATTN_OK);
  EXPECT_EQ(out.strides[0], 4 * 100 * 8);
  EXPECT_EQ(out.strides[3], 1);
  // Host memory, unsupported dtypes and vector lanes are errors with messages.
  t.device = {kDLCPU, 0};
  EXPECT_EQ(attn_tensor_from_dlpack(&t, &out, err, sizeof err), ATTN_ERROR_NOT_ON_DEVICE);
  EXPECT_NE(std::string(err).find("not on a CUDA device"), std::string::npos) << err;
  t.device = {kDLCUDA, 0};
  t.dtype = {kDLFloat, 64, 1};
  EXPECT_EQ(attn_tensor_from_dlpack(&t, &out, err, sizeof err), ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("64 bits) is not supported"), std::string::npos) << err;
  t.dtype = {kDLFloat, 16, 2};
  EXPECT_EQ(attn_tensor_from_dlpack(&t, &out, err, sizeof err), ATTN_ERROR_INVALID_ARGUMENT);
  // Through a kernel: the failing argument is named with its role.
  attn_kernel *kernel = nullptr;
  ASSERT_EQ(attn_kernel_load(writeTemp("dl.json", manifestJson()).c_str(), &kernel, err,
                             sizeof err),
            ATTN_OK);
  t.dtype = {kDLBfloat, 16, 1};
  DLTensor host = t;
  host.device = {kDLCPU, 0};
  const DLTensor *args[5] = {&t, &host, &t, &t, &t};
  EXPECT_EQ(attn_kernel_launch_dlpack(kernel, args, 5, nullptr, err, sizeof err),
            ATTN_ERROR_NOT_ON_DEVICE);
  EXPECT_NE(std::string(err).find("argument 1 (key): the tensor is not on a CUDA device"),
            std::string::npos) << err;
  attn_kernel_destroy(kernel);
}
#endif
