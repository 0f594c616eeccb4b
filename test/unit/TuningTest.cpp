//===- TuningTest.cpp - the tuning mode's cache, candidates and chooser ---===//
//
// Everything of the tuning mode that needs no GPU: shape buckets, the cache
// file (merge, corrupt files, atomic writes, concurrent writers), candidate
// sets and their errors, and the chooser with an injected timer.
//
//===----------------------------------------------------------------------===//

#include "attn/Runtime/Manifest.h"
#include "attn/Runtime/Tuning.h"
#ifdef ATTN_HAVE_CUDA
#include "attn/Runtime/CudaRuntime.h"
#endif

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <dlfcn.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

using namespace attn;
namespace fs = std::filesystem;

namespace {

const char *kSpecA =
    R"({"name": "c", "kind": "attention", "dtype": "bf16", "layout": "bhsd",
        "shape": {"heads_q": 4, "heads_kv": 2, "head_dim": 8}, "mask": {"causal": true}})";
const char *kSpecB =
    R"({"name": "c", "kind": "attention", "dtype": "bf16", "layout": "bhsd",
        "shape": {"heads_q": 4, "heads_kv": 2, "head_dim": 8}})";

/// A fresh, empty directory for one test.
std::string freshDir(const std::string &name) {
  std::string dir = testing::TempDir() + "attn-tuning-" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string readText(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A candidate manifest (as attn-compile --tune-candidates writes it) at
/// dir/<tag>/c.json; `group` empty: an ordinary manifest.
std::string writeCandidate(const std::string &dir, const std::string &tag,
                           const std::string &group, const char *spec = kSpecA,
                           const std::string &chip = "sm_90a") {
  std::string text = std::string(R"({"format": "attn.kernel/1", "name": "c", "entry": "c",
    "chip": ")") + chip + R"(", "ptx": "c.ptx", "cubin": null, "sha256": "00",
    "launch": {"block": [256, 1, 1], "grid": [{"symbol": "Sq", "ceil_div": 64},
    {"symbol": "Hq"}, {"symbol": "B"}], "dynamic_shared_memory": 0},
    "arguments": ["query", "key", "value", "out", "lse"], )";
  if (!group.empty())
    text += R"("tuning": {"group": ")" + group + R"(", "candidate": ")" + tag +
            R"(", "options": {"block_k": 64}}, )";
  text += std::string(R"("spec": )") + spec + "}";
  fs::create_directories(dir + "/" + tag);
  std::string path = dir + "/" + tag + "/c.json";
  std::ofstream(path) << text;
  return path;
}

TuningShape shape(int64_t b, int64_t h, int64_t sq, int64_t sk, std::string dtype = "bf16") {
  TuningShape s;
  s.batch = b;
  s.headsQ = h;
  s.headsKV = h;
  s.seqQ = sq;
  s.seqK = sk;
  s.headDim = s.headDimV = 128;
  s.dtype = std::move(dtype);
  return s;
}

/// A timer from a table of times (ms; < 0: the candidate fails); counts calls.
struct FakeTimer {
  std::map<std::string, double> times;
  const TuningCandidateSet *set = nullptr;
  int calls = 0;
  TuningTimer fn() {
    return [this](size_t i, double &ms, std::string &error) {
      ++calls;
      double t = times.at(set->manifests[i].tuningCandidate);
      if (t < 0) {
        error = "cuLaunchKernel failed: CUDA_ERROR_OUT_OF_RESOURCES";
        return false;
      }
      ms = t;
      return true;
    };
  }
};

} // namespace

TEST(TuningKey, BucketsShapesByPowersOfTwo) {
  EXPECT_EQ(roundUpToPowerOfTwo(0), 1);
  EXPECT_EQ(roundUpToPowerOfTwo(1), 1);
  EXPECT_EQ(roundUpToPowerOfTwo(3), 4);
  EXPECT_EQ(roundUpToPowerOfTwo(4096), 4096);
  EXPECT_EQ(roundUpToPowerOfTwo(4097), 8192);
  EXPECT_EQ(tuningBucket(shape(2, 16, 3000, 3000)), "bh=32,g=1,sq=4096,sk=4096,d=128,dv=128,bf16");
  // Same bucket: 2049..4096 and batch x heads 17..32.
  EXPECT_EQ(tuningBucket(shape(2, 16, 2049, 4096)), tuningBucket(shape(1, 20, 4096, 2100)));
  // Different buckets: the lengths, the dtype, the head dim, the GQA group.
  EXPECT_NE(tuningBucket(shape(2, 16, 2048, 2048)), tuningBucket(shape(2, 16, 2049, 2049)));
  EXPECT_NE(tuningBucket(shape(2, 16, 4096, 4096)), tuningBucket(shape(2, 16, 4096, 4096, "f16")));
  TuningShape d64 = shape(2, 16, 4096, 4096);
  d64.headDim = d64.headDimV = 64;
  EXPECT_NE(tuningBucket(d64), tuningBucket(shape(2, 16, 4096, 4096)));
  TuningShape gqa = shape(2, 16, 4096, 4096);
  gqa.headsKV = 4;
  EXPECT_EQ(tuningBucket(gqa), "bh=32,g=4,sq=4096,sk=4096,d=128,dv=128,bf16");
  EXPECT_EQ(tuningKey("0123abcd", "sm_90:NVIDIA H200", shape(1, 1, 1, 1)),
            "0123abcd|sm_90:NVIDIA H200|bh=1,g=1,sq=1,sk=1,d=128,dv=128,bf16");
}

TEST(TuningCache, DefaultPathFollowsTheEnvironment) {
  const char *saved[3] = {std::getenv("ATTN_TUNING_CACHE"), std::getenv("XDG_CACHE_HOME"),
                          std::getenv("HOME")};
  std::string keep[3] = {saved[0] ? saved[0] : "", saved[1] ? saved[1] : "",
                         saved[2] ? saved[2] : ""};
  setenv("ATTN_TUNING_CACHE", "/x/t.json", 1);
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(TuningCache::defaultPath(), "/x/t.json");
  unsetenv("ATTN_TUNING_CACHE");
  EXPECT_EQ(TuningCache::defaultPath(), "/xdg/attn/tuning.json");
  setenv("XDG_CACHE_HOME", "", 1);
  EXPECT_EQ(TuningCache::defaultPath(), "/home/u/.cache/attn/tuning.json");
  unsetenv("XDG_CACHE_HOME");
  unsetenv("HOME");
  EXPECT_EQ(TuningCache::defaultPath(), "");
  const char *names[3] = {"ATTN_TUNING_CACHE", "XDG_CACHE_HOME", "HOME"};
  for (int i = 0; i < 3; ++i)
    if (saved[i])
      setenv(names[i], keep[i].c_str(), 1);
}

TEST(TuningCache, StoresLooksUpAndMergesEntries) {
  std::string dir = freshDir("merge");
  std::string path = dir + "/sub/dir/tuning.json"; // created on the first store
  TuningCache a(path), b(path);
  TuningChoice c, back;
  EXPECT_FALSE(a.lookup("k1", back)); // no file: a miss
  c.candidate = "bk64_pp1_pers0";
  c.medianMs = 1.5;
  c.timings = {{"bk64_pp1_pers0", 1.5}, {"bk128_pp1_pers0", 2.0}};
  std::string error;
  ASSERT_TRUE(a.store("k1", c, error)) << error;
  ASSERT_TRUE(b.lookup("k1", back));
  EXPECT_EQ(back.candidate, "bk64_pp1_pers0");
  EXPECT_DOUBLE_EQ(back.medianMs, 1.5);
  EXPECT_EQ(back.timings.size(), 2u);
  EXPECT_FALSE(back.time.empty());
  // Another writer (another object, as another process would be) adds its
  // key: both survive, since every store re-reads the file.
  c.candidate = "bk128_pp0_pers0";
  ASSERT_TRUE(b.store("k2", c, error)) << error;
  auto entries = a.entries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries["k1"].candidate, "bk64_pp1_pers0");
  EXPECT_EQ(entries["k2"].candidate, "bk128_pp0_pers0");
  // Replacing a key keeps the others.
  c.candidate = "bk128_pp1_pers1";
  ASSERT_TRUE(a.store("k1", c, error)) << error;
  ASSERT_TRUE(b.lookup("k1", back));
  EXPECT_EQ(back.candidate, "bk128_pp1_pers1");
  EXPECT_EQ(a.entries().size(), 2u);
  // The format tag and no temporary files left behind.
  EXPECT_NE(readText(path).find("\"format\": \"attn.tuning/1\""), std::string::npos);
  for (const auto &e : fs::directory_iterator(dir + "/sub/dir"))
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST(TuningCache, CorruptFilesAreMissesAndAreRewritten) {
  std::string dir = freshDir("corrupt");
  std::string path = dir + "/tuning.json";
  TuningCache cache(path);
  TuningChoice c, back;
  c.candidate = "cpasync1";
  std::string error;
  for (const char *garbage :
       {"", "{not json", "[1, 2]", "{\"format\": \"other/1\", \"entries\": {}}",
        "{\"format\": \"attn.tuning/1\", \"entries\": []}",
        "\x01\x02\xff\xfe binary"}) {
    std::ofstream(path, std::ios::trunc) << garbage;
    EXPECT_FALSE(cache.lookup("k", back)) << garbage;
    EXPECT_TRUE(cache.entries().empty()) << garbage;
    ASSERT_TRUE(cache.store("k", c, error)) << garbage << ": " << error;
    ASSERT_TRUE(cache.lookup("k", back)) << garbage;
    EXPECT_EQ(back.candidate, "cpasync1");
  }
  // A malformed entry is a miss for its key and is dropped on the next store;
  // the well-formed ones stay.
  std::ofstream(path, std::ios::trunc)
      << R"({"format": "attn.tuning/1", "entries": {"bad": {"candidate": 7},
            "empty": {"candidate": ""}, "good": {"candidate": "cpasync0", "median_ms": "x"}}})";
  EXPECT_FALSE(cache.lookup("bad", back));
  EXPECT_FALSE(cache.lookup("empty", back));
  ASSERT_TRUE(cache.lookup("good", back));
  EXPECT_EQ(back.medianMs, 0); // a wrong-typed field is ignored, not fatal
  ASSERT_TRUE(cache.store("new", c, error)) << error;
  auto entries = cache.entries();
  EXPECT_EQ(entries.size(), 2u);
  EXPECT_TRUE(entries.count("good") && entries.count("new"));
  EXPECT_EQ(readText(path).find("\"bad\""), std::string::npos);
}

TEST(TuningCache, ReportsUnwritableLocations) {
  std::string dir = freshDir("unwritable");
  std::ofstream(dir + "/file") << "x";
  TuningCache cache(dir + "/file/tuning.json"); // parent is a file
  TuningChoice c;
  c.candidate = "x";
  std::string error;
  EXPECT_FALSE(cache.store("k", c, error));
  EXPECT_FALSE(error.empty());
  TuningCache none("");
  EXPECT_FALSE(none.store("k", c, error));
  EXPECT_NE(error.find("no tuning cache path"), std::string::npos) << error;
}

TEST(TuningCache, ConcurrentWritersLoseNoEntry) {
  std::string path = freshDir("concurrent") + "/tuning.json";
  constexpr int kThreads = 6, kPerThread = 8;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      TuningCache cache(path); // each its own object and file descriptors
      for (int i = 0; i < kPerThread; ++i) {
        TuningChoice c;
        c.candidate = "cand" + std::to_string(t);
        std::string error;
        if (!cache.store("t" + std::to_string(t) + "-" + std::to_string(i), c, error))
          ++failures;
        TuningChoice back;
        (void)cache.lookup("t0-0", back); // readers never see half a file
      }
    });
  for (auto &th : threads)
    th.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(TuningCache(path).entries().size(), size_t(kThreads * kPerThread));
}

TEST(TuningCandidates, LoadsAGroupFromADirectory) {
  std::string dir = freshDir("load");
  writeCandidate(dir + "/c", "bk64", "g1");
  writeCandidate(dir + "/c", "bk128", "g1");
  std::ofstream(dir + "/c/notes.json") << "{\"unrelated\": true}"; // ignored
  TuningCandidateSet set;
  std::string error;
  ASSERT_EQ(loadTuningCandidates(dir + "/c", "", set, error), ATTN_OK) << error;
  EXPECT_EQ(set.group, "g1");
  ASSERT_EQ(set.manifests.size(), 2u);
  EXPECT_EQ(set.manifests[0].tuningCandidate, "bk128"); // sorted by tag
  EXPECT_EQ(set.manifests[1].tuningCandidate, "bk64");
  EXPECT_EQ(set.manifests[0].tuningOptions, "{\"block_k\":64}");
  // The parent directory (attn-compile's -o) works too, naming the group or not.
  ASSERT_EQ(loadTuningCandidates(dir, "g1", set, error), ATTN_OK) << error;
  ASSERT_EQ(loadTuningCandidates(dir, "", set, error), ATTN_OK) << error;
  // The tuning key survives a write/read round trip.
  KernelManifest back;
  ASSERT_TRUE(readManifest(set.manifestPaths[0], back, error)) << error;
  std::string path = dir + "/roundtrip.json";
  std::ofstream(path) << back.toJson(back.spec->canonicalJson);
  KernelManifest again;
  ASSERT_TRUE(readManifest(path, again, error)) << error;
  EXPECT_EQ(again.tuningGroup, "g1");
  EXPECT_EQ(again.tuningCandidate, "bk128");
  EXPECT_EQ(again.tuningOptions, "{\"block_k\":64}");
}

TEST(TuningCandidates, ErrorsNameTheProblem) {
  TuningCandidateSet set;
  std::string error;
  std::string dir = freshDir("errors");
  // Unknown group.
  writeCandidate(dir + "/c", "bk64", "g1");
  EXPECT_EQ(loadTuningCandidates(dir, "nosuch", set, error), ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(error.find("no candidates of tuning group nosuch (found: g1 (c, sm_90a))"),
            std::string::npos) << error;
  // Two groups in one directory: name one.
  writeCandidate(dir + "/d", "bk64", "g2", kSpecB);
  EXPECT_EQ(loadTuningCandidates(dir, "", set, error), ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(error.find("holds the candidates of 2 tuning groups"), std::string::npos) << error;
  EXPECT_EQ(loadTuningCandidates(dir, "g2", set, error), ATTN_OK) << error;
  // Candidates of different specs given together.
  EXPECT_EQ(loadTuningCandidates({dir + "/c/bk64/c.json", dir + "/d/bk64/c.json"}, set, error),
            ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(error.find("candidates from different tuning groups"), std::string::npos) << error;
  // One group id but another spec (an edited or stale candidate).
  std::string stale = freshDir("stale");
  writeCandidate(stale, "a", "g1");
  writeCandidate(stale, "b", "g1", kSpecB);
  EXPECT_EQ(loadTuningCandidates(stale, "", set, error), ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(error.find("spec or chip differs"), std::string::npos) << error;
  // The same tag twice.
  std::string dup = freshDir("dup");
  std::string p1 = writeCandidate(dup + "/x", "bk64", "g1");
  std::string p2 = writeCandidate(dup + "/y", "bk64", "g1");
  EXPECT_EQ(loadTuningCandidates({p1, p2}, set, error), ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(error.find("appears twice"), std::string::npos) << error;
  // An ordinary manifest is not a candidate.
  std::string plain = writeCandidate(freshDir("plain"), "k", "");
  EXPECT_EQ(loadTuningCandidates({plain}, set, error), ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(error.find("not a tuning candidate"), std::string::npos) << error;
  // No candidates at all; no directory.
  EXPECT_EQ(loadTuningCandidates(freshDir("empty"), "", set, error), ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(error.find("no tuning candidates"), std::string::npos) << error;
  EXPECT_EQ(loadTuningCandidates(dir + "/missing", "", set, error), ATTN_ERROR_IO);
  EXPECT_EQ(loadTuningCandidates(std::vector<std::string>{}, set, error),
            ATTN_ERROR_INVALID_ARGUMENT);
  // A candidate manifest that does not read is an error, not skipped.
  std::string broken = freshDir("broken");
  std::string p = writeCandidate(broken, "a", "g1");
  std::string text = readText(p);
  text.replace(text.find("\"launch\""), 8, "\"lunch\"");
  std::ofstream(p, std::ios::trunc) << text;
  EXPECT_EQ(loadTuningCandidates(broken, "", set, error), ATTN_ERROR_IO);
  EXPECT_NE(error.find("launch: expected an object"), std::string::npos) << error;
}

TEST(TuningChooser, TimesPicksTheFastestAndCachesIt) {
  std::string dir = freshDir("choose");
  for (const char *tag : {"a", "b", "c", "d"})
    writeCandidate(dir, tag, "g");
  TuningCandidateSet set;
  std::string error;
  ASSERT_EQ(loadTuningCandidates(dir, "", set, error), ATTN_OK) << error;
  FakeTimer timer;
  timer.set = &set;
  timer.times = {{"a", 2.0}, {"b", 1.25}, {"c", -1}, {"d", 1.5}};
  TuningCache cache(dir + "/cache.json");
  TuningOptions options;
  options.cache = &cache;
  TuningOutcome out;
  ASSERT_EQ(chooseTuningCandidate(set, "sm_90:H", shape(1, 8, 1000, 1000), timer.fn(), options,
                                  out, error),
            ATTN_OK)
      << error;
  // kTuningRounds rounds of a, b and d; c fails once and is dropped.
  EXPECT_EQ(timer.calls, 3 * kTuningRounds + 1);
  EXPECT_EQ(set.manifests[out.chosen].tuningCandidate, "b");
  EXPECT_FALSE(out.fromCache);
  EXPECT_EQ(out.key, "g|sm_90:H|bh=8,g=1,sq=1024,sk=1024,d=128,dv=128,bf16");
  ASSERT_EQ(out.timings.size(), 4u);
  EXPECT_EQ(out.timings[2], std::make_pair(std::string("c"), -1.0));
  ASSERT_EQ(out.failures.size(), 1u);
  EXPECT_NE(out.failures[0].find("c: cuLaunchKernel failed"), std::string::npos);
  EXPECT_TRUE(out.warning.empty()) << out.warning;

  // The same bucket again: from the cache, nothing timed.
  ASSERT_EQ(chooseTuningCandidate(set, "sm_90:H", shape(1, 7, 1020, 600), timer.fn(), options,
                                  out, error),
            ATTN_OK);
  EXPECT_EQ(timer.calls, 3 * kTuningRounds + 1);
  EXPECT_TRUE(out.fromCache);
  EXPECT_EQ(set.manifests[out.chosen].tuningCandidate, "b");
  EXPECT_EQ(out.timings.size(), 4u); // the stored table
  // Another device or bucket: timed again.
  ASSERT_EQ(chooseTuningCandidate(set, "sm_90:H100", shape(1, 8, 1000, 1000), timer.fn(),
                                  options, out, error),
            ATTN_OK);
  EXPECT_EQ(timer.calls, 2 * (3 * kTuningRounds + 1));
  // retune ignores the cached choice and replaces it.
  timer.times["d"] = 0.5;
  options.retune = true;
  ASSERT_EQ(chooseTuningCandidate(set, "sm_90:H", shape(1, 8, 1000, 1000), timer.fn(), options,
                                  out, error),
            ATTN_OK);
  EXPECT_EQ(timer.calls, 3 * (3 * kTuningRounds + 1));
  EXPECT_EQ(set.manifests[out.chosen].tuningCandidate, "d");
  TuningChoice stored;
  ASSERT_TRUE(cache.lookup(out.key, stored));
  EXPECT_EQ(stored.candidate, "d");
  EXPECT_DOUBLE_EQ(stored.medianMs, 0.5);
}

// A GPU that slows down as it warms up (each launch 0.1 ms slower than the
// one before, as sustained load lowers the H200's clocks): timed one after
// the other, the first candidate would tie with the truly fastest, which is
// timed third. Interleaved rounds with a rotating start find it.
TEST(TuningChooser, InterleavedRoundsOutlastClockDrift) {
  std::string dir = freshDir("drift");
  for (const char *tag : {"a", "b", "c"})
    writeCandidate(dir, tag, "g");
  TuningCandidateSet set;
  std::string error;
  ASSERT_EQ(loadTuningCandidates(dir, "", set, error), ATTN_OK) << error;
  std::map<std::string, double> base = {{"a", 1.0}, {"b", 1.0}, {"c", 0.8}};
  int calls = 0;
  TuningTimer drifting = [&](size_t i, double &ms, std::string &) {
    ms = base.at(set.manifests[i].tuningCandidate) + 0.1 * calls++;
    return true;
  };
  TuningOutcome out;
  ASSERT_EQ(chooseTuningCandidate(set, "dev", shape(1, 1, 64, 64), drifting, TuningOptions(),
                                  out, error),
            ATTN_OK)
      << error;
  EXPECT_EQ(calls, 3 * kTuningRounds);
  EXPECT_EQ(set.manifests[out.chosen].tuningCandidate, "c");
}

TEST(TuningChooser, StaleChoicesTiesAndFailures) {
  std::string dir = freshDir("stale-choice");
  for (const char *tag : {"a", "b"})
    writeCandidate(dir, tag, "g");
  TuningCandidateSet set;
  std::string error;
  ASSERT_EQ(loadTuningCandidates(dir, "", set, error), ATTN_OK) << error;
  FakeTimer timer;
  timer.set = &set;
  timer.times = {{"a", 1.0}, {"b", 1.0}};
  TuningCache cache(dir + "/cache.json");
  TuningOptions options;
  options.cache = &cache;
  TuningOutcome out;
  // A cached choice naming a candidate the set no longer has: timed again.
  TuningChoice gone;
  gone.candidate = "removed";
  ASSERT_TRUE(cache.store(tuningKey("g", "dev", shape(1, 1, 64, 64)), gone, error));
  ASSERT_EQ(chooseTuningCandidate(set, "dev", shape(1, 1, 64, 64), timer.fn(), options, out,
                                  error),
            ATTN_OK);
  EXPECT_EQ(timer.calls, 2 * kTuningRounds);
  EXPECT_FALSE(out.fromCache);
  EXPECT_EQ(set.manifests[out.chosen].tuningCandidate, "a"); // a tie: the first
  // Without a cache: timed every time.
  options.cache = nullptr;
  ASSERT_EQ(chooseTuningCandidate(set, "dev", shape(1, 1, 64, 64), timer.fn(), options, out,
                                  error),
            ATTN_OK);
  EXPECT_EQ(timer.calls, 4 * kTuningRounds);
  // Every candidate fails: an error with each message.
  timer.times = {{"a", -1}, {"b", -1}};
  EXPECT_EQ(chooseTuningCandidate(set, "dev", shape(1, 1, 64, 64), timer.fn(), options, out,
                                  error),
            ATTN_ERROR_CUDA);
  EXPECT_NE(error.find("no tuning candidate of group g could be timed"), std::string::npos);
  EXPECT_NE(error.find("\n  a: cuLaunchKernel failed"), std::string::npos) << error;
  EXPECT_NE(error.find("\n  b: cuLaunchKernel failed"), std::string::npos) << error;
  // A cache that cannot be written is a warning, not a failure.
  std::ofstream(dir + "/file") << "x";
  TuningCache unwritable(dir + "/file/cache.json");
  options.cache = &unwritable;
  timer.times = {{"a", 3.0}, {"b", 1.0}};
  ASSERT_EQ(chooseTuningCandidate(set, "dev", shape(1, 1, 64, 64), timer.fn(), options, out,
                                  error),
            ATTN_OK);
  EXPECT_EQ(set.manifests[out.chosen].tuningCandidate, "b");
  EXPECT_NE(out.warning.find("not cached"), std::string::npos) << out.warning;
}

#ifdef ATTN_HAVE_CUDA
static bool dlopenable() {
  void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h)
    dlclose(h);
  return h != nullptr;
}

static attn_tensor tensorOf(std::vector<int64_t> shape, attn_dtype dtype, void *data) {
  attn_tensor t{};
  t.data = data;
  t.ndim = int32_t(shape.size());
  t.dtype = dtype;
  int64_t stride = 1;
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    t.shape[d] = shape[d];
    t.strides[d] = stride;
    stride *= shape[d];
  }
  return t;
}

// attn_tune's argument and candidate errors come before any CUDA call, so
// they read the same on machines without a GPU.
TEST(TuningCApi, ReportsBadGroupsAndShapesBeforeTouchingTheGpu) {
  std::string dir = freshDir("capi");
  writeCandidate(dir + "/c", "bk64", "g1");
  writeCandidate(dir + "/c", "bk128", "g1");
  int dummy = 0;
  std::vector<attn_tensor> args = {
      tensorOf({2, 4, 100, 8}, ATTN_BF16, &dummy), tensorOf({2, 2, 130, 8}, ATTN_BF16, &dummy),
      tensorOf({2, 2, 130, 8}, ATTN_BF16, &dummy), tensorOf({2, 4, 100, 8}, ATTN_BF16, &dummy),
      tensorOf({2, 4, 100}, ATTN_F32, &dummy)};
  attn_tune_result result;
  attn_tune_options options;
  attn_tune_options_init(&options);
  options.no_cache = 1;
  char err[1024];
  EXPECT_EQ(attn_tune(nullptr, args.data(), 5, nullptr, &options, &result, nullptr, err,
                      sizeof err),
            ATTN_ERROR_INVALID_ARGUMENT);
  options.group = "nosuch";
  EXPECT_EQ(attn_tune(dir.c_str(), args.data(), 5, nullptr, &options, &result, nullptr, err,
                      sizeof err),
            ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("no candidates of tuning group nosuch"), std::string::npos)
      << err;
  options.group = nullptr;
  auto bad = args;
  bad[3] = tensorOf({2, 4, 99, 8}, ATTN_BF16, &dummy);
  EXPECT_EQ(attn_tune(dir.c_str(), bad.data(), 5, nullptr, &options, &result, nullptr, err,
                      sizeof err),
            ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("attn_tune: c: out: expected bf16 [2, 4, 100, 8], got bf16 "
                                  "[2, 4, 99, 8]"),
            std::string::npos)
      << err;
  EXPECT_EQ(attn_tune(dir.c_str(), args.data(), 4, nullptr, &options, &result, nullptr, err,
                      sizeof err),
            ATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("expected 5 tensors"), std::string::npos) << err;
  // Well-formed arguments on a machine without a driver: a CUDA error with
  // a message, never a crash.
  if (!dlopenable()) {
    EXPECT_EQ(attn_tune(dir.c_str(), args.data(), 5, nullptr, &options, &result, nullptr, err,
                        sizeof err),
              ATTN_ERROR_CUDA);
    EXPECT_NE(std::string(err).find("libcuda.so.1"), std::string::npos) << err;
  }
}
#endif
