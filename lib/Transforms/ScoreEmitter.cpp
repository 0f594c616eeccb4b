//===- ScoreEmitter.cpp - per-element scores and masks --------------------===//

#include "ScoreEmitter.h"

#include "attn/Analysis/MaskAnalysis.h"

#include "mlir/IR/IRMapping.h"

using namespace mlir;

namespace attn {

ScoreEmitter::ScoreEmitter(AttentionOp op, ImplicitLocOpBuilder &b, Value seqQ,
                           Value seqK, IRMapping operands)
    : op(op), b(b), lb(b), seqQ(seqQ), seqK(seqK), operands(std::move(operands)) {}

bool ScoreEmitter::needsNaturalScores() {
  return op.getSoftcap() || !op.getScoreMod().empty();
}

std::optional<double> ScoreEmitter::linearScale() {
  double scale = op.getEffectiveScale();
  if (op.getSoftcap() || op.getAlibiSlopes() || !op.getScoreMod().empty() || !(scale > 0))
    return std::nullopt;
  return scale * kLog2e;
}

std::optional<std::pair<double, double>> ScoreEmitter::softcapScales() {
  double scale = op.getEffectiveScale();
  auto cap = op.getSoftcap();
  if (!cap || op.getAlibiSlopes() || !op.getScoreMod().empty() || !(scale > 0))
    return std::nullopt;
  double c = cap->convertToDouble();
  if (!(c > 0))
    return std::nullopt;
  return std::make_pair(scale / c, c * kLog2e);
}

std::optional<double> ScoreEmitter::rowShiftedAlibiScale() {
  if (!op.getAlibiSlopes() || needsNaturalScores())
    return std::nullopt;
  // Every visible key lies on or below the diagonal if one bound says so:
  // the bounds are conjuncts of the mask (MaskAnalysis), so each holds on
  // every visible key, whatever else the mask tests. An unaligned bound
  // (k <= q + offset) does not say it for every Sk - Sq.
  for (const DiagonalBound &bound : summarizeMask(op).bounds)
    if (bound.isUpper && bound.aligned && bound.offset <= 0)
      return op.getEffectiveScale() * kLog2e;
  return std::nullopt;
}

Value ScoreEmitter::alibiSlope(Value batch, Value head) {
  Value slopes = operand(op.getAlibiSlopes());
  bool perBatch = cast<MemRefType>(slopes.getType()).getRank() == 2;
  return perBatch ? lb.loadF32(slopes, {batch, head}) : lb.loadF32(slopes, {head});
}

Value ScoreEmitter::score(Value s, Value batch, Value head, Value row, Value col,
                          Value alibiDistance) {
  double scale = op.getEffectiveScale();
  // Soft-cap and score_mod need the natural-log score; ALiBi alone is linear
  // and takes log2(e) into its slope, so the common cases cost one multiply
  // (plus one multiply-subtract for ALiBi) and round once less.
  bool natural = needsNaturalScores();
  s = arith::MulFOp::create(b, s, lb.f32(natural ? scale : scale * kLog2e));
  if (auto cap = op.getSoftcap()) {
    double c = cap->convertToDouble();
    Value t = math::TanhOp::create(b, arith::MulFOp::create(b, s, lb.f32(1.0 / c)));
    s = arith::MulFOp::create(b, t, lb.f32(c));
  }
  if (Value slopes = operand(op.getAlibiSlopes())) {
    // distance |i + Sk - Sq - j| from the bottom-right aligned diagonal.
    Value dist = alibiDistance;
    if (!dist) {
      Value diag = arith::SubIOp::create(b, arith::AddIOp::create(b, row, seqK),
                                         arith::AddIOp::create(b, seqQ, col));
      Value negDiag = arith::SubIOp::create(b, lb.index(0), diag);
      dist = lb.indexToF32(arith::MaxSIOp::create(b, diag, negDiag));
    }
    Value slope = alibiSlope(batch, head);
    if (!natural)
      slope = arith::MulFOp::create(b, slope, lb.f32(kLog2e));
    s = arith::SubFOp::create(b, s, arith::MulFOp::create(b, slope, dist));
  }
  if (!op.getScoreMod().empty())
    s = inlineRegion(op.getScoreMod(), {batch, head, row, col, s});
  if (natural)
    s = arith::MulFOp::create(b, s, lb.f32(kLog2e));
  return s;
}

Value ScoreEmitter::layoutIndex(Value layout, int64_t dim, Value index) {
  Value isOne = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lb.dim(layout, dim),
                                      lb.index(1));
  return arith::SelectOp::create(b, isOne, lb.index(0), index);
}

bool ScoreEmitter::hasMasks(MaskParts parts) {
  return (parts.diagonal && (op.getCausal() || op.getWindowAttr())) ||
         (parts.blockMask && op.getBlockMask()) || op.getQDocIds() || !op.getMaskMod().empty();
}

Value ScoreEmitter::visible(Value batch, Value head, Value row, Value col, MaskParts parts) {
  Value result = lb.boolean(true);
  auto both = [&](Value c) { result = arith::AndIOp::create(b, result, c); };
  // Diagonal bounds relative to the bottom-right aligned diagonal i + Sk - Sq.
  if (parts.diagonal && (op.getCausal() || op.getWindowAttr())) {
    Value diag = arith::SubIOp::create(b, arith::AddIOp::create(b, row, seqK), seqQ);
    if (op.getCausal())
      both(arith::CmpIOp::create(b, arith::CmpIPredicate::sle, col, diag));
    if (auto window = op.getWindowAttr()) {
      Value lo = arith::SubIOp::create(b, diag, lb.index(window.getLeft()));
      Value hi = arith::AddIOp::create(b, diag, lb.index(window.getRight()));
      both(arith::CmpIOp::create(b, arith::CmpIPredicate::sge, col, lo));
      both(arith::CmpIOp::create(b, arith::CmpIPredicate::sle, col, hi));
    }
  }
  if (Value layout = operand(op.getBlockMask()); layout && parts.blockMask) {
    auto bs = op.getBlockSparseAttr();
    Value bi = arith::DivUIOp::create(b, row, lb.index(bs.getBlockQ()));
    Value bj = arith::DivUIOp::create(b, col, lb.index(bs.getBlockK()));
    Value lbatch = layoutIndex(layout, 0, batch), lhead = layoutIndex(layout, 1, head);
    Value byte = memref::LoadOp::create(b, layout, ValueRange{lbatch, lhead, bi, bj});
    both(arith::CmpIOp::create(b, arith::CmpIPredicate::ne, byte,
                               arith::ConstantIntOp::create(b, 0, 8)));
  }
  if (op.getQDocIds()) {
    Value qd = parts.qDocId ? parts.qDocId
                            : (Value)memref::LoadOp::create(b, operand(op.getQDocIds()),
                                                            ValueRange{batch, row});
    Value kd = parts.kvDocId ? parts.kvDocId
                             : (Value)memref::LoadOp::create(b, operand(op.getKvDocIds()),
                                                             ValueRange{batch, col});
    both(arith::CmpIOp::create(b, arith::CmpIPredicate::eq, qd, kd));
  }
  if (!op.getMaskMod().empty())
    both(inlineRegion(op.getMaskMod(), {batch, head, row, col}));
  return result;
}

std::pair<Value, Value> ScoreEmitter::visibleInterval(Value row) {
  // The same bounds as visible(): col <= diag (causal), diag - left <= col <=
  // diag + right (window), with diag = row + Sk - Sq; and col < Sk. Where
  // col < Sk, min(col, Sk - 1) = col; where not, both forms mask the key.
  Value hi = arith::SubIOp::create(b, seqK, lb.index(1)), lo;
  Value diag = arith::SubIOp::create(b, arith::AddIOp::create(b, row, seqK), seqQ);
  if (op.getCausal())
    hi = arith::MinSIOp::create(b, hi, diag);
  if (auto window = op.getWindowAttr()) {
    lo = arith::SubIOp::create(b, diag, lb.index(window.getLeft()));
    hi = arith::MinSIOp::create(
        b, hi, arith::AddIOp::create(b, diag, lb.index(window.getRight())));
  }
  return std::make_pair(lo, hi);
}

Value ScoreEmitter::inlineRegion(Region &region, ArrayRef<Value> leadingArgs) {
  Block &body = region.front();
  IRMapping mapping;
  SmallVector<Value> args(leadingArgs);
  for (Value capture : op.getCaptures())
    args.push_back(operand(capture));
  for (auto [arg, value] : llvm::zip(body.getArguments(), args))
    mapping.map(arg, value);
  for (Operation &inner : body.without_terminator()) {
    if (auto lens = dyn_cast<SeqLensOp>(inner)) {
      mapping.map(lens.getQueryLen(), seqQ);
      mapping.map(lens.getKeyLen(), seqK);
      continue;
    }
    b.clone(inner, mapping);
  }
  return mapping.lookup(cast<YieldOp>(body.back()).getValues()[0]);
}

} // namespace attn
