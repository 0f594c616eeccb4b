//===- MaskAnalysis.h - masks as diagonal bounds ----------------*- C++ -*-===//
//
// Summarizes the static part of an attention mask as diagonal bounds on
// (q, k), the form from which tile classification follows symbolically. Like
// a mask trait that answers both per element and per tile, but derived from
// the IR: causal, window and the recognizable conjuncts of a mask_mod region.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_ANALYSIS_MASKANALYSIS_H
#define ATTN_ANALYSIS_MASKANALYSIS_H

#include "attn/IR/AttnOps.h"
#include "llvm/ADT/SmallVector.h"

namespace attn {

/// `k <= q + aligned*(Sk - Sq) + offset` (upper) or
/// `k >= q + aligned*(Sk - Sq) + offset` (lower).
struct DiagonalBound {
  bool isUpper = true;
  bool aligned = true;
  int64_t offset = 0;
  bool operator==(const DiagonalBound &o) const {
    return isUpper == o.isUpper && aligned == o.aligned && offset == o.offset;
  }
};

/// Bounds implied by a mask_mod region. `complete` is true when the region is
/// exactly the conjunction of `bounds` (so it can be dropped in their favour).
struct RegionMaskSummary {
  llvm::SmallVector<DiagonalBound> bounds;
  bool complete = true;
};
RegionMaskSummary summarizeMaskRegion(mlir::Region &maskMod);

/// Everything static about an op's mask.
struct MaskSummary {
  llvm::SmallVector<DiagonalBound> bounds; ///< causal, window and region bounds
  bool customNeedsElementMask = false;     ///< a mask_mod region not fully summarized
  bool blockSparse = false;                ///< run-time block layout
  bool documents = false;                  ///< run-time document ids
};
MaskSummary summarizeMask(AttentionOp op);

} // namespace attn

#endif // ATTN_ANALYSIS_MASKANALYSIS_H
