//===- Jit.cpp - compile specs on first use, cache in memory and on disk ---===//
//
// Memory: key -> loaded kernel, under a mutex; a per-key mutex makes
// concurrent first requests for one spec compile once. Disk:
// <cache>/<key>/{<name>.ptx, <name>.cubin, <name>.json}, written into
// <cache>/<key>.tmp-<pid>-<n> and renamed into place; a rename that loses
// the race to another process keeps the winner's entry.
//
//===----------------------------------------------------------------------===//

#include "attn/attn_jit.h"
#include "attn/Runtime/CStatus.h"
#include "attn/Runtime/Manifest.h"
#include "attn/Runtime/Tuning.h"
#include "attn/Spec/Spec.h"
#include "attn/Target/GpuCompiler.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/SHA256.h"

#include <atomic>
#include <cstring>
#include <map>
#include <unordered_map>
#include <memory>
#include <mutex>

struct attn_jit {
  std::string dir, chip;
  std::mutex mutex; // guards kernels and keyLocks
  std::map<std::string, attn_kernel *> kernels;
  /// Exact spec text -> kernel: a repeated request skips parsing and hashing.
  std::unordered_map<std::string, attn_kernel *> byText;
  std::map<std::string, std::shared_ptr<std::mutex>> keyLocks;
  std::atomic<uint64_t> compiles{0}, diskHits{0}, memoryHits{0}, rebuilt{0}, tunedCount{0};
  std::atomic<bool> tuning{false};
  /// "<group>|<shape bucket>" -> the tuned kernel (owned here).
  std::map<std::string, attn_kernel *> tuned;
  std::atomic<uint64_t> tmpCounter{0};
};

namespace {

std::string sha256Hex(llvm::StringRef data) {
  return llvm::toHex(llvm::SHA256::hash(llvm::arrayRefFromStringRef(data)), true);
}

/// Whether a manifest's PTX matches the manifest's hash.
bool ptxMatches(const attn::KernelManifest &m) {
  auto ptx = llvm::MemoryBuffer::getFile(m.directory + "/" + m.ptxFile);
  return ptx && sha256Hex((*ptx)->getBuffer()) == m.sha256;
}

/// A disk entry is usable when its manifest parses and its PTX matches the
/// manifest's hash (a truncated or edited file does not), and so do those of
/// its per-length variants (--seq-dispatch), which the kernel loads with it.
bool entryIsValid(const std::string &entryDir, const std::string &name) {
  attn::KernelManifest m;
  std::string error;
  if (!attn::readManifest(entryDir + "/" + name + ".json", m, error) || !ptxMatches(m))
    return false;
  for (size_t i = 0; i < m.dispatch.size(); ++i) {
    attn::KernelManifest variant;
    if (!attn::readDispatchVariant(m, i, variant, error) || !ptxMatches(variant))
      return false;
  }
  return true;
}

} // namespace

using attn::reportStatus;

extern "C" {

attn_status attn_jit_create(const char *cacheDir, const char *chip, attn_jit **jit, char *err,
                            size_t errLen) {
  if (!jit)
    return reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT, "attn_jit_create: null output");
  auto j = std::make_unique<attn_jit>();
  j->chip = chip ? chip : "sm_90a";
  if (cacheDir) {
    j->dir = cacheDir;
  } else if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    j->dir = std::string(xdg) + "/attn";
  } else if (const char *home = std::getenv("HOME"); home && *home) {
    j->dir = std::string(home) + "/.cache/attn";
  } else {
    return reportStatus(err, errLen, ATTN_ERROR_IO, "no cache directory: set XDG_CACHE_HOME or HOME");
  }
  if (const char *tune = std::getenv("ATTN_TUNE"); tune && std::string(tune) == "1")
    j->tuning = true;
  if (std::error_code ec = llvm::sys::fs::create_directories(j->dir))
    return reportStatus(err, errLen, ATTN_ERROR_IO, j->dir + ": " + ec.message());
  // Probe writability now rather than at the first compile.
  llvm::SmallString<128> probe;
  int fd;
  if (std::error_code ec = llvm::sys::fs::createUniqueFile(j->dir + "/.probe-%%%%%%", fd, probe))
    return reportStatus(err, errLen, ATTN_ERROR_IO, j->dir + ": not writable: " + ec.message());
  llvm::sys::Process::SafelyCloseFileDescriptor(fd);
  llvm::sys::fs::remove(probe);
  *jit = j.release();
  return ATTN_OK;
}

void attn_jit_destroy(attn_jit *jit) {
  if (!jit)
    return;
  for (auto &[key, kernel] : jit->kernels)
    attn_kernel_destroy(kernel);
  for (auto &[key, kernel] : jit->tuned)
    attn_kernel_destroy(kernel);
  delete jit;
}

void attn_jit_get_stats(const attn_jit *jit, attn_jit_stats *stats) {
  if (!jit || !stats)
    return;
  stats->compiles = jit->compiles;
  stats->disk_hits = jit->diskHits;
  stats->memory_hits = jit->memoryHits;
  stats->rebuilt_corrupt_entries = jit->rebuilt;
  stats->tuned = jit->tunedCount;
}

void attn_jit_set_tuning(attn_jit *jit, int enabled) {
  if (jit)
    jit->tuning = enabled != 0;
}

attn_status attn_jit_get_kernel(attn_jit *jit, const char *specJson, attn_kernel **kernel,
                                char *err, size_t errLen) {
  if (!jit || !specJson || !kernel)
    return reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT,
                  "attn_jit_get_kernel: null jit, spec or output");
  {
    std::lock_guard<std::mutex> lock(jit->mutex);
    if (auto it = jit->byText.find(specJson); it != jit->byText.end()) {
      ++jit->memoryHits;
      *kernel = it->second;
      return ATTN_OK;
    }
  }
  attn::Spec spec;
  std::string error;
  if (!attn::parseSpec(specJson, spec, error))
    return reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT, "spec: " + error);
  std::string key = sha256Hex(spec.canonicalJson + "\n" + attn::compilerVersion() + "\n" +
                              jit->chip + "\ntensor-cores=1\n");
  std::shared_ptr<std::mutex> keyLock;
  {
    std::lock_guard<std::mutex> lock(jit->mutex);
    if (auto it = jit->kernels.find(key); it != jit->kernels.end()) {
      ++jit->memoryHits;
      jit->byText[specJson] = it->second;
      *kernel = it->second;
      return ATTN_OK;
    }
    auto &slot = jit->keyLocks[key];
    if (!slot)
      slot = std::make_shared<std::mutex>();
    keyLock = slot;
  }
  std::lock_guard<std::mutex> compileLock(*keyLock);
  {
    std::lock_guard<std::mutex> lock(jit->mutex); // another thread may have won
    if (auto it = jit->kernels.find(key); it != jit->kernels.end()) {
      ++jit->memoryHits;
      *kernel = it->second;
      return ATTN_OK;
    }
  }

  std::string entry = jit->dir + "/" + key;
  bool exists = llvm::sys::fs::exists(entry);
  if (exists && !entryIsValid(entry, spec.name)) {
    ++jit->rebuilt;
    llvm::sys::fs::remove_directories(entry);
    exists = false;
  }
  if (exists) {
    ++jit->diskHits;
  } else {
    std::string tmp = entry + ".tmp-" + std::to_string(llvm::sys::Process::getProcessId()) +
                      "-" + std::to_string(jit->tmpCounter++);
    attn::GpuCompileOptions options;
    options.chip = jit->chip;
    options.cubin = true;
    attn::KernelManifest manifest;
    attn::PtxasReport ptxas;
    if (!attn::compileSpecForGpu(spec, "<jit spec>", options, tmp, manifest, ptxas, error)) {
      llvm::sys::fs::remove_directories(tmp);
      return reportStatus(err, errLen, ATTN_ERROR_IO, error);
    }
    ++jit->compiles;
    if (llvm::sys::fs::rename(tmp, entry)) {
      // Another process renamed its entry into place first: use that one.
      llvm::sys::fs::remove_directories(tmp);
      if (!entryIsValid(entry, spec.name))
        return reportStatus(err, errLen, ATTN_ERROR_IO, entry + ": cannot install the cache entry");
    }
  }
  attn_kernel *loaded = nullptr;
  attn_status status =
      attn_kernel_load((entry + "/" + spec.name + ".json").c_str(), &loaded, err, errLen);
  if (status != ATTN_OK)
    return status;
  std::lock_guard<std::mutex> lock(jit->mutex);
  jit->kernels[key] = loaded;
  jit->byText[specJson] = loaded;
  *kernel = loaded;
  return ATTN_OK;
}

attn_status attn_jit_get_kernel_for(attn_jit *jit, const char *specJson,
                                    const attn_tensor *args, int numArgs, void *stream,
                                    attn_kernel **kernel, char *err, size_t errLen) {
  if (!jit || !specJson || !kernel || (!args && numArgs > 0))
    return reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT,
                        "attn_jit_get_kernel_for: null jit, spec, arguments or output");
  if (!jit->tuning)
    return attn_jit_get_kernel(jit, specJson, kernel, err, errLen);
  attn::Spec spec;
  std::string error;
  if (!attn::parseSpec(specJson, spec, error))
    return reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT, "spec: " + error);
  std::string group = attn::tuningGroupId(spec, jit->chip);
  // The in-memory choice, by group and shape bucket (bad tensors fall
  // through to attn_tune, which names the problem).
  std::string memoKey;
  if (numArgs >= 3 && args[0].ndim == 4 && args[1].ndim == 4 && args[2].ndim == 4) {
    attn::TuningShape shape;
    shape.batch = args[0].shape[0];
    shape.headsQ = args[0].shape[1];
    shape.seqQ = args[0].shape[2];
    shape.headDim = args[0].shape[3];
    shape.headsKV = args[1].shape[1];
    shape.seqK = args[1].shape[2];
    shape.headDimV = args[2].shape[3];
    shape.dtype = attn::elementTypeName(spec.dtype);
    memoKey = group + "|" + attn::tuningBucket(shape);
    std::lock_guard<std::mutex> lock(jit->mutex);
    if (auto it = jit->tuned.find(memoKey); it != jit->tuned.end()) {
      ++jit->memoryHits;
      *kernel = it->second;
      return ATTN_OK;
    }
  }
  std::shared_ptr<std::mutex> groupLock;
  {
    std::lock_guard<std::mutex> lock(jit->mutex);
    auto &slot = jit->keyLocks["tune:" + group];
    if (!slot)
      slot = std::make_shared<std::mutex>();
    groupLock = slot;
  }
  std::lock_guard<std::mutex> compileLock(*groupLock);
  if (!memoKey.empty()) {
    std::lock_guard<std::mutex> lock(jit->mutex); // another thread may have won
    if (auto it = jit->tuned.find(memoKey); it != jit->tuned.end()) {
      *kernel = it->second;
      return ATTN_OK;
    }
  }
  // The candidates: compiled once per group (per compiler, spec and chip),
  // into a private directory renamed into place.
  std::string entry = jit->dir + "/tune-" + group;
  std::string candidates = entry + "/" + spec.name;
  attn::TuningCandidateSet set;
  if (llvm::sys::fs::exists(entry) &&
      attn::loadTuningCandidates(candidates, group, set, error) != ATTN_OK) {
    ++jit->rebuilt;
    llvm::sys::fs::remove_directories(entry);
  }
  if (!llvm::sys::fs::exists(entry)) {
    std::string tmp = entry + ".tmp-" + std::to_string(llvm::sys::Process::getProcessId()) +
                      "-" + std::to_string(jit->tmpCounter++);
    attn::GpuCompileOptions options;
    options.chip = jit->chip;
    options.cubin = true;
    std::vector<attn::TuningCandidateResult> results;
    if (!attn::compileTuningCandidates(spec, "<jit spec>", options, tmp, results, error)) {
      llvm::sys::fs::remove_directories(tmp);
      return reportStatus(err, errLen, ATTN_ERROR_IO, error);
    }
    ++jit->compiles;
    if (llvm::sys::fs::rename(tmp, entry)) {
      llvm::sys::fs::remove_directories(tmp); // another process won: use its entry
      if (attn::loadTuningCandidates(candidates, group, set, error) != ATTN_OK)
        return reportStatus(err, errLen, ATTN_ERROR_IO,
                            entry + ": cannot install the tuning candidates: " + error);
    }
  } else {
    ++jit->diskHits;
  }
  attn_tune_options options;
  attn_tune_options_init(&options);
  std::string cachePath = jit->dir + "/tuning.json";
  if (const char *env = std::getenv("ATTN_TUNING_CACHE"); !env || !*env)
    options.cache_path = cachePath.c_str();
  options.group = group.c_str();
  attn_tune_result result;
  attn_kernel *chosen = nullptr;
  attn_status status = attn_tune(candidates.c_str(), args, numArgs, stream, &options, &result,
                                 &chosen, err, errLen);
  if (status != ATTN_OK)
    return status;
  ++jit->tunedCount;
  std::lock_guard<std::mutex> lock(jit->mutex);
  if (memoKey.empty())
    memoKey = result.key;
  auto [it, fresh] = jit->tuned.emplace(memoKey, chosen);
  if (!fresh)
    attn_kernel_destroy(chosen);
  *kernel = it->second;
  return ATTN_OK;
}

} // extern "C"
