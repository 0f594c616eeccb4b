//===- MaskAnalysis.cpp - masks as diagonal bounds ------------------------===//
//
// Recognition works on linear forms c_q*q + c_k*k + c_sq*Sq + c_sk*Sk + c over
// the region's index arithmetic. Anything else (batch or head dependence,
// loads from captured tensors, division) leaves the conjunct unrecognized,
// which is always safe: the region then stays an element mask.
//
//===----------------------------------------------------------------------===//

#include "attn/Analysis/MaskAnalysis.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

#include <optional>

using namespace mlir;

namespace attn {
namespace {

struct LinearForm {
  int64_t q = 0, k = 0, sq = 0, sk = 0, c = 0;
  LinearForm operator+(const LinearForm &o) const {
    return {q + o.q, k + o.k, sq + o.sq, sk + o.sk, c + o.c};
  }
  LinearForm scaled(int64_t f) const { return {q * f, k * f, sq * f, sk * f, c * f}; }
  bool isConstant() const { return q == 0 && k == 0 && sq == 0 && sk == 0; }
};

std::optional<LinearForm> linearize(Value v, Block &body) {
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    if (arg.getOwner() != &body)
      return std::nullopt;
    if (arg.getArgNumber() == 2)
      return LinearForm{1, 0, 0, 0, 0};
    if (arg.getArgNumber() == 3)
      return LinearForm{0, 1, 0, 0, 0};
    return std::nullopt; // b, h, captures
  }
  Operation *def = v.getDefiningOp();
  if (auto lens = dyn_cast<SeqLensOp>(def))
    return v == lens.getQueryLen() ? LinearForm{0, 0, 1, 0, 0}
                                   : LinearForm{0, 0, 0, 1, 0};
  if (auto cst = dyn_cast<arith::ConstantIndexOp>(def))
    return LinearForm{0, 0, 0, 0, cst.value()};
  auto binary = [&](Operation *op) -> std::optional<std::pair<LinearForm, LinearForm>> {
    auto l = linearize(op->getOperand(0), body);
    auto r = linearize(op->getOperand(1), body);
    if (!l || !r)
      return std::nullopt;
    return std::make_pair(*l, *r);
  };
  if (isa<arith::AddIOp, arith::SubIOp, arith::MulIOp>(def)) {
    auto lr = binary(def);
    if (!lr)
      return std::nullopt;
    auto [l, r] = *lr;
    if (isa<arith::AddIOp>(def))
      return l + r;
    if (isa<arith::SubIOp>(def))
      return l + r.scaled(-1);
    if (l.isConstant())
      return r.scaled(l.c);
    if (r.isConstant())
      return l.scaled(r.c);
  }
  return std::nullopt;
}

/// Turns `form <= 0` into a diagonal bound if it has the shape of one.
std::optional<DiagonalBound> asBound(const LinearForm &f) {
  // Upper: k - q - a*Sk + a*Sq - off <= 0.  Lower: -k + q + a*Sk - a*Sq + off <= 0.
  if (f.k == 1 && f.q == -1 && f.sk == -f.sq && (f.sq == 0 || f.sq == 1))
    return DiagonalBound{/*isUpper=*/true, /*aligned=*/f.sq == 1, -f.c};
  if (f.k == -1 && f.q == 1 && f.sk == -f.sq && (f.sk == 0 || f.sk == 1))
    return DiagonalBound{/*isUpper=*/false, /*aligned=*/f.sk == 1, f.c};
  return std::nullopt;
}

void collect(Value pred, Block &body, RegionMaskSummary &out) {
  Operation *def = pred.getDefiningOp();
  if (!def) {
    out.complete = false;
    return;
  }
  if (auto andOp = dyn_cast<arith::AndIOp>(def)) {
    collect(andOp.getLhs(), body, out);
    collect(andOp.getRhs(), body, out);
    return;
  }
  if (auto cst = dyn_cast<arith::ConstantIntOp>(def)) {
    if (cst.value() == 0)
      out.complete = false; // an always-false mask is not a bound
    return;
  }
  auto cmp = dyn_cast<arith::CmpIOp>(def);
  if (!cmp) {
    out.complete = false;
    return;
  }
  auto l = linearize(cmp.getLhs(), body), r = linearize(cmp.getRhs(), body);
  if (!l || !r) {
    out.complete = false;
    return;
  }
  LinearForm d = *l + r->scaled(-1); // lhs - rhs
  std::optional<LinearForm> leZero;  // a form that must be <= 0
  switch (cmp.getPredicate()) {
  case arith::CmpIPredicate::sle:
    leZero = d;
    break;
  case arith::CmpIPredicate::slt:
    leZero = d + LinearForm{0, 0, 0, 0, 1};
    break;
  case arith::CmpIPredicate::sge:
    leZero = d.scaled(-1);
    break;
  case arith::CmpIPredicate::sgt:
    leZero = d.scaled(-1) + LinearForm{0, 0, 0, 0, 1};
    break;
  default:
    break;
  }
  std::optional<DiagonalBound> bound = leZero ? asBound(*leZero) : std::nullopt;
  if (!bound) {
    out.complete = false;
    return;
  }
  out.bounds.push_back(*bound);
}

} // namespace

RegionMaskSummary summarizeMaskRegion(Region &maskMod) {
  RegionMaskSummary summary;
  if (maskMod.empty())
    return summary;
  Block &body = maskMod.front();
  auto yield = dyn_cast<YieldOp>(body.back());
  if (!yield || yield.getValues().size() != 1) {
    summary.complete = false;
    return summary;
  }
  collect(yield.getValues()[0], body, summary);
  return summary;
}

MaskSummary summarizeMask(AttentionOp op) {
  MaskSummary summary;
  if (op.getCausal())
    summary.bounds.push_back({/*isUpper=*/true, /*aligned=*/true, 0});
  if (auto window = op.getWindowAttr()) {
    summary.bounds.push_back({/*isUpper=*/false, /*aligned=*/true, -window.getLeft()});
    summary.bounds.push_back({/*isUpper=*/true, /*aligned=*/true, window.getRight()});
  }
  if (!op.getMaskMod().empty()) {
    RegionMaskSummary region = summarizeMaskRegion(op.getMaskMod());
    summary.bounds.append(region.bounds.begin(), region.bounds.end());
    // A region that is exactly its bounds needs no element mask on full tiles.
    summary.customNeedsElementMask = !region.complete;
  }
  summary.blockSparse = static_cast<bool>(op.getBlockMask());
  summary.documents = static_cast<bool>(op.getQDocIds());
  return summary;
}

} // namespace attn
