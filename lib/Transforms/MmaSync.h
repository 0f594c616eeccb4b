//===- MmaSync.h - ldmatrix and mma.sync m16n8k16 on fragments -------------===//
//
// The sm_80 tensor-core building blocks shared by the mma.sync kernels (the
// softmax kernel and the chunkwise linear kernel): ldmatrix operand loads and
// the m16n8k16 product with f32 accumulation. Packing and lane reductions
// come from FragmentBuilder; the fragment layouts are in FragmentSoftmax.h.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_LIB_TRANSFORMS_MMASYNC_H
#define ATTN_LIB_TRANSFORMS_MMASYNC_H

#include "FragmentSoftmax.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"

namespace attn {

class MmaSyncBuilder : public FragmentBuilder {
public:
  MmaSyncBuilder(ImplicitLocOpBuilder &b, Type elem) : FragmentBuilder(b, elem) {
    NVVM::MMATypes t = elem.isBF16() ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
    types = {t, t};
    accType = LLVM::LLVMStructType::getLiteral(b.getContext(), {f32, f32, f32, f32});
  }

  /// ldmatrix .x`n` (.trans when `transpose`) with this lane's row address
  /// (row, col): lanes 8i .. 8i + 7 address the rows of matrix i. Returns the
  /// n packed operand registers.
  SmallVector<Value> ldmatrix(Value tile, Value row, Value col, bool transpose, int64_t n) {
    VectorType vt = VectorType::get({n, 2}, elem);
    Value m = nvgpu::LdMatrixOp::create(b, vt, tile, ValueRange{row, col},
                                        b.getBoolAttr(transpose), b.getI32IntegerAttr(n));
    SmallVector<Value> regs;
    for (int64_t i = 0; i < n; ++i)
      regs.push_back(packVector(vector::ExtractOp::create(b, m, i)));
    return regs;
  }

  /// D = A B + C for one m16n8k16 tile; c and the result are 4 f32 values.
  SmallVector<Value> mma(ArrayRef<Value> a, ArrayRef<Value> bFrag, ArrayRef<Value> c) {
    auto op = NVVM::MmaOp::create(b, accType, a, bFrag, c, {16, 8, 16}, std::nullopt,
                                  std::nullopt, types,
                                  std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                                                 NVVM::MMALayout::col});
    SmallVector<Value> d;
    for (int64_t i = 0; i < 4; ++i)
      d.push_back(LLVM::ExtractValueOp::create(b, op.getResult(), {i}));
    return d;
  }

private:
  Type accType;
  std::array<NVVM::MMATypes, 2> types;
};

} // namespace attn

#endif // ATTN_LIB_TRANSFORMS_MMASYNC_H
