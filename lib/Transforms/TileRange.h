//===- TileRange.h - the k tiles one q tile visits, from the tile plan ----===//
//
// Every softmax lowering (CPU tiles, SIMT and tensor-core kernels) walks the
// same k-tile ranges of an #attn.tile_plan; this is the one place that turns
// the plan's affine maps into values.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_LIB_TRANSFORMS_TILERANGE_H
#define ATTN_LIB_TRANSFORMS_TILERANGE_H

#include "attn/IR/AttnOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace attn {

/// For one q tile: k tiles in [begin, end) may hold visible pairs; the ones
/// in [fullBegin, fullEnd) are full. The full range is clamped so that
/// [begin, fullBegin), [fullBegin, fullEnd), [fullEnd, end) partition the
/// visited tiles.
struct KTileRange {
  mlir::Value begin, fullBegin, fullEnd, end;
};

/// Evaluates the plan's maps at q tile `tile` (symbols Sq, Sk). With
/// `withFullRange` false only begin and end are computed.
KTileRange emitKTileRange(mlir::ImplicitLocOpBuilder &b, TilePlanAttr plan, mlir::Value tile,
                          mlir::Value seqQ, mlir::Value seqK, bool withFullRange = true);

/// Whether k tile `kt` needs element masks: it lies outside the full range,
/// or the op has masks known only per element (an unsummarized mask_mod) or
/// at run time (block layout, document ids), which the kernels apply per
/// element.
mlir::Value emitNeedsElementMask(mlir::ImplicitLocOpBuilder &b, AttentionOp op,
                                 const KTileRange &range, mlir::Value kt);

} // namespace attn

#endif // ATTN_LIB_TRANSFORMS_TILERANGE_H
