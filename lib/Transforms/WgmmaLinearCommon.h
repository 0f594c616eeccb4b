//===- WgmmaLinearCommon.h - pieces both Hopper linear kernels emit ------===//
//
// The one-consumer chunkwise kernel (WgmmaChunkwiseLinearKernel.cpp) and the
// split-state kernel (WgmmaSplitStateLinearKernel.cpp) lay out Q, K and the
// rounded state S_bf16 the same way (64-column boxes, rows of 128 bytes, the
// TMA's 128-byte swizzle: 16-byte chunk n / 8 of row r at (n / 8) ^ (r % 8))
// and hold O and S in wgmma accumulators (lane: rows 16 warp + g (+ 8),
// columns 8 j + t2 (+ 1) of n8 tile j). These write those layouts.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_LIB_TRANSFORMS_WGMMALINEARCOMMON_H
#define ATTN_LIB_TRANSFORMS_WGMMALINEARCOMMON_H

#include "FragmentSoftmax.h"
#include "GpuKernelCommon.h"

namespace attn {

/// What both Hopper linear kernels cover and need: f16/bf16 Q, K, V of one
/// element type, head dims 64 or 128, the identity feature map, no
/// normalizer, and Q, K, V as the host function's arguments (each TMA tensor
/// map describes one).
struct WgmmaLinearShape {
  Type et;
  int64_t dk, dv, qArg, kArg, vArg;
};
inline std::optional<WgmmaLinearShape> wgmmaLinearShape(func::FuncOp host,
                                                        const LinearProblem &p) {
  auto qType = cast<MemRefType>(p.query.getType());
  auto kType = cast<MemRefType>(p.key.getType());
  auto vType = cast<MemRefType>(p.value.getType());
  WgmmaLinearShape s{qType.getElementType(), qType.getDimSize(3), vType.getDimSize(3),
                     hostArgumentIndex(host, p.query), hostArgumentIndex(host, p.key),
                     hostArgumentIndex(host, p.value)};
  if (!(s.et.isBF16() || s.et.isF16()) || kType.getElementType() != s.et ||
      vType.getElementType() != s.et || (s.dk != 64 && s.dk != 128) ||
      (s.dv != 64 && s.dv != 128) || p.normalize || p.featureMap != FeatureMap::Identity ||
      s.qArg < 0 || s.kArg < 0 || s.vArg < 0)
    return std::nullopt;
  return s;
}

/// A lane's place in a warpgroup's m64 accumulator fragment.
struct AccumulatorLane {
  Value g, t2, row[2]; ///< lane / 4; 2 (lane % 4); rows 16 warp + g, + 8
};

/// S rounded to `et` into `sView` ([tiles / 8 value halves of halfElems][Dk
/// rows][64], swizzled) from accumulators s[((h * tiles) + j) * 4 + e] (state
/// rows 64 h + the lane's rows): 4-byte pairs, a warp's 32 lanes on 32 banks.
inline void writeSwizzledState(ImplicitLocOpBuilder &b, ArrayRef<Value> s, Value sView,
                               int64_t rowBoxes, int64_t tiles, int64_t halfElems,
                               const AccumulatorLane &l, Type et) {
  LoopBuilder lb(b);
  auto idx = [&](int64_t v) { return lb.index(v); };
  auto add = [&](Value x, Value y) { return arith::AddIOp::create(b, x, y).getResult(); };
  auto mul = [&](Value x, Value y) { return arith::MulIOp::create(b, x, y).getResult(); };
  VectorType pairF = VectorType::get({2}, b.getF32Type()), pairE = VectorType::get({2}, et);
  for (int64_t h = 0; h < rowBoxes; ++h)
    for (int64_t j = 0; j < tiles; ++j)
      for (int64_t r = 0; r < 2; ++r) {
        Value d = add(idx(64 * h), l.row[r]);
        Value chunk = arith::XOrIOp::create(b, idx(j % 8), l.g);
        Value index = add(mul(d, idx(64)), add(mul(chunk, idx(8)), l.t2));
        if (j >= 8)
          index = add(idx((j / 8) * halfElems), index);
        int64_t at = (h * tiles + j) * 4 + 2 * r;
        Value v = vector::FromElementsOp::create(b, pairF, ValueRange{s[at], s[at + 1]});
        vector::StoreOp::create(b, arith::TruncFOp::create(b, pairE, v), sView,
                                ValueRange{index}, false, llvm::MaybeAlign(4));
      }
}

/// K's rows scaled into `dst` (`src` itself: in place) in the swizzled
/// [Dk / 64][64][64] layout: this thread's row of the chunk and its part
/// `part` of `parts` of the row's Dk / 8 16-byte chunks, chunk i at (i ^ (row
/// % 8)) of its box (a row scale: the swizzle only spreads the banks), times
/// `w` (a vector<8xf32> splat).
inline void scaleSwizzledRow(ImplicitLocOpBuilder &b, Value src, Value dst, Value row,
                             Value part, Value w, int64_t dk, Type et, int64_t parts = 2) {
  LoopBuilder lb(b);
  auto idx = [&](int64_t v) { return lb.index(v); };
  auto add = [&](Value x, Value y) { return arith::AddIOp::create(b, x, y).getResult(); };
  auto mul = [&](Value x, Value y) { return arith::MulIOp::create(b, x, y).getResult(); };
  VectorType vec8 = VectorType::get({8}, et), vec8f = VectorType::get({8}, b.getF32Type());
  int64_t perThread = dk / 8 / parts;
  for (int64_t i = 0; i < perThread; ++i) {
    Value cidx = add(mul(part, idx(perThread)), idx(i));
    Value box = arith::DivUIOp::create(b, cidx, idx(8));
    Value phys = arith::XOrIOp::create(b, arith::RemUIOp::create(b, cidx, idx(8)),
                                       arith::RemUIOp::create(b, row, idx(8)));
    Value index = add(mul(box, idx(64 * 64)), add(mul(row, idx(64)), mul(phys, idx(8))));
    Value x = vector::LoadOp::create(b, vec8, src, ValueRange{index}, false,
                                     llvm::MaybeAlign(16));
    x = arith::MulFOp::create(b, arith::ExtFOp::create(b, vec8f, x), w);
    vector::StoreOp::create(b, arith::TruncFOp::create(b, vec8, x), dst, ValueRange{index},
                            false, llvm::MaybeAlign(16));
  }
}

/// A = Q K^T's accumulators (m64n64: 8 n8 tiles of 4) causally masked (key
/// <= row within the chunk) and, when `decay` is given (one factor per
/// accumulator), decayed, then packed as the A operand of A V (4 registers
/// per k16 step: tiles 2u and 2u + 1, rows g and g + 8).
inline SmallVector<Value> causalChunkOperand(ImplicitLocOpBuilder &b, FragmentBuilder &fb,
                                             SmallVector<Value> a, ArrayRef<Value> decay,
                                             const AccumulatorLane &l) {
  LoopBuilder lb(b);
  for (int64_t j = 0; j < 8; ++j) {
    for (int64_t e = 0; e < 4; ++e) {
      Value v = a[j * 4 + e];
      if (!decay.empty())
        v = arith::MulFOp::create(b, v, decay[j * 4 + e]);
      Value key = arith::AddIOp::create(b, lb.index(j * 8 + e % 2), l.t2);
      Value visible = arith::CmpIOp::create(b, arith::CmpIPredicate::ule, key, l.row[e / 2]);
      a[j * 4 + e] = arith::SelectOp::create(b, visible, v, lb.f32(0.0));
    }
  }
  SmallVector<Value> regs;
  for (int64_t u = 0; u < 4; ++u) {
    const Value *lo = &a[(2 * u) * 4], *hi = &a[(2 * u + 1) * 4];
    regs.append({fb.packF32(lo[0], lo[1], true), fb.packF32(lo[2], lo[3], true),
                 fb.packF32(hi[0], hi[1], true), fb.packF32(hi[2], hi[3], true)});
  }
  return regs;
}

/// scale * O of a chunk from step t0 into out[batch, head, t0 + row, colBase
/// + ...] (colBase may be null: 0), rows < seq only, as aligned pairs.
inline void storeOutputPairs(ImplicitLocOpBuilder &b, ArrayRef<Value> o, Value out,
                             Value batch, Value head, Value t0, Value seq, Value colBase,
                             int64_t tiles, double scale, const AccumulatorLane &l) {
  LoopBuilder lb(b);
  Type f32 = b.getF32Type();
  Type outEt = cast<MemRefType>(out.getType()).getElementType();
  int64_t pairBytes = 2 * ((outEt.getIntOrFloatBitWidth() + 7) / 8);
  auto add = [&](Value x, Value y) { return arith::AddIOp::create(b, x, y).getResult(); };
  auto fmul = [&](Value x, Value y) { return arith::MulFOp::create(b, x, y).getResult(); };
  for (int r = 0; r < 2; ++r) {
    Value pos = add(t0, l.row[r]);
    lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::slt, pos, seq), [&] {
      for (int64_t j = 0; j < tiles; ++j) {
        Value pair = vector::FromElementsOp::create(
            b, VectorType::get({2}, f32),
            ValueRange{fmul(o[j * 4 + 2 * r], lb.f32(scale)),
                       fmul(o[j * 4 + 2 * r + 1], lb.f32(scale))});
        if (outEt != f32)
          pair = arith::TruncFOp::create(b, VectorType::get({2}, outEt), pair);
        Value col = add(lb.index(j * 8), l.t2);
        if (colBase)
          col = add(colBase, col);
        vector::StoreOp::create(b, pair, out, ValueRange{batch, head, pos, col}, false,
                                llvm::MaybeAlign(pairBytes));
      }
    });
  }
}

} // namespace attn

#endif // ATTN_LIB_TRANSFORMS_WGMMALINEARCOMMON_H
