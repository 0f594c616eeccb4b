//===- LowerTileOps.cpp - online-softmax ops to loops ---------------------===//
//
// The scalar expansion used by the CPU path. Both ops guard the fully masked
// case explicitly: a row that has seen only -inf keeps alpha = 1 and p = 0,
// and finalizes to out = 0, lse = -inf instead of 0/0.
//
//===----------------------------------------------------------------------===//

#include "LoopBuilder.h"
#include "attn/Transforms/Passes.h"

#include <cmath>

using namespace mlir;

namespace attn {
#define GEN_PASS_DEF_ATTNLOWERTILEOPS
#include "attn/Transforms/Passes.h.inc"

namespace {

constexpr double kLn2 = 0.6931471805599453;

void lowerOnlineSoftmax(OnlineSoftmaxOp op) {
  ImplicitLocOpBuilder b(op.getLoc(), op);
  LoopBuilder lb(b);
  Value zero = lb.index(0);
  Value rows = lb.dim(op.getScores(), 0), cols = lb.dim(op.getScores(), 1);
  Value dv = lb.dim(op.getAcc(), 1);
  Value negInf = lb.negInf();
  lb.forLoop(zero, rows, [&](Value r) {
    Value oldMax = memref::LoadOp::create(b, op.getMax(), ValueRange{r});
    Value newMax = lb.reduceLoop(zero, cols, oldMax, [&](Value c, Value m) {
      return arith::MaximumFOp::create(
          b, m, memref::LoadOp::create(b, op.getScores(), ValueRange{r, c}));
    });
    Value noneSeen = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, newMax, negInf);
    Value alpha = arith::SelectOp::create(
        b, noneSeen, lb.f32(1.0),
        math::Exp2Op::create(b, arith::SubFOp::create(b, oldMax, newMax)));
    lb.forLoop(zero, dv, [&](Value e) {
      Value a = memref::LoadOp::create(b, op.getAcc(), ValueRange{r, e});
      memref::StoreOp::create(b, arith::MulFOp::create(b, a, alpha), op.getAcc(),
                              ValueRange{r, e});
    });
    Value rowSum = lb.reduceLoop(zero, cols, lb.f32(0.0), [&](Value c, Value sum) {
      Value s = memref::LoadOp::create(b, op.getScores(), ValueRange{r, c});
      Value masked = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, s, negInf);
      Value p = arith::SelectOp::create(
          b, masked, lb.f32(0.0),
          math::Exp2Op::create(b, arith::SubFOp::create(b, s, newMax)));
      lb.forLoop(zero, dv, [&](Value e) {
        Value a = memref::LoadOp::create(b, op.getAcc(), ValueRange{r, e});
        Value v = lb.loadF32(op.getValue(), {c, e});
        memref::StoreOp::create(b, math::FmaOp::create(b, p, v, a), op.getAcc(),
                                ValueRange{r, e});
      });
      return arith::AddFOp::create(b, sum, p);
    });
    Value oldSum = memref::LoadOp::create(b, op.getSum(), ValueRange{r});
    Value newSum = arith::AddFOp::create(b, arith::MulFOp::create(b, oldSum, alpha), rowSum);
    memref::StoreOp::create(b, newSum, op.getSum(), ValueRange{r});
    memref::StoreOp::create(b, newMax, op.getMax(), ValueRange{r});
  });
  op.erase();
}

void lowerFinalize(SoftmaxFinalizeOp op) {
  ImplicitLocOpBuilder b(op.getLoc(), op);
  LoopBuilder lb(b);
  Value zero = lb.index(0);
  Value rows = lb.dim(op.getAcc(), 0), dv = lb.dim(op.getAcc(), 1);
  lb.forLoop(zero, rows, [&](Value r) {
    Value sum = memref::LoadOp::create(b, op.getSum(), ValueRange{r});
    Value empty = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, sum, lb.f32(0.0));
    Value inv = arith::SelectOp::create(
        b, empty, lb.f32(0.0), arith::DivFOp::create(b, lb.f32(1.0), sum));
    lb.forLoop(zero, dv, [&](Value e) {
      Value a = memref::LoadOp::create(b, op.getAcc(), ValueRange{r, e});
      lb.storeFromF32(arith::MulFOp::create(b, a, inv), op.getOut(), {r, e});
    });
    if (Value lse = op.getLse()) {
      Value max = memref::LoadOp::create(b, op.getMax(), ValueRange{r});
      Value log2Sum = arith::AddFOp::create(b, max, math::Log2Op::create(b, sum));
      Value natural = arith::MulFOp::create(b, log2Sum, lb.f32(kLn2));
      memref::StoreOp::create(b, arith::SelectOp::create(b, empty, lb.negInf(), natural),
                              lse, ValueRange{r});
    }
  });
  op.erase();
}

struct LowerTileOpsPass : public impl::AttnLowerTileOpsBase<LowerTileOpsPass> {
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation()->walk([&](Operation *op) {
      if (isa<OnlineSoftmaxOp, SoftmaxFinalizeOp>(op))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      if (auto update = dyn_cast<OnlineSoftmaxOp>(op))
        lowerOnlineSoftmax(update);
      else
        lowerFinalize(cast<SoftmaxFinalizeOp>(op));
    }
  }
};

} // namespace
} // namespace attn
