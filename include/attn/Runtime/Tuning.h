//===- Tuning.h - choose among a spec's kernel candidates, cached -*- C++ -*-===//
//
// The optional tuning mode: attn-compile --tune-candidates writes one kernel
// per legal (tile, kernel-shape) choice of a spec, each manifest carrying a
// "tuning" key {group, candidate, options}; the runtime times the candidates
// of one group on the caller's problem and remembers the fastest in a JSON
// cache file, keyed by group + device + shape bucket.
//
// This file is the part with no CUDA: candidate sets, shape buckets, the
// cache file and the chooser, whose timer is a parameter (the CUDA timer is
// in CudaRuntime.cpp; tests inject their own). Nothing here throws or aborts
// on a bad file: a corrupt cache is a miss and is rewritten on the next store.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_RUNTIME_TUNING_H
#define ATTN_RUNTIME_TUNING_H

#include "attn/Runtime/HostTensors.h"
#include "attn/Runtime/Manifest.h"
#include "attn/attn_runtime.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace attn {

/// The candidates of one tuning group, in a stable order (by tag).
struct TuningCandidateSet {
  std::string group;
  std::vector<std::string> manifestPaths;
  std::vector<KernelManifest> manifests; ///< same order as manifestPaths
};

/// Reads the candidate manifests under `dir` (the attn-compile layout:
/// DIR/<spec>/<candidate>/<spec>.json; DIR itself, DIR/* and DIR/*/* are
/// searched). JSON files that are not kernel manifests with a "tuning" key
/// are ignored; a candidate manifest that does not read is an error. `group`
/// empty: the directory must hold exactly one group; else only that group's
/// candidates are taken (ATTN_ERROR_INVALID_ARGUMENT if there are none).
attn_status loadTuningCandidates(const std::string &dir, const std::string &group,
                                 TuningCandidateSet &set, std::string &error);

/// The same from explicit manifest paths: every one must be a candidate, all
/// of one group, spec and chip, with distinct tags.
attn_status loadTuningCandidates(const std::vector<std::string> &manifestPaths,
                                 TuningCandidateSet &set, std::string &error);

/// What a choice depends on besides the group and the device.
struct TuningShape {
  int64_t batch = 0, headsQ = 0, headsKV = 0, seqQ = 0, seqK = 0;
  int64_t headDim = 0, headDimV = 0;
  std::string dtype; ///< "f16", "bf16", "f32"
};
TuningShape tuningShapeOf(const Spec &spec, const ExecInputs &sizes);

/// The smallest power of two >= n (1 for n <= 1).
int64_t roundUpToPowerOfTwo(int64_t n);

/// The shape bucket: batch x query heads and both sequence lengths rounded
/// up to powers of two; kv heads as the GQA group size; head dims and dtype
/// exact. "bh=64,g=1,sq=4096,sk=4096,d=128,dv=128,bf16".
std::string tuningBucket(const TuningShape &shape);

/// The cache key: "<group>|<device>|<bucket>".
std::string tuningKey(const std::string &group, const std::string &device,
                      const TuningShape &shape);

/// One remembered choice.
struct TuningChoice {
  std::string candidate;             ///< the winner's tag
  double medianMs = 0;               ///< its median launch time
  std::map<std::string, double> timings; ///< every candidate's median (ms; < 0: failed)
  std::string time;                  ///< when it was measured (UTC, ISO 8601)
};

/// The cache file: {"format": "attn.tuning/1", "entries": {key: {candidate,
/// median_ms, timings, time}}}. Every store locks DIR/tuning.json.lock
/// (flock, waiting at most ~2 s, then going on without it), re-reads the
/// file, merges its entry in, writes a private temporary file and renames
/// it over the cache: concurrent processes lose no entry and readers never
/// see half a file.
class TuningCache {
public:
  explicit TuningCache(std::string path) : path_(std::move(path)) {}
  /// $ATTN_TUNING_CACHE, else $XDG_CACHE_HOME/attn/tuning.json, else
  /// $HOME/.cache/attn/tuning.json; "" when none of them is set.
  static std::string defaultPath();
  const std::string &path() const { return path_; }

  /// False on a miss, including a missing, unreadable or corrupt file or a
  /// malformed entry.
  bool lookup(const std::string &key, TuningChoice &choice) const;
  /// Merges one entry into the file (see above). False + message on an I/O
  /// failure; a corrupt existing file is replaced.
  bool store(const std::string &key, const TuningChoice &choice, std::string &error) const;
  /// Every readable entry (for tools and tests).
  std::map<std::string, TuningChoice> entries() const;

private:
  std::string path_;
};

/// Times candidate `index` of the set: the median launch time in ms, or
/// false + a message (that candidate is then skipped).
using TuningTimer = std::function<bool(size_t index, double &medianMs, std::string &error)>;

struct TuningOptions {
  const TuningCache *cache = nullptr; ///< null: no cache
  bool retune = false;                ///< ignore a cached choice (and replace it)
};

struct TuningOutcome {
  size_t chosen = 0;     ///< index into the set
  bool fromCache = false;
  std::string key;       ///< the cache key
  std::vector<std::pair<std::string, double>> timings; ///< (tag, ms; < 0 failed), set order
  std::vector<std::string> failures;                   ///< "tag: message"
  std::string warning;   ///< e.g. the cache could not be written (not an error)
};

/// Rounds of timing per candidate (interleaved; the median is kept).
constexpr int kTuningRounds = 3;

/// The chooser: a cached choice that names a candidate of the set is taken
/// as is; otherwise every candidate is timed in kTuningRounds interleaved
/// rounds (a candidate that fails once is dropped), the fastest median wins
/// (ties: the first in set order) and is stored. Fails (ATTN_ERROR_CUDA with every
/// candidate's message) only when no candidate could be timed.
attn_status chooseTuningCandidate(const TuningCandidateSet &set, const std::string &device,
                                  const TuningShape &shape, const TuningTimer &timer,
                                  const TuningOptions &options, TuningOutcome &outcome,
                                  std::string &error);

} // namespace attn

#endif // ATTN_RUNTIME_TUNING_H
