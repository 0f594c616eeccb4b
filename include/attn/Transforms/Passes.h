//===- Passes.h - attn passes -----------------------------------*- C++ -*-===//
#ifndef ATTN_TRANSFORMS_PASSES_H
#define ATTN_TRANSFORMS_PASSES_H

#include "attn/IR/AttnOps.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Pass/Pass.h"

namespace attn {

#define GEN_PASS_DECL
#include "attn/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "attn/Transforms/Passes.h.inc"

/// Registers the attn passes and the named pipelines (attn-cpu-pipeline).
void registerAttnPipelines();

/// The CPU pipeline: attn ops -> tiled loops -> LLVM dialect, ready for the
/// ExecutionEngine. Functions get the C interface (_mlir_ciface_<name>).
mlir::LogicalResult buildCpuPipeline(mlir::OpPassManager &pm);

/// Whether the mma.sync softmax kernel (f16 / bf16) covers these head dims:
/// the lowering builds it only then (the SIMT kernel otherwise), and the GPU
/// compiler chooses tiles for whichever kernel will be built.
bool mmaSyncSoftmaxSupports(int64_t headDim, int64_t headDimV);

/// The largest head dim (of queries / keys, or of values) any GPU kernel
/// takes: past 256 only the SIMT kernels, which hold a row's operands in
/// registers, fully unrolled.
constexpr int64_t kMaxGpuHeadDim = 512;

} // namespace attn

#endif // ATTN_TRANSFORMS_PASSES_H
