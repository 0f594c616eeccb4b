//===- TileRange.cpp - the k tiles one q tile visits, from the tile plan --===//

#include "TileRange.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;

namespace attn {

KTileRange emitKTileRange(ImplicitLocOpBuilder &b, TilePlanAttr plan, Value tile, Value seqQ,
                          Value seqK, bool withFullRange) {
  SmallVector<Value> operands = {tile, seqQ, seqK};
  auto bound = [&](AffineMapAttr map, bool isMax) -> Value {
    if (isMax)
      return affine::AffineMaxOp::create(b, map.getValue(), operands);
    return affine::AffineMinOp::create(b, map.getValue(), operands);
  };
  KTileRange range;
  range.begin = bound(plan.getKvBegin(), /*isMax=*/true);
  range.end = bound(plan.getKvEnd(), /*isMax=*/false);
  if (!withFullRange)
    return range;
  range.fullBegin = arith::MinSIOp::create(
      b, arith::MaxSIOp::create(b, bound(plan.getFullBegin(), true), range.begin), range.end);
  range.fullEnd = arith::MinSIOp::create(
      b, arith::MaxSIOp::create(b, bound(plan.getFullEnd(), false), range.fullBegin),
      range.end);
  return range;
}

Value emitNeedsElementMask(ImplicitLocOpBuilder &b, AttentionOp op, const KTileRange &range,
                           Value kt) {
  Value yes = arith::ConstantIntOp::create(b, 1, 1);
  if (op.getTilePlanAttr().getElementMaskEverywhere() || op.getBlockMask() || op.getQDocIds())
    return yes;
  Value isFull = arith::AndIOp::create(
      b, arith::CmpIOp::create(b, arith::CmpIPredicate::sge, kt, range.fullBegin),
      arith::CmpIOp::create(b, arith::CmpIPredicate::slt, kt, range.fullEnd));
  return arith::XOrIOp::create(b, isFull, yes);
}

} // namespace attn
