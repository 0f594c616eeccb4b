//===- TileSoftmax.cpp - tiled softmax attention with online softmax ------===//
//
// Per (batch, query head, query tile):
//
//   state = (m = -inf, l = 0, acc = 0)
//   for k tiles in [kv_begin, full_begin): partial tile   (element masks)
//   for k tiles in [full_begin, full_end): full tile      (no element mask)
//   for k tiles in [full_end, kv_end):     partial tile
//   out, lse = finalize(state)
//
// Tiles outside [kv_begin, kv_end) are empty and never visited. Data masks
// (block layout, document ids) classify each visited tile again at run time.
// A tile's scores are s = modifiers(scale * q.k) * log2(e), or, without
// modifiers, q.k * (scale * log2(e)): one multiply, and exp2 downstream.
//
//===----------------------------------------------------------------------===//

#include "LoopBuilder.h"
#include "ScoreEmitter.h"
#include "TileRange.h"
#include "attn/Analysis/MaskAnalysis.h"
#include "attn/Transforms/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/IRMapping.h"

#include <cmath>

using namespace mlir;

namespace attn {
#define GEN_PASS_DEF_ATTNTILESOFTMAX
#include "attn/Transforms/Passes.h.inc"

namespace {

class SoftmaxTiler {
public:
  SoftmaxTiler(AttentionOp op, ImplicitLocOpBuilder &b)
      : op(op), b(b), lb(b), plan(op.getTilePlanAttr()), mask(summarizeMask(op)) {}

  void build();

private:
  /// Everything fixed for one query tile.
  struct QueryTile {
    Value batch, head, kvHead, rowBegin, rows;
    Value query;                // [rows, D]
    Value max, sum, acc, scores; // state views and the score buffer
    Value docMin, docMax;       // document id range of the rows
  };

  void buildQueryTile(Value batch, Value head, Value tileIndex);
  void buildKeyTile(QueryTile &qt, Value keyTile, bool full);
  void computeScores(QueryTile &qt, Value colBegin, Value cols, Value key,
                     Value scores, bool elementMask);
  /// (any visible, all visible) for the data masks over a tile.
  std::pair<Value, Value> classifyData(QueryTile &qt, Value colBegin, Value cols);
  std::pair<Value, Value> docRange(Value ids, Value begin, Value count, Value batch);

  AttentionOp op;
  ImplicitLocOpBuilder &b;
  LoopBuilder lb;
  TilePlanAttr plan;
  MaskSummary mask;
  Value seqQ, seqK, group;
  std::optional<ScoreEmitter> emitter;
  int64_t headDim = 0, headDimV = 0;
};

void SoftmaxTiler::build() {
  headDim = cast<MemRefType>(op.getQuery().getType()).getDimSize(3);
  headDimV = cast<MemRefType>(op.getValue().getType()).getDimSize(3);
  Value batches = lb.dim(op.getQuery(), 0), headsQ = lb.dim(op.getQuery(), 1);
  seqQ = lb.dim(op.getQuery(), 2);
  seqK = lb.dim(op.getKey(), 2);
  emitter.emplace(op, b, seqQ, seqK, IRMapping());
  group = arith::DivUIOp::create(b, headsQ, lb.dim(op.getKey(), 1));
  AffineExpr s0 = b.getAffineSymbolExpr(0);
  Value queryTiles = affine::AffineApplyOp::create(
      b, AffineMap::get(0, 1, s0.ceilDiv(plan.getBlockQ())), ValueRange{seqQ});
  Value zero = lb.index(0), one = lb.index(1);
  scf::ParallelOp::create(
      b, ValueRange{zero, zero, zero}, ValueRange{batches, headsQ, queryTiles},
      ValueRange{one, one, one}, [&](OpBuilder &, Location, ValueRange ivs) {
        buildQueryTile(ivs[0], ivs[1], ivs[2]);
      });
}

void SoftmaxTiler::buildQueryTile(Value batch, Value head, Value tileIndex) {
  int64_t bq = plan.getBlockQ(), bk = plan.getBlockK();
  QueryTile qt;
  qt.batch = batch;
  qt.head = head;
  qt.kvHead = arith::DivUIOp::create(b, head, group);
  qt.rowBegin = arith::MulIOp::create(b, tileIndex, lb.index(bq));
  AffineExpr d0 = b.getAffineDimExpr(0), s0 = b.getAffineSymbolExpr(0);
  qt.rows = affine::AffineMinOp::create(
      b, AffineMap::get(1, 1, {b.getAffineConstantExpr(bq), s0 - d0 * bq}, b.getContext()),
      ValueRange{tileIndex, seqQ});
  OpFoldResult zeroAttr = b.getIndexAttr(0), oneAttr = b.getIndexAttr(1);
  qt.query = lb.subview(op.getQuery(), {batch, head, qt.rowBegin, zeroAttr},
                        {oneAttr, oneAttr, qt.rows, b.getIndexAttr(headDim)}, {2, 3});

  // The online-softmax state of this query tile, and the score buffer.
  Type f32 = b.getF32Type();
  Value max = memref::AllocaOp::create(b, MemRefType::get({bq}, f32));
  Value sum = memref::AllocaOp::create(b, MemRefType::get({bq}, f32));
  Value acc = memref::AllocaOp::create(b, MemRefType::get({bq, headDimV}, f32));
  qt.scores = memref::AllocaOp::create(b, MemRefType::get({bq, bk}, f32));
  qt.max = lb.subview(max, {zeroAttr}, {qt.rows}, {0});
  qt.sum = lb.subview(sum, {zeroAttr}, {qt.rows}, {0});
  qt.acc = lb.subview(acc, {zeroAttr, zeroAttr}, {qt.rows, b.getIndexAttr(headDimV)}, {0, 1});
  linalg::FillOp::create(b, ValueRange{lb.negInf()}, ValueRange{qt.max});
  linalg::FillOp::create(b, ValueRange{lb.f32(0.0)}, ValueRange{qt.sum});
  linalg::FillOp::create(b, ValueRange{lb.f32(0.0)}, ValueRange{qt.acc});

  if (mask.documents)
    std::tie(qt.docMin, qt.docMax) =
        docRange(op.getQDocIds(), qt.rowBegin, qt.rows, batch);

  // The k-tile ranges of the plan (empty tiles are never visited).
  bool everywhere = plan.getElementMaskEverywhere();
  KTileRange range = emitKTileRange(b, plan, tileIndex, seqQ, seqK, !everywhere);
  auto forTiles = [&](Value from, Value to, bool full) {
    lb.forLoop(from, to, [&](Value t) { buildKeyTile(qt, t, full); });
  };
  if (everywhere) {
    forTiles(range.begin, range.end, /*full=*/false);
  } else {
    forTiles(range.begin, range.fullBegin, /*full=*/false);
    forTiles(range.fullBegin, range.fullEnd, /*full=*/true);
    forTiles(range.fullEnd, range.end, /*full=*/false);
  }

  Value out = lb.subview(op.getOut(), {batch, head, qt.rowBegin, zeroAttr},
                         {oneAttr, oneAttr, qt.rows, b.getIndexAttr(headDimV)}, {2, 3});
  Value lse;
  if (op.getLse())
    lse = lb.subview(op.getLse(), {batch, head, qt.rowBegin},
                     {oneAttr, oneAttr, qt.rows}, {2});
  SoftmaxFinalizeOp::create(b, qt.max, qt.sum, qt.acc, out, lse);
}

void SoftmaxTiler::buildKeyTile(QueryTile &qt, Value keyTile, bool full) {
  int64_t bk = plan.getBlockK();
  Value colBegin = arith::MulIOp::create(b, keyTile, lb.index(bk));
  AffineExpr d0 = b.getAffineDimExpr(0), s0 = b.getAffineSymbolExpr(0);
  Value cols = affine::AffineMinOp::create(
      b, AffineMap::get(1, 1, {b.getAffineConstantExpr(bk), s0 - d0 * bk}, b.getContext()),
      ValueRange{keyTile, seqK});
  OpFoldResult zeroAttr = b.getIndexAttr(0), oneAttr = b.getIndexAttr(1);
  Value key = lb.subview(op.getKey(), {qt.batch, qt.kvHead, colBegin, zeroAttr},
                         {oneAttr, oneAttr, cols, b.getIndexAttr(headDim)}, {2, 3});
  Value value = lb.subview(op.getValue(), {qt.batch, qt.kvHead, colBegin, zeroAttr},
                           {oneAttr, oneAttr, cols, b.getIndexAttr(headDimV)}, {2, 3});
  Value scores = lb.subview(qt.scores, {zeroAttr, zeroAttr}, {qt.rows, cols}, {0, 1});

  auto process = [&](bool elementMask) {
    computeScores(qt, colBegin, cols, key, scores, elementMask);
    OnlineSoftmaxOp::create(b, scores, value, qt.max, qt.sum, qt.acc);
  };
  if (mask.blockSparse || mask.documents) {
    auto [any, all] = classifyData(qt, colBegin, cols);
    lb.ifThen(any, [&] {
      if (!full)
        return process(/*elementMask=*/true);
      lb.ifThen(all, [&] { process(false); }, [&] { process(true); });
    });
    return;
  }
  process(/*elementMask=*/!full);
}

void SoftmaxTiler::computeScores(QueryTile &qt, Value colBegin, Value cols,
                                 Value key, Value scores, bool elementMask) {
  Value zero = lb.index(0);
  lb.forLoop(zero, qt.rows, [&](Value r) {
    lb.forLoop(zero, cols, [&](Value c) {
      Value dot = lb.reduceLoop(zero, lb.index(headDim), lb.f32(0.0),
                                [&](Value d, Value accum) {
                                  Value x = lb.loadF32(qt.query, {r, d});
                                  Value y = lb.loadF32(key, {c, d});
                                  // fused multiply-add, as tensor cores do
                                  return math::FmaOp::create(b, x, y, accum);
                                });
      Value row = arith::AddIOp::create(b, qt.rowBegin, r);
      Value col = arith::AddIOp::create(b, colBegin, c);
      Value s = emitter->score(dot, qt.batch, qt.head, row, col);
      if (elementMask)
        s = arith::SelectOp::create(b, emitter->visible(qt.batch, qt.head, row, col), s,
                                    lb.negInf());
      memref::StoreOp::create(b, s, scores, ValueRange{r, c});
    });
  });
}

std::pair<Value, Value> SoftmaxTiler::docRange(Value ids, Value begin, Value count,
                                               Value batch) {
  Type i32 = b.getI32Type();
  Value big = arith::ConstantIntOp::create(b, i32, std::numeric_limits<int32_t>::max());
  Value small = arith::ConstantIntOp::create(b, i32, std::numeric_limits<int32_t>::min());
  Value end = arith::AddIOp::create(b, begin, count);
  Value lo = lb.reduceLoop(begin, end, big, [&](Value i, Value m) {
    return arith::MinSIOp::create(b, m, memref::LoadOp::create(b, ids, ValueRange{batch, i}));
  });
  Value hi = lb.reduceLoop(begin, end, small, [&](Value i, Value m) {
    return arith::MaxSIOp::create(b, m, memref::LoadOp::create(b, ids, ValueRange{batch, i}));
  });
  return {lo, hi};
}

std::pair<Value, Value> SoftmaxTiler::classifyData(QueryTile &qt, Value colBegin,
                                                   Value cols) {
  Value any = lb.boolean(true), all = lb.boolean(true);
  if (Value layout = op.getBlockMask()) {
    // The layout blocks this tile overlaps: any non-zero -> visit; all non-zero
    // -> no element mask needed for the layout.
    auto bs = op.getBlockSparseAttr();
    Value one = lb.index(1);
    auto blockRange = [&](Value begin, Value count, int64_t block) {
      Value first = arith::DivUIOp::create(b, begin, lb.index(block));
      Value last = arith::DivUIOp::create(
          b, arith::SubIOp::create(b, arith::AddIOp::create(b, begin, count), one),
          lb.index(block));
      return std::make_pair(first, arith::AddIOp::create(b, last, one).getResult());
    };
    auto [r0, r1] = blockRange(qt.rowBegin, qt.rows, bs.getBlockQ());
    auto [c0, c1] = blockRange(colBegin, cols, bs.getBlockK());
    Value lbatch = emitter->layoutIndex(layout, 0, qt.batch);
    Value lhead = emitter->layoutIndex(layout, 1, qt.head);
    Value zero8 = arith::ConstantIntOp::create(b, 0, 8);
    auto scan = [&](bool wantAny) {
      return lb.reduceLoop(r0, r1, lb.boolean(!wantAny), [&](Value i, Value acc) {
        return lb.reduceLoop(c0, c1, acc, [&](Value j, Value acc2) {
          Value byte = memref::LoadOp::create(b, layout, ValueRange{lbatch, lhead, i, j});
          Value nz = arith::CmpIOp::create(b, arith::CmpIPredicate::ne, byte, zero8);
          return wantAny ? (Value)arith::OrIOp::create(b, acc2, nz)
                         : (Value)arith::AndIOp::create(b, acc2, nz);
        });
      });
    };
    any = arith::AndIOp::create(b, any, scan(true));
    all = arith::AndIOp::create(b, all, scan(false));
  }
  if (op.getQDocIds()) {
    auto [kMin, kMax] = docRange(op.getKvDocIds(), colBegin, cols, qt.batch);
    // Disjoint id ranges: no pair can match. One id on both sides: all match.
    Value disjoint = arith::OrIOp::create(
        b, arith::CmpIOp::create(b, arith::CmpIPredicate::slt, qt.docMax, kMin),
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, kMax, qt.docMin));
    any = arith::AndIOp::create(b, any, arith::XOrIOp::create(b, disjoint, lb.boolean(true)));
    Value same = arith::AndIOp::create(
        b, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, qt.docMin, qt.docMax),
        arith::AndIOp::create(
            b, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, kMin, kMax),
            arith::CmpIOp::create(b, arith::CmpIPredicate::eq, qt.docMin, kMin)));
    all = arith::AndIOp::create(b, all, same);
  }
  return {any, all};
}

struct TileSoftmaxPass : public impl::AttnTileSoftmaxBase<TileSoftmaxPass> {
  void runOnOperation() override {
    SmallVector<AttentionOp> ops;
    getOperation()->walk([&](AttentionOp op) { ops.push_back(op); });
    for (AttentionOp op : ops) {
      if (!op.getTilePlanAttr()) {
        op.emitOpError() << "has no tile_plan; run attn-plan-tiles first";
        return signalPassFailure();
      }
      ImplicitLocOpBuilder b(op.getLoc(), op);
      SoftmaxTiler(op, b).build();
      op.erase();
    }
  }
};

} // namespace
} // namespace attn
