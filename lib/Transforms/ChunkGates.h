//===- ChunkGates.h - a chunk's scalar gates for the wgmma linear kernels -===//
//
// The producer warp of the Hopper chunkwise kernels (WgmmaChunkwiseLinear
// Kernel.cpp, WgmmaSplitStateLinearKernel.cpp) turns a 64-step chunk's scalar
// or head-constant gates into G = log2(e) * the in-chunk inclusive cumsum of
// the natural-log gates, one f32 per step in shared memory. Lane l owns steps
// 2l and 2l + 1.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_LIB_TRANSFORMS_CHUNKGATES_H
#define ATTN_LIB_TRANSFORMS_CHUNKGATES_H

#include "GpuKernelCommon.h"
#include "ScoreEmitter.h"

namespace attn {

/// Lane `lane`'s two raw gates of the chunk from step t0 (0 past `seq`, so
/// G stays constant there): issued early, before the producer's waits.
inline void loadChunkScalarGates(ImplicitLocOpBuilder &b, const LinearProblem &p, Value batch,
                                 Value head, Value t0, Value lane, Value seq, Value raw[2]) {
  KernelBuilder kb(b);
  LoopBuilder &lb = kb.lb;
  for (int64_t i = 0; i < 2; ++i) {
    Value pos = arith::AddIOp::create(
        b, t0, arith::AddIOp::create(b, arith::MulIOp::create(b, lane, lb.index(2)),
                                     lb.index(i)));
    raw[i] = kb.ifWithResults(
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, pos, seq), {b.getF32Type()},
        [&] {
          return SmallVector<Value>{*p.gate == GateKind::Scalar
                                        ? lb.loadF32(p.gates, {batch, head, pos})
                                        : lb.loadF32(p.gates, {head})};
        },
        [&] { return SmallVector<Value>{lb.f32(0.0)}; })[0];
  }
}

/// G[2l], G[2l + 1] = log2(e) * the inclusive prefix sums (the pair's own
/// sums plus the exclusive scan of the pair totals over the lanes), stored
/// at gView[first + 2l ..].
inline void scanChunkScalarGates(ImplicitLocOpBuilder &b, Value raw[2], Value lane, Value gView,
                                 Value first) {
  LoopBuilder lb(b);
  auto fadd = [&](Value x, Value y) { return arith::AddFOp::create(b, x, y).getResult(); };
  auto fmul = [&](Value x, Value y) { return arith::MulFOp::create(b, x, y).getResult(); };
  auto laneAtLeast = [&](int64_t v) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::uge, lane, lb.index(v));
  };
  Value x0 = fmul(raw[0], lb.f32(kLog2e));
  Value x1 = fadd(x0, fmul(raw[1], lb.f32(kLog2e)));
  Value incl = x1;
  for (int32_t offset = 1; offset < 32; offset *= 2) {
    Value up = gpu::ShuffleOp::create(b, incl, offset, 32, gpu::ShuffleMode::UP)
                   .getShuffleResult();
    incl = arith::SelectOp::create(b, laneAtLeast(offset), fadd(incl, up), incl);
  }
  Value excl =
      gpu::ShuffleOp::create(b, incl, 1, 32, gpu::ShuffleMode::UP).getShuffleResult();
  excl = arith::SelectOp::create(b, laneAtLeast(1), excl, lb.f32(0.0));
  Value pair = vector::FromElementsOp::create(b, VectorType::get({2}, b.getF32Type()),
                                              ValueRange{fadd(excl, x0), fadd(excl, x1)});
  vector::StoreOp::create(
      b, pair, gView,
      ValueRange{arith::AddIOp::create(b, first, arith::MulIOp::create(b, lane, lb.index(2)))},
      false, llvm::MaybeAlign(8));
}

} // namespace attn

#endif // ATTN_LIB_TRANSFORMS_CHUNKGATES_H
