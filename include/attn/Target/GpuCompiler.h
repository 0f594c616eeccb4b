//===- GpuCompiler.h - spec -> PTX (+ cubin) + manifest ---------*- C++ -*-===//
#ifndef ATTN_TARGET_GPUCOMPILER_H
#define ATTN_TARGET_GPUCOMPILER_H

#include "attn/Runtime/Manifest.h"
#include "attn/Spec/Spec.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace attn {

struct GpuCompileOptions {
  std::string chip = "sm_90a"; ///< sm_80 (portable) or sm_90a
  int64_t blockQ = 0, blockK = 0; ///< 0: the heuristic
  bool cubin = false;             ///< also assemble with ptxas
  bool tensorCores = true;        ///< mma.sync kernel for f16/bf16 softmax
  bool cpAsync = true;            ///< mma.sync kernel: cp.async double buffering
  bool documentTiles = true;      ///< Hopper kernel: run-time document tile classes
  /// Hopper kernel with documentTiles: each live tile's key document ids
  /// staged in shared memory with its K (read there by the masked softmax).
  bool documentIdsInShared = true;
  /// Persistent Hopper kernel with documentTiles: a [min, max] id summary of
  /// every k tile in shared memory, from which each q tile's walk starts at
  /// its first possibly live tile. Unset: the heuristic (with seqDispatch, a
  /// kernel with it for Sk >= 16384; off otherwise).
  std::optional<bool> documentTileSummary;
  /// The summary's capacity in entries (batch x k tiles, batch x q tiles); a
  /// launch with more walks from the first tile.
  unsigned documentTileSummaryEntries = 2048;
  /// Summary entries each consumer warp computes per round of loads.
  unsigned documentTileSummaryUnroll = 2;
  /// Hopper kernel: each consumer warp writes O through shared memory, whole
  /// rows at a time, instead of 4-byte pairs straight from its fragments.
  bool stagedOutputStore = true;
  /// With stagedOutputStore: all staged rows read back, the Q buffer handed
  /// back, then the global stores (experimental, off).
  bool earlyOutputRelease = false;
  /// Persistent Hopper kernel with documentTiles: the q tiles ranked by their
  /// estimated live k tiles at block start, the longer half of every pair's
  /// items first (longest first), so that no long item starts last. Unset:
  /// the heuristic (with seqDispatch, the kernel for Sk >= 16384 has it, the
  /// shorter lengths' not; a single kernel has it).
  std::optional<bool> documentItemOrder;
  /// The item order's capacity in entries (batch x q tiles, batch x k tiles);
  /// a launch with more keeps the q-tile-descending order.
  unsigned documentItemOrderEntries = 2048;
  /// The item order's phases: 2 (the longer half of every pair's q tiles
  /// first) or 1 (longest first inside each L2 group only).
  unsigned documentItemOrderPhases = 2;
  /// Persistent Hopper kernel without q-dependent k ranges (dense): the query
  /// rows of all (batch, head) pairs as one sequence of 64-row slices, so
  /// that 192-row tiles compute no rows past a sequence end but the last.
  /// Unset: the heuristic (see seqDispatchPlan).
  std::optional<bool> crossHeadTiles;
  /// Hopper kernel: each consumer warpgroup's index broadcast from lane 0, so
  /// that its wgmma descriptors live in uniform registers. Where that spills,
  /// the kernel is rebuilt without it before smaller tiles are tried.
  bool uniformWarpgroupIndex = true;
  /// Hopper kernel under a causal or window bound: on an item's last
  /// (diagonal) k tile, the consumer warpgroup that sees only its first 64
  /// keys computes half the products. Unset: the heuristic. Where it spills,
  /// the kernel is rebuilt without it first.
  std::optional<bool> halfDiagonalKeys;
  /// Hopper kernel: consumer warpgroups take turns; unset: the heuristic (on
  /// for 128-row tiles, off for 192-row ones, where the H200 ran faster without).
  std::optional<bool> pingPong;
  /// Hopper kernel: one block per SM over the work items; unset: the heuristic
  /// (on only for plain causal masks at D = 64, where the H200 measured +6-7% at 4k).
  std::optional<bool> persistent;
  bool lazyRescale = true;        ///< Hopper kernel: rescale O only when a max grows past 2^8
  /// tanh (soft-cap, score_mod) as tanh.approx.f32, one MUFU op, instead of
  /// libdevice's tanhf (two MUFU ops and a polynomial).
  bool fastTanh = true;
  /// Hopper kernel: softmax weights per 8 elements taken by an FMA-pipe
  /// polynomial instead of MUFU.EX2 (0-8); unset: the heuristic.
  std::optional<int64_t> polyExp2Eighths;
  /// Hopper kernel: K/V pipeline stages (2-4); unset: 2.
  std::optional<int64_t> kvStages;
  /// Hopper persistent kernel: carry an item's last P V and epilogue into
  /// the next item's first tile (experimental; unset: off, measured slower).
  std::optional<bool> itemOverlap;
  /// Hopper persistent kernel: take each next work item from a global counter
  /// (manifest role `tile_counter`, zeroed before every launch) instead of the
  /// static order. Unset: the heuristic (on, with persistent blocks, for
  /// plain causal masks and documents at D = Dv = 128); requires persistent
  /// blocks.
  std::optional<bool> dynamicScheduler;
  /// Where the heuristic has a plan (seqDispatchPlan), kernels per sequence
  /// length: the default kernel for short sequences and `<name>_sk<N>.json`
  /// for Sk >= N, listed under the manifest's "dispatch" and picked by the
  /// runtime per launch. Off: one kernel, the heuristic's for all lengths.
  bool seqDispatch = true;
  bool chunkedLinear = true;      ///< linear kinds: chunkwise tensor-core kernel
  bool chunkedLinearPrefetch = true; ///< chunkwise kernel: cp.async next-chunk prefetch
  /// Chunkwise kernel on sm_90a: the wgmma + TMA form where it applies (no,
  /// scalar or head-constant gates, identity feature map, no normalizer).
  /// On by default since the H200 check and bench of 2026-12-03 (63/63
  /// checks; simple_gla 247 vs 169 TFLOP/s for the mma.sync kernel, 1.97 /
  /// 2.01x chunk_simple_gla, bench/results/2026-12-03-v20-same-call/).
  bool chunkedLinearWgmma = true;
  /// ... and the next chunk's Q K^T issued before this chunk's epilogue.
  bool chunkedLinearWgmmaOverlap = false;
  /// ... and for vector gates (GLA): on since session 9's H200 run (18/18
  /// checks, sanitizer clean; 0.95 / 0.93x chunk_gla vs the mma.sync
  /// kernel's 0.88 / 0.87x, bench/results/2026-12-03-v21-softcap-dynsched/).
  bool chunkedLinearWgmmaVector = true;
  /// ... and, at Dk = 128, the diagonal triangles computed by the producer
  /// warpgroup a chunk ahead (experimental until measured).
  bool chunkedLinearProducerDiagonal = false;
  /// ... and, at Dk = Dv = 128, one block per (batch, head) whose two
  /// consumer warpgroups (one per value half) share the intra-chunk A: on
  /// since session 11's H200 run (6/6 checks, sanitizer clean; GLA 74.7 /
  /// 76.7 TFLOP/s, 1.91 / 1.92x chunk_gla, vs 36.8 / 37.2 for two blocks per
  /// (batch, head); bench/results/2026-12-03-v23-session11/).
  bool chunkedLinearTwoConsumers = true;
  /// ... and, for no / scalar / head-constant gates, the state recurrence on
  /// its own warpgroup, the chunk outputs on two more: on since session 13's
  /// H200 run (15/15 checks, memcheck and racecheck clean; simple_gla 290 /
  /// 296 and 289 / 306 TFLOP/s at T = 4k / 16k against the one-consumer
  /// kernel's 253 / 265 and 251 / 267 in the same call;
  /// bench/results/2026-12-03-v25-session13/).
  bool chunkedLinearSplitState = true;
  /// ... and, in it with gates, K scaled by the producer warpgroup's idle warps a
  /// chunk ahead (experimental: compiled and checked here, not yet run on a GPU).
  bool chunkedLinearProducerKScale = false;
  bool failOnSpills = false;      ///< with cubin: any spill or stack frame is an error
  bool alwaysAssemble = false;    ///< run ptxas even without cubin (for its report)
  /// Recorded in the manifest's "tuning" key when tuningGroup is set
  /// (compileTuningCandidates sets them).
  std::string tuningGroup, tuningCandidate, tuningOptionsJson;
  /// Lower with upstream's gpu-lower-to-nvvm-pipeline as one textual pass
  /// (the reference the spelled-out device pipeline is tested against).
  bool upstreamNvvmPipeline = false;
  std::string cudaHome;           ///< default: $CUDA_HOME, else the build's toolkit
  /// When set, compileSpecForGpu records how long each stage took (wall and
  /// this thread's CPU time) and the MLIR pass timing report.
  struct CompileTimings *timings = nullptr;
};

/// Where a compile's time went (GpuCompileOptions::timings).
struct CompileTimings {
  struct Stage {
    std::string name;
    double wallSeconds = 0, cpuSeconds = 0; ///< cpu: this thread, or the child for ptxas
  };
  std::vector<Stage> stages;
  std::string passReport; ///< MLIR's pass timing tree, one per pass manager run
};

/// What ptxas said about the kernel (when it ran).
struct PtxasReport {
  bool ran = false;
  int registers = 0;
  int stackFrameBytes = 0, spillStoreBytes = 0, spillLoadBytes = 0;
  int sharedMemoryBytes = 0;
  /// ptxas serialized the kernel's wgmma instructions (its "Potential
  /// Performance Loss" infos C7510-C7520: every wgmma then waits for the one
  /// before); `wgmmaSerializedWhy` is its first such message. The kernel is
  /// correct but loses the tensor cores' pipelining, so attn-compile warns.
  bool wgmmaSerialized = false;
  std::string wgmmaSerializedWhy;
  std::string log;
  /// The kernel compileSpecForGpu settled on (set whether or not ptxas ran):
  /// its kind (wgmma, mma.sync, chunked, simt) and tile, which the spill
  /// fallbacks may have changed from the heuristic's.
  std::string kernel;
  int64_t blockQ = 0, blockK = 0;
  /// Hopper kernel: cross-head tiles applied; the uniform warpgroup index
  /// kept (a spill fallback may have dropped it).
  bool crossHeadTiles = false, uniformWarpgroupIndex = false;
  /// Hopper kernel: the half diagonal keys applied (causal or window bound,
  /// 128-key tiles, no tile list; a spill fallback may have dropped them).
  bool halfDiagonalKeys = false;
};

/// Kernels per sequence length behind one manifest: the default kernel,
/// compiled with `base`'s options (if any), serves launches with Sk below
/// every variant's bound; a variant serves Sk >= its minSeqK (the largest
/// such bound wins), compiled with the caller's options changed by `apply`
/// (not by `base`).
struct SeqDispatchPlan {
  std::function<void(GpuCompileOptions &)> base;
  struct Variant {
    int64_t minSeqK = 0;
    std::function<void(GpuCompileOptions &)> apply;
  };
  std::vector<Variant> variants;
};

/// The per-sequence-length kernels the heuristic gives the spec on `chip`,
/// if any (what compileSpecForGpu builds with options.seqDispatch).
std::optional<SeqDispatchPlan> seqDispatchPlan(const Spec &spec, const std::string &chip);

/// Compiles one spec to `outDir/<name>.ptx` (and `.cubin`) plus the manifest
/// `outDir/<name>.json`, each written atomically, and fills `manifest` as
/// readManifest would (spec included). Softmax kernels always return LSE.
/// With options.seqDispatch and a seqDispatchPlan, the default kernel takes
/// the plan's base options and each variant is compiled too, as
/// `<name>_sk<N>`, listed in the manifest's dispatch.
/// Errors name the stage that failed.
bool compileSpecForGpu(const Spec &spec, const std::string &specPath,
                       const GpuCompileOptions &options, const std::string &outDir,
                       KernelManifest &manifest, PtxasReport &report,
                       std::string &error);

/// One tuning candidate of a spec: its tag, the options it is compiled with
/// and those options as JSON (what the manifest's "tuning.options" records).
struct TuningCandidateOptions {
  std::string tag;
  GpuCompileOptions options;
  std::string optionsJson;
};

/// The candidate set of `spec` on `base.chip` (other fields of `base` are
/// kept; the tuned ones are overridden). Hopper kernel (sm_90a, f16/bf16
/// softmax, head dims 64/128): block_k 128/64 x ping-pong on/off x persistent
/// off/on; mma.sync kernel (its tile is fixed at 64 x 32): cp.async on/off;
/// chunkwise linear kernel: next-chunk prefetch off/on; SIMT kernel: the
/// heuristic tiles, half the query rows, twice the keys where shared memory
/// allows; others: the default only.
std::vector<TuningCandidateOptions> tuningCandidates(const Spec &spec,
                                                     const GpuCompileOptions &base);

/// The tuning group of `spec` compiled for `chip` by this compiler: the
/// first 16 hex digits of SHA-256(canonical spec, compiler version, chip).
std::string tuningGroupId(const Spec &spec, const std::string &chip);

struct TuningCandidateResult {
  std::string tag;
  std::string manifestPath; ///< empty when skipped
  std::string skipped;      ///< why the candidate was left out (spills, same PTX, ...)
  PtxasReport report;
};

/// Compiles every candidate of `spec` into outDir/<spec name>/<tag>/ (its
/// PTX, manifest with the "tuning" key, and cubin with base.cubin). ptxas
/// always runs: a candidate that spills or has a stack frame is skipped and
/// its directory removed, as is one whose PTX equals an earlier candidate's
/// (the option made no difference) or that fails to compile. Stale candidate
/// directories of the spec are removed first. Fails when none remains.
bool compileTuningCandidates(const Spec &spec, const std::string &specPath,
                             const GpuCompileOptions &base, const std::string &outDir,
                             std::vector<TuningCandidateResult> &results, std::string &error);

/// The compiler's version string with a fingerprint of its sources (part of
/// cache keys and manifests: another build never reuses this one's kernels).
const char *compilerVersion();

} // namespace attn

#endif // ATTN_TARGET_GPUCOMPILER_H
