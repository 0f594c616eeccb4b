//===- NormalizeMasks.cpp - one band per op, regions to attributes --------===//
//
// Canonical masks make every later decision simpler: tile classification
// reads attributes, and kernels specialised on `causal` or `window` need not
// interpret a region. See the pass description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "attn/Analysis/MaskAnalysis.h"
#include "attn/Transforms/Passes.h"

#include <algorithm>
#include <optional>

using namespace mlir;

namespace attn {
#define GEN_PASS_DEF_ATTNNORMALIZEMASKS
#include "attn/Transforms/Passes.h.inc"

namespace {

/// Folds a fully summarized mask_mod region into causal/window attributes.
/// Returns true if the region was removed.
bool foldMaskRegion(AttentionOp op) {
  RegionMaskSummary region = summarizeMaskRegion(op.getMaskMod());
  if (!region.complete || region.bounds.empty())
    return false;
  std::optional<int64_t> right, left; // tightest bounds relative to q + Sk - Sq
  auto addUpper = [&](int64_t r) { right = right ? std::min(*right, r) : r; };
  auto addLower = [&](int64_t l) { left = left ? std::min(*left, l) : l; };
  for (const DiagonalBound &b : region.bounds) {
    if (!b.aligned)
      return false; // a bound relative to q alone is a window only if Sq == Sk
    if (b.isUpper)
      addUpper(b.offset);
    else
      addLower(-b.offset);
  }
  if (op.getCausal())
    addUpper(0);
  if (auto window = op.getWindowAttr()) {
    addLower(window.getLeft());
    addUpper(window.getRight());
  }
  // Only masks the attributes can state: an upper bound >= 0, a lower bound
  // only together with an upper one, both non-negative.
  if (!right || *right < 0 || (left && *left < 0))
    return false;
  if (left) {
    op.setWindowAttr(WindowAttr::get(op.getContext(), *left, *right));
    op.setCausal(false);
  } else if (*right == 0) {
    op.setCausal(true);
  } else {
    return false;
  }
  op.getMaskMod().getBlocks().clear();
  if (op.getScoreMod().empty())
    op.getCapturesMutable().clear();
  return true;
}

struct NormalizeMasksPass
    : public impl::AttnNormalizeMasksBase<NormalizeMasksPass> {
  void runOnOperation() override {
    getOperation()->walk([](AttentionOp op) {
      foldMaskRegion(op);
      // causal + window<L, R>: the causal bound clamps R to 0; one band.
      if (auto window = op.getWindowAttr(); window && op.getCausal()) {
        op.setWindowAttr(WindowAttr::get(op.getContext(), window.getLeft(), 0));
        op.setCausal(false);
      }
    });
  }
};

} // namespace
} // namespace attn
