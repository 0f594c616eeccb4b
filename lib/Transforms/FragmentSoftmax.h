//===- FragmentSoftmax.h - online softmax on tensor-core accumulators -----===//
//
// Both tensor-core kernels (mma.sync m16n8k16 and Hopper wgmma m64nNk16) hand
// a warp's 16 rows to its lanes the same way: lane l holds, for g = l / 4 and
// t = l % 4, rows g and g + 8 and columns 2t, 2t + 1 of every 8-wide n tile,
// as 4 f32 values per tile (row g: [0], [1]; row g + 8: [2], [3]). The same
// layout, rounded to 16 bits, is the A-operand register layout of the next
// product (P V), so P never leaves registers. This file holds everything that
// depends only on that layout: scores and masks, the online-softmax update,
// P's operand packing, and the final normalisation and stores.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_LIB_TRANSFORMS_FRAGMENTSOFTMAX_H
#define ATTN_LIB_TRANSFORMS_FRAGMENTSOFTMAX_H

#include "GpuKernelCommon.h"
#include "ScoreEmitter.h"

#include <array>
#include <functional>

namespace attn {

/// 2^x (f32 or a vector of f32) as ex2.approx.ftz.f32 per element: one
/// MUFU.EX2, no denormal fix-up; results below 2^-126 are 0.
Value fastExp2(ImplicitLocOpBuilder &b, Value x);

/// 2^x for x <= 8 on the FMA and integer pipes (no MUFU): round x to the
/// nearest integer j by the 1.5 * 2^23 trick, a degree-3 polynomial for
/// 2^(x - j) on [-0.5, 0.5] (relative error 7.5e-5, far below the bf16
/// rounding of P), j added to the exponent bits. 0 below x = -125 (and for
/// -inf): weights of 2^-125 and less vanish in any sum with the row's max
/// weight 1.
Value polyExp2(ImplicitLocOpBuilder &b, Value x);

/// Packing and lane reductions on fragments of element type `elem`.
class FragmentBuilder {
public:
  FragmentBuilder(ImplicitLocOpBuilder &b, Type elem);

  /// Two f32 values rounded to the element type and packed (packVector).
  Value packF32(Value x, Value y, bool asI32 = false);
  /// An operand register: f16 pairs stay vector<2xf16> (what nvvm.mma.sync
  /// takes); bf16 pairs, or any pair when `asI32`, become one i32.
  Value packVector(Value v2, bool asI32 = false);
  /// Reduces over the 4 lanes that share a row (xor 1, xor 2).
  Value quadReduce(Value v, bool isMax);

  ImplicitLocOpBuilder &b;
  Type elem, f32;
};

/// The per-row state of one lane: running max and partial sum of its two
/// rows, and the O accumulator fragments (dv / 8 tiles of 4 f32).
struct SoftmaxState {
  Value max[2], sum[2];
  SmallVector<Value> o;
  /// Set by FragmentSoftmax::update: the factor O was rescaled by (not
  /// carried).
  Value alpha[2];
  /// Set by FragmentSoftmax::update with `lazyRescale`: whether any lane of
  /// the warp has an alpha other than 1 (warp-uniform i1); O needs no
  /// rescale when it is false.
  Value rescale;

  /// Flattened as loop-carried values: max0, max1, sum0, sum1, o...
  SmallVector<Value> flatten() const;
  static SoftmaxState unflatten(ValueRange values);
  static SoftmaxState initial(LoopBuilder &lb, int64_t oValues);
};

/// Where finalize() may stage a warp's 16 rows of O in shared memory before
/// writing them out as whole rows (see finalize). Columns come in 64-wide
/// boxes of 16 rows x 128 bytes, `boxBytes` apart, the 16-byte chunk c of
/// row r at chunk c ^ (r % 8) (the 128-byte swizzle, so that neither the
/// fragment-order writes nor the row-order reads conflict on banks).
struct OutputStaging {
  /// i32 shared address of the warp's row 0 in the first box.
  Value base;
  int64_t boxBytes;
  /// Read every staged row back before the first global store (instead of a
  /// read and a guarded store per step, each read's latency exposed behind
  /// the previous step's branch), and call `afterReads` (if set) between the
  /// reads and the stores: where the caller hands the rows' shared memory on
  /// without waiting for the global stores.
  bool readsFirst = false;
  std::function<void()> afterReads;
};

class FragmentSoftmax {
public:
  /// `rows` are this lane's two query rows (in the sequence); `t2` is
  /// 2 * (lane % 4).
  FragmentSoftmax(KernelBuilder &kb, FragmentBuilder &fb, ScoreEmitter &emitter,
                  AttentionOp op, Value batch, Value head, Value seqQ, Value seqK,
                  std::array<Value, 2> rows, Value t2, bool tileOffsetMasks = false,
                  bool blockMaskPerTile = false);

  /// Scores of one k tile's S accumulators (base 2, or raw products when the
  /// score is linear: update() knows which) (n tiles x 4 values,
  /// keys from `colBegin`), -inf where masked. Masks are evaluated only when
  /// `needMask` holds (partial tiles).
  ///
  /// `kvDocIdAt`, where given, supplies the document id of the lane's key at
  /// offset c (tile * 8 + e % 2, before the lane's 2 * (lane % 4)) of the
  /// tile, instead of a load from the kv id tensor.
  SmallVector<Value> scores(ArrayRef<Value> acc, Value colBegin, Value needMask,
                            const std::function<Value(int64_t)> &kvDocIdAt = nullptr);

  /// One online-softmax step: the new max and sum, O rescaled, and P
  /// (same layout as `s`, f32) for the P V product.
  ///
  /// With `lazyRescale` (FlashAttention-4's conditional rescale), a row keeps
  /// its running max unless the tile raises it by more than
  /// kLazyRescaleLog2 (base 2): the weights are then taken against the stale
  /// max, so they stay below 2^kLazyRescaleLog2, and the result is the same
  /// softmax (the max only has to be the same one for the sum and for O).
  /// Rows that keep their max have alpha = 1 exactly; `rescale` says whether
  /// the warp has any other, so the caller can skip O's multiplications.
  ///
  /// With `polyExp2Eighths` = k > 0, the weights of k in every 8 elements
  /// are taken by polyExp2 on the FMA pipe instead of MUFU.EX2
  /// (FlashAttention-4): where the exponentials bound the tile (soft-cap's
  /// tanh and exp2 are both MUFU; head dim 64 halves the products per
  /// weight), the two pipes share the work.
  SoftmaxState update(const SoftmaxState &state, ArrayRef<Value> s, SmallVector<Value> &p,
                      bool lazyRescale = false, int64_t polyExp2Eighths = 0);

  /// Base-2 headroom of a stale max (lazyRescale): weights up to 2^8 = 256,
  /// exact in f16/bf16 and far from f32 overflow over any key count.
  static constexpr double kLazyRescaleLog2 = 8.0;

  /// P's A-operand registers for k16 step u (keys 16u .. 16u + 15): 4
  /// packed pairs, rows g / g + 8, columns 2t / 2t + 8.
  std::array<Value, 4> pOperand(ArrayRef<Value> p, int64_t u, bool asI32 = false);

  /// out = O / sum (zero for rows that saw no key), lse on lane t = 0.
  ///
  /// With `staging` (16-bit O in the inputs' element type, head dim a
  /// multiple of 64), the warp writes its fragments to shared memory first
  /// and then each lane stores 16 contiguous bytes of a row: a warp's store
  /// covers whole rows (4 cache lines at D = 128) instead of 16 bytes of 8
  /// rows (8 lines for 128 bytes). The warp must own the staging bytes; they
  /// are free again when finalize returns (every lane's reads are done).
  void finalize(const SoftmaxState &state, Value out, Value lse,
                const OutputStaging *staging = nullptr);

private:
  /// finalize()'s stores through shared memory (`inv`: the rows' 1 / sum).
  void storeStaged(const SoftmaxState &state, ArrayRef<Value> inv, Value out,
                   const OutputStaging &staging);

  KernelBuilder &kb;
  FragmentBuilder &fb;
  ScoreEmitter &emitter;
  AttentionOp op;
  Value batch, head, seqQ, seqK, t2;
  std::array<Value, 2> rows, evalRows;
  /// Set when the score is the raw product times this constant: scores()
  /// then returns raw products and update() folds the scale into one FFMA
  /// per element (FlashAttention-3's trick).
  std::optional<double> rawScale;
  /// With soft-cap alone (ScoreEmitter::softcapScales): scores() returns
  /// tanh(acc * softcapInner) and rawScale is cap * log2(e).
  std::optional<double> softcapInner;
  /// Set when ALiBi's bias splits by row (ScoreEmitter::rowShiftedAlibiScale,
  /// the constant c): scores are s * c + slope * log2(e) * (col - base),
  /// base = this lane's first row's diagonal evalRows[0] + Sk - Sq. Each row's
  /// scores are its true ones plus slope * log2(e) * (row + Sk - Sq - base),
  /// a constant the softmax does not see; finalize() takes it out of the lse.
  std::optional<double> alibiShiftScale;
  /// With alibiShiftScale: slope * log2(e), and base (index).
  Value alibiSlopeLog2, alibiBase;
  /// The diagonal bounds and the sequence end (ScoreEmitter::visibleInterval)
  /// of statically masked tiles are tested on the key's i32 offset in the
  /// tile (see scores()).
  bool tileOffsetMasks;
  /// The kernel visits only tiles whose block-sparse block is kept (a tile
  /// lies in one block): no per-element block-mask test.
  bool blockMaskPerTile;
};

} // namespace attn

#endif // ATTN_LIB_TRANSFORMS_FRAGMENTSOFTMAX_H
