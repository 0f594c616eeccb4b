//===- LoopBuilder.h - small IR-building helpers for the tiling passes ----===//
//
// The tiled forms are loops over memref tiles; these helpers keep the pass
// files about the algorithm rather than about builder boilerplate.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_LIB_TRANSFORMS_LOOPBUILDER_H
#define ATTN_LIB_TRANSFORMS_LOOPBUILDER_H

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <functional>
#include <limits>

namespace attn {

class LoopBuilder {
public:
  explicit LoopBuilder(mlir::ImplicitLocOpBuilder &b) : b(b) {}

  mlir::Value index(int64_t v) { return mlir::arith::ConstantIndexOp::create(b, v); }
  mlir::Value f32(double v) {
    return mlir::arith::ConstantOp::create(b, b.getF32Type(), b.getF32FloatAttr(v));
  }
  mlir::Value negInf() { return f32(-std::numeric_limits<double>::infinity()); }
  mlir::Value boolean(bool v) { return mlir::arith::ConstantIntOp::create(b, v, 1); }

  /// scf.for lb..ub (step 1, or `step`) with no carried values.
  void forLoop(mlir::Value lb, mlir::Value ub, const std::function<void(mlir::Value)> &body,
               mlir::Value step = {}) {
    auto loop = mlir::scf::ForOp::create(b, lb, ub, step ? step : index(1));
    mlir::OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    body(loop.getInductionVar());
  }

  /// scf.for lb..ub carrying one value; `body(iv, carried)` returns the next.
  mlir::Value reduceLoop(mlir::Value lb, mlir::Value ub, mlir::Value init,
                         const std::function<mlir::Value(mlir::Value, mlir::Value)> &body) {
    auto loop = mlir::scf::ForOp::create(b, lb, ub, index(1), mlir::ValueRange{init});
    mlir::OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    mlir::Value next = body(loop.getInductionVar(), loop.getRegionIterArgs()[0]);
    mlir::scf::YieldOp::create(b, mlir::ValueRange{next});
    return loop.getResult(0);
  }

  /// scf.if without results.
  void ifThen(mlir::Value cond, const std::function<void()> &thenBody,
              const std::function<void()> &elseBody = nullptr) {
    auto ifOp = mlir::scf::IfOp::create(b, cond, /*withElseRegion=*/elseBody != nullptr);
    mlir::OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&ifOp.getThenRegion().front());
    thenBody();
    if (elseBody) {
      b.setInsertionPointToStart(&ifOp.getElseRegion().front());
      elseBody();
    }
  }

  /// Loads an element and widens it to f32.
  mlir::Value loadF32(mlir::Value memref, mlir::ValueRange indices) {
    mlir::Value v = mlir::memref::LoadOp::create(b, memref, indices);
    return toF32(v);
  }
  mlir::Value toF32(mlir::Value v) {
    if (v.getType().isF32())
      return v;
    return mlir::arith::ExtFOp::create(b, b.getF32Type(), v);
  }
  /// Stores an f32 value, rounding to the memref's element type.
  void storeFromF32(mlir::Value v, mlir::Value memref, mlir::ValueRange indices) {
    mlir::Type et = mlir::cast<mlir::MemRefType>(memref.getType()).getElementType();
    if (et != v.getType())
      v = mlir::arith::TruncFOp::create(b, et, v);
    mlir::memref::StoreOp::create(b, v, memref, indices);
  }

  /// Rank-reducing subview `source[offsets][sizes]` with unit strides, keeping
  /// the dimensions listed in `keep`.
  mlir::Value subview(mlir::Value source, llvm::ArrayRef<mlir::OpFoldResult> offsets,
                      llvm::ArrayRef<mlir::OpFoldResult> sizes,
                      llvm::ArrayRef<unsigned> keep) {
    auto type = mlir::cast<mlir::MemRefType>(source.getType());
    llvm::SmallVector<mlir::OpFoldResult> strides(type.getRank(), b.getIndexAttr(1));
    llvm::SmallVector<int64_t> shape;
    for (unsigned d : keep) {
      std::optional<int64_t> c = mlir::getConstantIntValue(sizes[d]);
      shape.push_back(c ? *c : mlir::ShapedType::kDynamic);
    }
    auto resultType = mlir::memref::SubViewOp::inferRankReducedResultType(
        shape, type, offsets, sizes, strides);
    return mlir::memref::SubViewOp::create(b, resultType, source, offsets, sizes,
                                           strides);
  }

  mlir::Value dim(mlir::Value memref, int64_t d) {
    return mlir::memref::DimOp::create(b, memref, d);
  }

  /// index -> f32 (through i64).
  mlir::Value indexToF32(mlir::Value v) {
    mlir::Value i64 = mlir::arith::IndexCastOp::create(b, b.getI64Type(), v);
    return mlir::arith::SIToFPOp::create(b, b.getF32Type(), i64);
  }

  mlir::ImplicitLocOpBuilder &b;
};

} // namespace attn

#endif // ATTN_LIB_TRANSFORMS_LOOPBUILDER_H
