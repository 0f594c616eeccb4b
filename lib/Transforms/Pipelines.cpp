//===- Pipelines.cpp - named pass pipelines -------------------------------===//
//
// The stage list of the CPU path in one readable place. The GPU pipeline will
// share everything up to the tiled form.
//
//===----------------------------------------------------------------------===//

#include "attn/Transforms/CompilerContext.h"
#include "attn/Transforms/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"


using namespace mlir;

namespace attn {

/// attn ops -> tiled loops (target independent).
static constexpr const char *kTilingStages =
    "attn-normalize-masks,attn-plan-tiles,attn-tile-softmax,attn-tile-linear";

/// tiled loops -> LLVM dialect on the host.
static constexpr const char *kCpuStages =
    "attn-lower-tile-ops,func.func(convert-linalg-to-loops),lower-affine,"
    "convert-scf-to-cf,expand-strided-metadata,lower-affine,"
    "finalize-memref-to-llvm,convert-math-to-llvm,convert-math-to-libm,"
    "convert-arith-to-llvm,convert-index-to-llvm,convert-func-to-llvm,"
    "convert-cf-to-llvm,reconcile-unrealized-casts";

LogicalResult buildCpuPipeline(OpPassManager &pm) {
  // The textual pipeline names passes; make sure they are registered even
  // when the caller is a library user rather than attn-opt.
  ensurePassesRegistered();
  std::string pipeline = std::string(kTilingStages) + "," + kCpuStages;
  return parsePassPipeline(pipeline, pm, llvm::errs());
}

void registerAttnPipelines() {
  registerAttnPasses();
  PassPipelineRegistration<>("attn-tile",
                             "attn ops to the target-independent tiled form",
                             [](OpPassManager &pm) {
                               (void)parsePassPipeline(kTilingStages, pm);
                             });
  PassPipelineRegistration<>("attn-cpu-pipeline",
                             "attn ops to the LLVM dialect for host execution",
                             [](OpPassManager &pm) { (void)buildCpuPipeline(pm); });
}

} // namespace attn
