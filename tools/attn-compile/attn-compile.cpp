//===- attn-compile.cpp - specs -> GPU kernels with manifests -------------===//
//
//   attn-compile SPEC.json... -o DIR [--chip sm_90a|sm_80] [--cubin]
//                [--fail-on-spills] [--block-q N] [--block-k N] [--tensor-cores=false]
//                [--tune-candidates]
//
// Writes DIR/<name>.ptx, DIR/<name>.cubin (--cubin, through ptxas) and the
// manifest DIR/<name>.json for each spec. With --tune-candidates, one kernel
// per tuning candidate instead: DIR/<name>/<candidate>/<name>.{ptx,json,cubin}
// (see GpuCompiler.h: tuningCandidates). Exit status 1 on any failure.
//
//===----------------------------------------------------------------------===//

#include "attn/Target/GpuCompiler.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/ThreadPool.h"
#include "llvm/Support/Threading.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>

using namespace llvm;

// --help lists these three categories only: the LLVM and MLIR options linked
// into the tool stay reachable (--help-hidden lists them) but out of the way.
static cl::OptionCategory generalOptions("Compile options");
static cl::OptionCategory softmaxKernelOptions(
    "Softmax kernel shape (defaults come from the heuristic; for experiments and tuning)");
static cl::OptionCategory linearKernelOptions(
    "Linear kernel shape (defaults come from the heuristic; for experiments)");

static cl::list<std::string> specs(cl::Positional, cl::OneOrMore, cl::desc("<spec.json>..."),
                                   cl::cat(generalOptions));
static cl::opt<std::string> outDir("o", cl::Required, cl::desc("Output directory"),
                                   cl::value_desc("dir"), cl::cat(generalOptions));
static cl::opt<std::string> chip("chip", cl::init("sm_90a"),
                                 cl::desc("Target chip: sm_80 or sm_90a"), cl::cat(generalOptions));
static cl::opt<bool> cubin("cubin", cl::desc("Also assemble a cubin with ptxas"),
                           cl::cat(generalOptions));
static cl::opt<bool> failOnSpills("fail-on-spills",
                                  cl::desc("With --cubin: fail on any spill or stack frame"),
                                  cl::cat(generalOptions));
static cl::opt<int64_t> blockQ("block-q", cl::init(0), cl::desc("Query tile rows (0: heuristic)"),
                               cl::cat(softmaxKernelOptions));
static cl::opt<int64_t> blockK("block-k", cl::init(0), cl::desc("Key tile length (0: heuristic)"),
                               cl::cat(softmaxKernelOptions));
static cl::opt<bool> quiet("q", cl::desc("Print nothing on success"), cl::cat(generalOptions));
static cl::opt<std::string>
    header("header",
           cl::desc("Also write a C header with one launch function per kernel "
                    "(over attn_runtime.h) to this file"),
           cl::value_desc("file.h"), cl::init(""), cl::cat(generalOptions));
static cl::opt<unsigned> jobs("j", cl::init(0),
                              cl::desc("Compile this many specs at once (0: one per core)"),
                              cl::cat(generalOptions));
static cl::opt<bool> cpAsync("cp-async", cl::init(true),
                             cl::desc("mma.sync kernel: double-buffer K/V with cp.async (default; "
                                      "--cp-async=false loads them synchronously)"),
                             cl::cat(softmaxKernelOptions));
static cl::opt<bool>
    pingPong("ping-pong", cl::init(true),
             cl::desc("Hopper kernel: consumer warpgroups take turns issuing their products "
                      "(default: on for 128-row tiles, off for 192-row ones; "
                      "--ping-pong=false lets them run freely)"),
             cl::cat(softmaxKernelOptions));
static cl::opt<bool>
    persistent("persistent", cl::init(false),
               cl::desc("Hopper kernel: one block per SM loops over the (q tile, head, batch) work "
                        "items, longest first (default: on where the heuristic measured it faster, "
                        "see the manifest's launch.persistent_blocks_per_sm; =false for the "
                        "one-item grid)"),
               cl::cat(softmaxKernelOptions));
static cl::opt<bool>
    lazyRescale("lazy-rescale", cl::init(true),
                cl::desc("Hopper kernel: rescale O only when a row's max grows past a headroom of "
                         "2^8 (default; --lazy-rescale=false rescales on every tile)"),
                cl::cat(softmaxKernelOptions));
static cl::opt<int64_t>
    polyExp2("poly-exp2", cl::init(0),
             cl::desc("Hopper kernel: take the softmax weights of N elements in every 8 with a "
                      "polynomial on the FMA pipe instead of MUFU.EX2 (FlashAttention-4), 0-8 "
                      "(default: the heuristic)"),
             cl::cat(softmaxKernelOptions));
static cl::opt<int64_t>
    kvStages("kv-stages", cl::init(2),
             cl::desc("Hopper kernel: K/V pipeline stages, 2-4 (default 2; fewer where they "
                      "would not fit the shared memory)"),
             cl::cat(softmaxKernelOptions));
static cl::opt<bool>
    itemOverlap("item-overlap", cl::init(false),
                cl::desc("Hopper persistent kernel: issue an item's last P V with the next item's "
                         "first S = Q K^T and write its output before that tile's softmax "
                         "(experimental: measured 2-5% slower at head dim 64; spills at 128)"),
                cl::cat(softmaxKernelOptions));
static cl::opt<bool> dynamicScheduler(
    "dynamic-scheduler", cl::init(false),
    cl::desc("Hopper kernel: persistent blocks that take each next work item from a "
             "global counter (manifest role tile_counter, zeroed by the runtime before "
             "every launch) instead of a static order (default: on for plain causal masks "
             "and documents at head dim 128; --dynamic-scheduler=false for the static "
             "order / one-item grid)"),
    cl::cat(softmaxKernelOptions));
static cl::opt<bool> seqDispatch(
    "seq-dispatch", cl::init(true),
    cl::desc("Kernels per sequence length where the heuristic has a plan (sm_90a: "
             "block-sparse of whole tiles at head dim 128 gets the one-item grid with 3 K/V "
             "stages for Sk >= 16384; plain causal at head dim 64 the dynamic scheduler from "
             "Sk = 4096; documents at head dim 128 the tile summary and item order from "
             "Sk = 16384): the variants go "
             "to <name>_sk<N>.json, listed under the manifest's \"dispatch\", and the "
             "runtime picks one per launch (default; off with explicit tiles, "
             "--persistent, --dynamic-scheduler, --kv-stages or a tuning group; "
             "=false: one kernel)"),
    cl::cat(softmaxKernelOptions));
static cl::opt<bool>
    fastTanh("fast-tanh", cl::init(true),
             cl::desc("tanh (soft-cap, score_mod) as one tanh.approx.f32 (MUFU.TANH, relative "
                      "error <= 2^-10.99) (default; --fast-tanh=false for libdevice's tanhf)"),
             cl::cat(softmaxKernelOptions));
static cl::opt<bool>
    documentTiles("document-tiles", cl::init(true),
                  cl::desc("Hopper kernel: classify k tiles from the document ids at run time "
                           "(default; --document-tiles=false masks every tile element by element)"),
                  cl::cat(softmaxKernelOptions));
static cl::opt<bool> documentIdsInShared(
    "document-ids-in-shared", cl::init(true),
    cl::desc("Hopper kernel with --document-tiles: the producer stages each live k tile's "
             "key document ids in shared memory with its K, where the masked softmax reads "
             "them (default; =false: the softmax loads them from global memory)"),
    cl::cat(softmaxKernelOptions));
static cl::opt<bool> documentTileSummary(
    "document-tile-summary", cl::init(false),
    cl::desc("Persistent Hopper kernel with --document-tiles: every block first "
             "summarizes each k tile's key document ids as [min, max] in shared memory "
             "and, from it, each q tile's first k tile whose range meets the q tile's "
             "(when batch x tiles fit), where each item's walk starts (default: with "
             "--seq-dispatch, a kernel with it for Sk >= 16384; =false: the walk starts "
             "at the first k tile)"),
    cl::cat(softmaxKernelOptions));
static cl::opt<unsigned> documentTileSummaryEntries(
    "document-tile-summary-entries", cl::init(2048), cl::Hidden,
    cl::desc("With --document-tile-summary: at most this many entries (batch x k tiles, "
             "batch x q tiles; more at run time: the walk from the first tile). For tests "
             "of that fallback"),
    cl::cat(softmaxKernelOptions));
static cl::opt<unsigned> documentTileSummaryUnroll(
    "document-tile-summary-unroll", cl::init(2), cl::Hidden,
    cl::desc("With --document-tile-summary: entries each consumer warp computes per round "
             "of loads at block start (2; for same-call comparisons)"),
    cl::cat(softmaxKernelOptions));
static cl::opt<bool> stagedOutputStore(
    "staged-output-store", cl::init(true),
    cl::desc("Hopper kernel: each consumer warp stages its rows of O in shared memory and "
             "stores whole rows, 16 bytes a lane (default; =false: 4-byte pairs straight from "
             "the accumulator fragments, 8 rows a warp store)"),
    cl::cat(softmaxKernelOptions));
static cl::opt<bool> earlyOutputRelease(
    "early-output-release", cl::init(false),
    cl::desc("Hopper kernel with --staged-output-store: each warp reads all its staged rows "
             "of O back, hands the item's Q buffer to the producer, then issues its global "
             "stores (experimental; for A/Bs)"),
    cl::cat(softmaxKernelOptions));
static cl::opt<bool> documentItemOrder(
    "document-item-order", cl::init(true),
    cl::desc("Persistent Hopper kernel with document ids: rank each batch's q tiles by their "
             "estimated live k tiles at block start and run every pair's longer half of q "
             "tiles first, longest first (=false: q tiles in descending order; unset: with "
             "--seq-dispatch the kernel for Sk >= 16384 has it, a single kernel has it)"),
    cl::cat(softmaxKernelOptions));
static cl::opt<bool> crossHeadTiles(
    "cross-head-tiles", cl::init(false),
    cl::desc("Persistent Hopper kernel where the k tiles do not depend on the q tile "
             "(dense): the query rows of every (batch, head) as one sequence of 64-row "
             "slices, an item one slice per consumer warpgroup across head boundaries, so "
             "that 192-row tiles compute no rows of zeros past a sequence end"),
    cl::cat(softmaxKernelOptions));
static cl::opt<bool> halfDiagonalKeys(
    "half-diagonal-keys", cl::init(false),
    cl::desc("Hopper kernel under a causal or window bound with 128-key tiles: on an item's "
             "last (diagonal) key tile, a consumer warpgroup whose rows see only the tile's "
             "first 64 keys computes S with N = 64 and P V with half the k steps (unset: on "
             "for plain causal attention; where it spills, rebuilt without)"),
    cl::cat(softmaxKernelOptions));
static cl::opt<bool> uniformWarpgroupIndex(
    "uniform-warpgroup-index", cl::init(true),
    cl::desc("Hopper kernel: broadcast each consumer warpgroup's index from lane 0 so that "
             "ptxas keeps the wgmma descriptors derived from it in uniform registers "
             "(default; where it spills, the kernel is rebuilt without it first)"),
    cl::cat(softmaxKernelOptions));
static cl::opt<unsigned> documentItemOrderEntries(
    "document-item-order-entries", cl::init(2048), cl::Hidden,
    cl::desc("With --document-item-order: at most this many entries (batch x q tiles, batch "
             "x k tiles; more at run time: the q-tile-descending order). For tests of that "
             "fallback"),
    cl::cat(softmaxKernelOptions));
static cl::opt<unsigned> documentItemOrderPhases(
    "document-item-order-phases", cl::init(2),
    cl::desc("With --document-item-order: 2 (every pair's longer half of q tiles first, each "
             "phase in the L2 groups' order; default) or 1 (longest first inside each L2 group "
             "only, each group's K / V read once)"),
    cl::cat(softmaxKernelOptions));
static cl::opt<bool> chunkedLinear(
    "chunked-linear", cl::init(true),
    cl::desc("Linear kinds: the chunkwise tensor-core kernel (mma.sync) for f16/bf16, "
             "head dims 64/128 (default; --chunked-linear=false for the recurrent kernel)"),
    cl::cat(linearKernelOptions));
static cl::opt<bool> chunkedLinearPrefetch(
    "chunked-linear-prefetch", cl::init(true),
    cl::desc("Chunkwise linear kernel: double-buffer Q/K/V and fetch the next chunk "
             "with cp.async while this one is computed, where two blocks still fit "
             "an SM (default; --chunked-linear-prefetch=false stages synchronously)"),
    cl::cat(linearKernelOptions));
static cl::opt<bool> chunkedLinearWgmma(
    "chunked-linear-wgmma", cl::init(true),
    cl::desc("Chunkwise linear kernel on sm_90a: wgmma + TMA + mbarrier with a producer "
             "warp, for no / scalar / head-constant gates, identity feature map, no "
             "normalizer (default; --chunked-linear-wgmma=false for the mma.sync kernel; "
             "other chips and cases unchanged)"),
    cl::cat(linearKernelOptions));
static cl::opt<bool> chunkedLinearWgmmaOverlap(
    "chunked-linear-wgmma-overlap", cl::init(false),
    cl::desc("With --chunked-linear-wgmma: issue the next chunk's Q K^T before this "
             "chunk's output and state are written out (experimental)"),
    cl::cat(linearKernelOptions));
static cl::opt<bool> chunkedLinearWgmmaVector(
    "chunked-linear-wgmma-vector", cl::init(true),
    cl::desc("With --chunked-linear-wgmma: the wgmma chunkwise kernel also for vector "
             "gates (GLA; default; 1 block per SM at Dk = 128; =false for the mma.sync "
             "kernel)"),
    cl::cat(linearKernelOptions));
static cl::opt<bool> chunkedLinearProducerDiagonal(
    "chunked-linear-producer-diagonal", cl::init(false),
    cl::desc("With --chunked-linear-wgmma-vector at Dk = 128: the producer warpgroup "
             "computes the 8 x 8 diagonal triangles of A a chunk ahead of the consumer "
             "(experimental)"),
    cl::cat(linearKernelOptions));
static cl::opt<bool> chunkedLinearTwoConsumers(
    "chunked-linear-two-consumers", cl::init(true),
    cl::desc("With --chunked-linear-wgmma-vector at Dk = Dv = 128: one block per (batch, "
             "head) with two consumer warpgroups, one per 64-column value half, that "
             "share the intra-chunk A (default; =false for one block per value half)"),
    cl::cat(linearKernelOptions));
static cl::opt<bool> chunkedLinearSplitState(
    "chunked-linear-split-state", cl::init(true),
    cl::desc("With --chunked-linear-wgmma, for no / scalar / head-constant gates: one "
             "block per (batch, head) with the state recurrence on its own warpgroup "
             "and the chunk outputs on two more (default; =false for one block per "
             "64 value columns with one consumer warpgroup)"),
    cl::cat(linearKernelOptions));
static cl::opt<bool> chunkedLinearProducerKScale(
    "chunked-linear-producer-k-scale", cl::init(false),
    cl::desc("With --chunked-linear-split-state and gates: the producer warpgroup's idle "
             "warps scale K for the state update a chunk ahead (experimental)"),
    cl::cat(linearKernelOptions));
static cl::opt<bool>
    timeStages("time-stages",
               cl::desc("Print where each spec's compile time went (stages, wall and CPU "
                        "seconds, and MLIR's pass timing) to stderr"),
               cl::cat(generalOptions));
static cl::opt<bool> upstreamNvvmPipeline(
    "upstream-nvvm-pipeline", cl::Hidden,
    cl::desc("Lower with upstream's gpu-lower-to-nvvm-pipeline as one pass (testing: "
             "the PTX must be byte-identical to the default)"),
    cl::cat(generalOptions));
static cl::opt<bool> tuneCandidates(
    "tune-candidates",
    cl::desc("Write every legal tuning candidate of each spec (tile sizes and kernel-shape "
             "flags) to DIR/<name>/<candidate>/, skipping candidates that spill, for "
             "attn_tune / attn-exec --tune to choose from on the GPU"),
    cl::cat(generalOptions));
static cl::opt<bool>
    tensorCores("tensor-cores", cl::init(true),
                cl::desc("Use the mma.sync kernel for f16/bf16 softmax attention (default; "
                         "--tensor-cores=false for the SIMT kernel)"),
                cl::cat(softmaxKernelOptions));

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions({&generalOptions, &softmaxKernelOptions, &linearKernelOptions});
  cl::ParseCommandLineOptions(argc, argv, "attn GPU kernel compiler\n");
  if (tuneCandidates && (blockQ > 0 || blockK > 0)) {
    errs() << "attn-compile: error: --tune-candidates chooses the tile sizes: drop "
              "--block-q/--block-k\n";
    return 1;
  }
  if (tuneCandidates && !header.empty()) {
    errs() << "attn-compile: error: --header describes one kernel per spec; it does not "
              "combine with --tune-candidates\n";
    return 1;
  }
  attn::GpuCompileOptions options;
  options.chip = chip;
  options.cubin = cubin;
  options.failOnSpills = failOnSpills;
  options.blockQ = blockQ;
  options.blockK = blockK;
  options.tensorCores = tensorCores;
  options.cpAsync = cpAsync;
  options.documentTiles = documentTiles;
  options.documentIdsInShared = documentIdsInShared;
  if (documentTileSummary.getNumOccurrences())
    options.documentTileSummary = documentTileSummary;
  options.documentTileSummaryEntries = documentTileSummaryEntries;
  options.documentTileSummaryUnroll = documentTileSummaryUnroll;
  options.stagedOutputStore = stagedOutputStore;
  options.earlyOutputRelease = earlyOutputRelease;
  if (documentItemOrder.getNumOccurrences())
    options.documentItemOrder = documentItemOrder;
  options.documentItemOrderEntries = documentItemOrderEntries;
  if (crossHeadTiles.getNumOccurrences())
    options.crossHeadTiles = crossHeadTiles;
  if (halfDiagonalKeys.getNumOccurrences())
    options.halfDiagonalKeys = halfDiagonalKeys;
  options.uniformWarpgroupIndex = uniformWarpgroupIndex;
  options.documentItemOrderPhases = documentItemOrderPhases;
  options.fastTanh = fastTanh;
  if (pingPong.getNumOccurrences())
    options.pingPong = pingPong;
  options.lazyRescale = lazyRescale;
  if (itemOverlap.getNumOccurrences())
    options.itemOverlap = itemOverlap;
  if (dynamicScheduler.getNumOccurrences())
    options.dynamicScheduler = dynamicScheduler;
  options.seqDispatch = seqDispatch;
  if (dynamicScheduler && persistent.getNumOccurrences() && !persistent) {
    llvm::errs() << "attn-compile: error: --dynamic-scheduler needs persistent blocks (it "
                    "schedules their work items); drop --persistent=false\n";
    return 1;
  }
  if (chunkedLinearProducerDiagonal && (!chunkedLinearWgmmaVector || !chunkedLinearWgmma)) {
    llvm::errs() << "attn-compile: error: --chunked-linear-producer-diagonal is part of the "
                    "wgmma kernel for vector gates; drop --chunked-linear-wgmma=false / "
                    "--chunked-linear-wgmma-vector=false\n";
    return 1;
  }
  // The two-consumer kernel is the default; asked for by name, it must apply.
  bool twoConsumersAsked =
      chunkedLinearTwoConsumers.getNumOccurrences() && chunkedLinearTwoConsumers;
  if (twoConsumersAsked && (!chunkedLinearWgmmaVector || !chunkedLinearWgmma)) {
    llvm::errs() << "attn-compile: error: --chunked-linear-two-consumers is part of the "
                    "wgmma kernel for vector gates; drop --chunked-linear-wgmma=false / "
                    "--chunked-linear-wgmma-vector=false\n";
    return 1;
  }
  if (twoConsumersAsked && chunkedLinearProducerDiagonal) {
    llvm::errs() << "attn-compile: error: --chunked-linear-two-consumers and "
                    "--chunked-linear-producer-diagonal are two shapes of the GLA kernel; "
                    "choose one\n";
    return 1;
  }
  // The split-state kernel is the default; asked for by name, it must apply.
  if (chunkedLinearSplitState.getNumOccurrences() && chunkedLinearSplitState &&
      !chunkedLinearWgmma) {
    llvm::errs() << "attn-compile: error: --chunked-linear-split-state is a shape of the "
                    "wgmma chunkwise kernel; drop --chunked-linear-wgmma=false\n";
    return 1;
  }
  if (chunkedLinearProducerKScale && (!chunkedLinearSplitState || !chunkedLinearWgmma)) {
    llvm::errs() << "attn-compile: error: --chunked-linear-producer-k-scale is part of the "
                    "split-state kernel; drop --chunked-linear-split-state=false / "
                    "--chunked-linear-wgmma=false\n";
    return 1;
  }
  if (polyExp2.getNumOccurrences()) {
    if (polyExp2 < 0 || polyExp2 > 8) {
      llvm::errs() << "attn-compile: error: --poly-exp2=" << polyExp2
                   << ": expected 0 to 8 (elements in every 8)\n";
      return 1;
    }
    options.polyExp2Eighths = polyExp2;
  }
  if (kvStages.getNumOccurrences()) {
    if (kvStages < 2 || kvStages > 4) {
      llvm::errs() << "attn-compile: error: --kv-stages=" << kvStages << ": expected 2 to 4\n";
      return 1;
    }
    options.kvStages = kvStages;
  }
  if (persistent.getNumOccurrences())
    options.persistent = persistent;
  options.chunkedLinear = chunkedLinear;
  options.chunkedLinearPrefetch = chunkedLinearPrefetch;
  options.chunkedLinearWgmma = chunkedLinearWgmma;
  options.chunkedLinearWgmmaOverlap = chunkedLinearWgmmaOverlap;
  options.chunkedLinearWgmmaVector = chunkedLinearWgmmaVector;
  options.chunkedLinearProducerDiagonal = chunkedLinearProducerDiagonal;
  // The producer diagonal is a shape of the one-consumer kernel.
  options.chunkedLinearTwoConsumers = chunkedLinearTwoConsumers && !chunkedLinearProducerDiagonal;
  options.chunkedLinearSplitState = chunkedLinearSplitState;
  options.chunkedLinearProducerKScale = chunkedLinearProducerKScale;
  options.upstreamNvvmPipeline = upstreamNvvmPipeline;
  // One MLIR context per spec, so specs compile independently in parallel.
  // Results are printed in the order given, whatever order they finish in.
  struct Result {
    bool ok = false;
    std::string text;
    std::string name, kind, dtype;
    std::vector<std::string> roles;
    std::string timing;
    std::string note; // on stderr, even with -q: an explicit flag that did not apply
  };
  std::vector<Result> results(specs.size());
  std::atomic<unsigned> done{0};
  std::mutex progressMutex;
  bool progress = !quiet && specs.size() > 1 && llvm::sys::Process::StandardErrIsDisplayed();
  auto compileOne = [&](size_t index) {
    const std::string &path = specs[index];
    Result &result = results[index];
    attn::Spec spec;
    std::string error;
    auto start = std::chrono::steady_clock::now();
    attn::KernelManifest manifest;
    attn::PtxasReport report;
    attn::CompileTimings timings;
    attn::GpuCompileOptions specOptions = options;
    if (timeStages)
      specOptions.timings = &timings;
    bool parsed = attn::parseSpecFile(path, spec, error);
    double parseMs = std::chrono::duration<double, std::milli>(
                         std::chrono::steady_clock::now() - start).count();
    if (parsed && tuneCandidates) {
      std::vector<attn::TuningCandidateResult> candidates;
      bool ok = attn::compileTuningCandidates(spec, path, specOptions, outDir, candidates, error);
      llvm::raw_string_ostream os(result.text);
      if (!ok) {
        os << "attn-compile: error: " << error << "\n";
      } else {
        size_t kept = 0;
        for (const auto &c : candidates)
          kept += !c.manifestPath.empty();
        double ms = std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - start).count();
        os << spec.name << ": " << options.chip << ", tuning group "
           << attn::tuningGroupId(spec, options.chip) << ", " << kept << " of "
           << candidates.size() << " candidates, " << llvm::format("%.0f", ms) << " ms\n";
        for (const auto &c : candidates) {
          os << "  " << c.tag << ": ";
          if (!c.manifestPath.empty())
            os << c.report.registers << " registers, " << c.report.stackFrameBytes
               << " B stack, " << c.report.spillStoreBytes << " B spills -> "
               << c.manifestPath << "\n";
          else
            os << "skipped: " << c.skipped << "\n";
        }
      }
      result.ok = ok;
    } else if (!parsed ||
        !attn::compileSpecForGpu(spec, path, specOptions, outDir, manifest, report, error)) {
      result.text = "attn-compile: error: " + error + "\n";
    } else {
      double ms = std::chrono::duration<double, std::milli>(
                      std::chrono::steady_clock::now() - start).count();
      llvm::raw_string_ostream os(result.text);
      os << spec.name << ": " << options.chip << ", block " << manifest.block[0];
      if (report.ran)
        os << ", " << report.registers << " registers, " << report.stackFrameBytes
           << " B stack, " << report.spillStoreBytes << " B spills, "
           << report.sharedMemoryBytes << " B smem";
      // The kernel and tile the compiler settled on: a spill fallback (to
      // 64-key tiles, say) shows here, not only in the manifest.
      os << ", " << report.kernel;
      if (spec.kind == attn::VariantKind::Attention)
        os << " " << report.blockQ << "x" << report.blockK;
      if (manifest.persistentBlocksPerSm > 0)
        os << " persistent";
      if (llvm::is_contained(manifest.argumentRoles, attn::kTileCounterRole))
        os << " dynamic";
      if (report.crossHeadTiles)
        os << " cross-head";
      if (report.halfDiagonalKeys)
        os << " half-diagonal";
      for (const attn::KernelManifest::SeqVariant &v : manifest.dispatch)
        os << ", Sk >= " << v.minSeqK << ": " << v.manifest;
      os << ", " << llvm::format("%.0f", ms) << " ms\n";
      result.ok = true;
      // An explicit --cross-head-tiles that the spec cannot take is compiled
      // without (as the pass ignores it), but the user asked for it: say so.
      if (crossHeadTiles.getNumOccurrences() && crossHeadTiles &&
          spec.kind == attn::VariantKind::Attention && !report.crossHeadTiles)
        result.note = "attn-compile: note: " + spec.name +
                      ": --cross-head-tiles does not apply (it needs the persistent Hopper "
                      "kernel, key tiles that do not depend on the query tile: no causal or "
                      "window bound, block layout or document ids, and head dim 64); "
                      "compiled without it\n";
      // ptxas serialized the wgmma instructions: correct, but much slower,
      // and said only among ptxas's infos.
      if (report.wgmmaSerialized)
        result.note += "attn-compile: warning: " + spec.name +
                       ": ptxas serialized the kernel's wgmma instructions (" +
                       report.wgmmaSerializedWhy + "); it runs correctly but slower\n";
      if (halfDiagonalKeys.getNumOccurrences() && halfDiagonalKeys &&
          spec.kind == attn::VariantKind::Attention && !report.halfDiagonalKeys)
        result.note += "attn-compile: note: " + spec.name +
                       ": --half-diagonal-keys does not apply (it needs the Hopper kernel with "
                       "128-key tiles under a causal or window bound, no block layout or "
                       "document ids, and no spills with it); compiled without it\n";
      result.name = spec.name;
      result.kind = attn::variantKindName(spec.kind);
      result.dtype = attn::elementTypeName(spec.dtype);
      result.roles = manifest.argumentRoles;
    }
    if (timeStages) {
      llvm::raw_string_ostream os(result.timing);
      os << "== " << path << ": stage, wall ms, cpu ms\n";
      os << llvm::format("  %-44s %8.1f\n", "parse spec", parseMs);
      double wall = parseMs, cpu = 0;
      for (const auto &s : timings.stages) {
        os << llvm::format("  %-44s %8.1f %8.1f\n", s.name.c_str(), s.wallSeconds * 1e3,
                           s.cpuSeconds * 1e3);
        wall += s.wallSeconds * 1e3;
        cpu += s.cpuSeconds * 1e3;
      }
      os << llvm::format("  %-44s %8.1f %8.1f\n", "sum", wall, cpu);
      os << timings.passReport;
    }
    unsigned finished = ++done;
    if (progress) {
      std::lock_guard<std::mutex> lock(progressMutex);
      errs() << "\r[" << finished << "/" << specs.size() << "] " << path << "\x1b[K";
      if (finished == specs.size())
        errs() << "\r\x1b[K";
    }
  };
  unsigned threads = jobs ? unsigned(jobs) : llvm::hardware_concurrency().compute_thread_count();
  if (threads <= 1 || specs.size() == 1) {
    for (size_t i = 0; i < specs.size(); ++i)
      compileOne(i);
  } else {
    llvm::DefaultThreadPool pool(llvm::hardware_concurrency(threads));
    for (size_t i = 0; i < specs.size(); ++i)
      pool.async([&, i] { compileOne(i); });
    pool.wait();
  }
  if (!header.empty()) {
    std::string text =
        "/* Generated by attn-compile: one launch function per kernel compiled into\n"
        " * " + outDir + ". Load each kernel once with attn_kernel_load(<manifest>)\n"
        " * and launch it with its function; see attn/attn_runtime.h. */\n"
        "#ifndef ATTN_GENERATED_KERNELS_H\n#define ATTN_GENERATED_KERNELS_H\n\n"
        "#include \"attn/attn_runtime.h\"\n\n";
    for (const Result &r : results) {
      if (!r.ok)
        continue;
      std::string upper = StringRef(r.name).upper();
      text += "/* " + r.name + ": " + r.kind + ", " + r.dtype + " */\n";
      text += "#define ATTN_KERNEL_" + upper + "_MANIFEST \"" + r.name + ".json\"\n";
      text += "static inline attn_status attn_launch_" + r.name + "(attn_kernel *kernel";
      std::vector<std::string> params;
      for (const std::string &role : r.roles) {
        // The dynamic scheduler's counter is the runtime's (one per stream,
        // zeroed before each launch): not a parameter.
        if (role == attn::kTileCounterRole)
          continue;
        std::string p = role;
        std::replace(p.begin(), p.end(), ':', '_');
        params.push_back(p);
        text += ",\n    const attn_tensor *" + p;
      }
      text += ",\n    void *stream, char *err, size_t err_len) {\n  attn_tensor args[" +
              std::to_string(params.size()) + "] = {";
      for (size_t i = 0; i < params.size(); ++i)
        text += (i ? ", *" : "*") + params[i];
      text += "};\n  return attn_kernel_launch(kernel, args, " + std::to_string(params.size()) +
              ", stream, err, err_len);\n}\n\n";
    }
    text += "#endif /* ATTN_GENERATED_KERNELS_H */\n";
    std::error_code ec;
    {
      raw_fd_ostream os(header + ".tmp", ec);
      if (!ec)
        os << text;
    }
    if (ec || llvm::sys::fs::rename(header + ".tmp", header)) {
      errs() << "attn-compile: error: cannot write " << header << "\n";
      return 1;
    }
  }

  int failures = 0;
  for (const Result &r : results) {
    errs() << r.timing << r.note;
    if (!r.ok) {
      errs() << r.text;
      ++failures;
    } else if (!quiet) {
      outs() << r.text;
    }
  }
  return failures ? 1 : 0;
}
