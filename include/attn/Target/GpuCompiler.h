//===- GpuCompiler.h - spec -> PTX (+ cubin) + manifest ---------*- C++ -*-===//
#ifndef ATTN_TARGET_GPUCOMPILER_H
#define ATTN_TARGET_GPUCOMPILER_H

#include "attn/Runtime/Manifest.h"
#include "attn/Spec/Spec.h"

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
  bool pingPong = true;           ///< Hopper kernel: consumer warpgroups take turns
  bool persistent = false;        ///< Hopper kernel: one block per SM over the work items
  bool lazyRescale = true;        ///< Hopper kernel: rescale O only when a max grows past 2^8
  bool chunkedLinear = true;      ///< linear kinds: chunkwise tensor-core kernel
  bool chunkedLinearPrefetch = true; ///< chunkwise kernel: cp.async next-chunk prefetch
  bool failOnSpills = false;      ///< with cubin: any spill or stack frame is an error
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
  std::string log;
};

/// Compiles one spec to `outDir/<name>.ptx` (and `.cubin`) plus the manifest
/// `outDir/<name>.json`, each written atomically, and fills `manifest` as
/// readManifest would (spec included). Softmax kernels always return LSE.
/// Errors name the stage that failed.
bool compileSpecForGpu(const Spec &spec, const std::string &specPath,
                       const GpuCompileOptions &options, const std::string &outDir,
                       KernelManifest &manifest, PtxasReport &report,
                       std::string &error);

/// The compiler's version string with a fingerprint of its sources (part of
/// cache keys and manifests: another build never reuses this one's kernels).
const char *compilerVersion();

} // namespace attn

#endif // ATTN_TARGET_GPUCOMPILER_H
