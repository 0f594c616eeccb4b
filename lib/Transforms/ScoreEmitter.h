//===- ScoreEmitter.h - per-element scores and masks of attn.attention ----===//
//
// The element-level semantics of one attention op (score modifiers in their
// fixed order, the visibility predicate, inlined regions), emitted at a given
// (batch, head, row, col). Shared by every lowering (CPU tiles, GPU kernels)
// so the variants mean the same thing on every target.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_LIB_TRANSFORMS_SCOREEMITTER_H
#define ATTN_LIB_TRANSFORMS_SCOREEMITTER_H

#include "LoopBuilder.h"
#include "attn/IR/AttnOps.h"
#include "mlir/IR/IRMapping.h"

#include <optional>

namespace attn {

constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2 = 0.6931471805599453;

/// Which masks ScoreEmitter::visible() tests: kernels that test some of them
/// otherwise (per tile, or as an interval of keys) leave them out.
struct MaskParts {
  bool diagonal = true;  ///< causal and window bounds
  bool blockMask = true; ///< the block-sparse layout
  /// The key's document id, where the caller has it already (the Hopper
  /// kernel stages a tile's ids in shared memory); null: loaded.
  mlir::Value kvDocId;
  /// The query's document id, where the caller has it already; null: loaded.
  mlir::Value qDocId;
};

class ScoreEmitter {
public:
  /// `operands` maps the op's operands to the values to use at the emission
  /// point (a GPU kernel's arguments, or the op's own operands).
  ScoreEmitter(AttentionOp op, mlir::ImplicitLocOpBuilder &b, mlir::Value seqQ,
               mlir::Value seqK, mlir::IRMapping operands);

  /// Whether scores need their natural-log value (soft-cap, score_mod).
  bool needsNaturalScores();

  /// When the base-2 score is the raw dot product times a positive constant
  /// (no soft-cap, ALiBi or score_mod), that constant: the max can then be
  /// taken on raw products and the scale folded into the exponent's FFMA.
  std::optional<double> linearScale();

  /// When soft-cap is the only score modifier (no ALiBi, no score_mod) and
  /// the scale is positive: (a, c) such that the base-2 score is
  /// c * tanh(a * q.k), a = scale / cap, c = cap * log2(e). A softmax kernel
  /// then takes t = tanh(a q.k) as its raw score and folds c into the
  /// exponent's FFMA, as with linearScale(): one multiply and one tanh per
  /// score instead of four multiplies and a tanh.
  std::optional<std::pair<double, double>> softcapScales();

  /// When ALiBi is the only score modifier (no soft-cap, no score_mod) and
  /// the masks keep every visible key on or below the bottom-right aligned
  /// diagonal (col <= row + Sk - Sq: causal, a window with right <= 0, or
  /// such a bound in mask_mod), the distance needs no |.| and the base-2
  /// score is s * c + slope * log2(e) * (col - row - Sk + Sq): that constant
  /// c. The bias then splits into a per-row and a per-column term, and a
  /// softmax kernel may drop the per-row one (FragmentSoftmax).
  std::optional<double> rowShiftedAlibiScale();

  /// The ALiBi slope of (batch, head) (natural units; slopes are per head
  /// or per batch and head).
  mlir::Value alibiSlope(mlir::Value batch, mlir::Value head);

  /// The modified score in the base-2 domain from the raw dot product q.k:
  /// scale, soft-cap, ALiBi, score_mod, times log2(e) (folded where possible).
  /// `alibiDistance`, when given, is |row + Sk - Sq - col| already as f32
  /// (the fragment kernels derive it per element with one add from per-tile
  /// values, instead of an integer-to-float conversion per element, which
  /// runs at the rate of the exponentials).
  mlir::Value score(mlir::Value dot, mlir::Value batch, mlir::Value head,
                    mlir::Value row, mlir::Value col, mlir::Value alibiDistance = {});

  /// Whether key `col` is visible to query `row` under the masks of the op
  /// that `parts` selects (diagonal bounds, block layout; documents and
  /// mask_mod always).
  mlir::Value visible(mlir::Value batch, mlir::Value head, mlir::Value row,
                      mlir::Value col, MaskParts parts = {});

  /// Whether visible() with `parts` tests anything.
  bool hasMasks(MaskParts parts);

  /// The keys the diagonal bounds and the sequence end leave query `row`, as
  /// an interval [lo, hi] (inclusive): `lo <= col <= hi` iff `col < Sk` and
  /// the diagonal bounds hold at min(col, Sk - 1). `lo` is null without a
  /// lower bound.
  std::pair<mlir::Value, mlir::Value> visibleInterval(mlir::Value row);

  /// Index into a "B or 1" / "Hq or 1" dimension of the block layout.
  mlir::Value layoutIndex(mlir::Value layout, int64_t dim, mlir::Value index);

  /// The value the op operand `v` has at the emission point.
  mlir::Value operand(mlir::Value v) const { return operands.lookupOrDefault(v); }

private:
  mlir::Value inlineRegion(mlir::Region &region, llvm::ArrayRef<mlir::Value> leadingArgs);

  AttentionOp op;
  mlir::ImplicitLocOpBuilder &b;
  LoopBuilder lb;
  mlir::Value seqQ, seqK;
  mlir::IRMapping operands;
};

} // namespace attn

#endif // ATTN_LIB_TRANSFORMS_SCOREEMITTER_H
