//===- PlanTiles.cpp - tile sizes and symbolic tile classification --------===//
//
// For q tile t (first row i0 = t*BQ, last row at most i0 + BQ - 1) and k tile
// u (keys [u*BK, u*BK + BK)), a diagonal bound k <= q + U is
//   - violated by the whole tile iff u*BK > i0 + BQ - 1 + U  (empty beyond)
//   - satisfied by the whole tile iff u*BK + BK - 1 <= i0 + U (full before)
// and a lower bound k >= q + L symmetrically. Taking the tile's last row as
// i0 + BQ - 1 even for the final, shorter q tile only makes the ranges more
// conservative (a tile may be visited as partial), never wrong.
//
//===----------------------------------------------------------------------===//

#include "attn/Analysis/MaskAnalysis.h"
#include "attn/Spec/Limits.h"
#include "attn/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AffineExpr.h"
#include "mlir/IR/AffineMap.h"

using namespace mlir;

namespace attn {
#define GEN_PASS_DEF_ATTNPLANTILES
#include "attn/Transforms/Passes.h.inc"

namespace {

constexpr int64_t kDefaultBlock = 64;

/// A tile size: the pass option, else the enclosing function's attn.options,
/// else the default. Out-of-range values are errors at the op.
FailureOr<int64_t> chooseTileSize(Operation *op, int64_t option, StringRef optionName,
                                  StringRef key) {
  if (option < 0 || option > kMaxSpecTile)
    return op->emitOpError() << "attn-plan-tiles option " << optionName
                             << " must be between 1 and " << kMaxSpecTile
                             << " (0: default), got " << option;
  if (option > 0)
    return option;
  if (auto func = op->getParentOfType<func::FuncOp>())
    if (auto opts = func->getAttrOfType<DictionaryAttr>("attn.options"))
      if (auto v = opts.getAs<IntegerAttr>(key)) {
        if (v.getInt() < 1 || v.getInt() > kMaxSpecTile)
          return op->emitOpError() << "attn.options." << key << " must be between 1 and "
                                   << kMaxSpecTile << ", got " << v.getInt();
        return v.getInt();
      }
  return kDefaultBlock;
}

struct PlanTilesPass : public impl::AttnPlanTilesBase<PlanTilesPass> {
  using AttnPlanTilesBase::AttnPlanTilesBase;

  void runOnOperation() override {
    WalkResult result = getOperation()->walk([&](AttentionOp op) {
      FailureOr<int64_t> bq = chooseTileSize(op, blockQ, "block-q", "block_q");
      FailureOr<int64_t> bk = chooseTileSize(op, blockK, "block-k", "block_k");
      if (failed(bq) || failed(bk))
        return WalkResult::interrupt();
      op.setTilePlanAttr(buildPlan(op, *bq, *bk));
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }

  TilePlanAttr buildPlan(AttentionOp op, int64_t bq, int64_t bk) {
    MLIRContext *ctx = op.getContext();
    MaskSummary mask = summarizeMask(op);
    AffineExpr t = getAffineDimExpr(0, ctx);
    AffineExpr sq = getAffineSymbolExpr(0, ctx), sk = getAffineSymbolExpr(1, ctx);
    AffineExpr firstRow = t * bq, lastRow = t * bq + (bq - 1);
    AffineExpr zero = getAffineConstantExpr(0, ctx);

    SmallVector<AffineExpr> kvBegin = {zero}, fullBegin = {zero};
    SmallVector<AffineExpr> kvEnd = {sk.ceilDiv(bk)}, fullEnd = {sk.floorDiv(bk)};
    for (const DiagonalBound &b : mask.bounds) {
      AffineExpr offset = b.aligned ? sk - sq + b.offset : zero + b.offset;
      if (b.isUpper) {
        kvEnd.push_back((lastRow + offset).floorDiv(bk) + 1);
        fullEnd.push_back((firstRow + offset + 1).floorDiv(bk));
      } else {
        kvBegin.push_back((firstRow + offset).floorDiv(bk));
        fullBegin.push_back((lastRow + offset).ceilDiv(bk));
      }
    }
    auto map = [&](ArrayRef<AffineExpr> results) {
      return AffineMapAttr::get(AffineMap::get(1, 2, results, ctx));
    };
    SmallVector<Attribute> dataMasks;
    if (mask.blockSparse)
      dataMasks.push_back(StringAttr::get(ctx, "block_sparse"));
    if (mask.documents)
      dataMasks.push_back(StringAttr::get(ctx, "documents"));
    return TilePlanAttr::get(ctx, bq, bk, map(kvBegin), map(fullBegin),
                             map(fullEnd), map(kvEnd), ArrayAttr::get(ctx, dataMasks),
                             mask.customNeedsElementMask);
  }
};

} // namespace
} // namespace attn
