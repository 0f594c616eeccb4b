//===- MmaSoftmaxKernel.cpp - tensor-core softmax attention (mma.sync) ----===//
//
// FlashAttention-2 shape on sm_80+: a block of 4 warps owns 64 query rows,
// each warp 16 rows. Per k tile of 32 keys staged in shared memory:
//   S = Q K^T    nvvm.mma.sync m16n8k16 (Q fragments kept in registers)
//   scores, masks (partial tiles only), online softmax on the fragments
//   O += P V     the S accumulator layout *is* the A-operand layout of the
//                next mma, so P never leaves registers
// Lane l of a warp holds, for g = l / 4 and t = l % 4, rows g and g + 8 of
// its 16 and columns 2t, 2t + 1 of every 8-wide n tile (PTX ISA, mma
// m16n8k16 fragment layouts). Row statistics are reduced over the 4 lanes of
// a row with xor shuffles.
//
//===----------------------------------------------------------------------===//

#include "FragmentSoftmax.h"
#include "MmaSync.h"
#include "TileRange.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"

namespace attn {

namespace {

constexpr int64_t kWarps = 4, kRowsPerWarp = 16, kBlockQ = kWarps * kRowsPerWarp;
constexpr int64_t kBlockK = 32;

/// The softmax kernel's operand loads on top of the shared ldmatrix/mma.sync.
class MmaBuilder : public MmaSyncBuilder {
public:
  MmaBuilder(ImplicitLocOpBuilder &b, Type elem) : MmaSyncBuilder(b, elem), lb(b) {}

  /// Two consecutive elements of a shared tile, packed.
  Value loadPair(Value tile, Value row, Value col) {
    Value v = vector::LoadOp::create(b, VectorType::get({2}, elem), tile, ValueRange{row, col});
    return packVector(v);
  }
  /// The two B-operand registers of one k16 x n8 tile whose k rows are rows
  /// [row, row + 16) of `tile` and n columns [col, col + 8): one ldmatrix
  /// .x2 (.trans when the tile is stored k-major, as V is). Lane l gives the
  /// address of row l % 16.
  std::array<Value, 2> ldmatrixB(Value tile, Value rowBase, Value laneRow, Value col,
                                 bool transpose) {
    return ldmatrixAt(tile, arith::AddIOp::create(b, rowBase, laneRow), col, transpose);
  }

  /// ldmatrix .x2 with this lane's own row address (row, col).
  std::array<Value, 2> ldmatrixAt(Value tile, Value row, Value col, bool transpose) {
    SmallVector<Value> regs = ldmatrix(tile, row, col, transpose, 2);
    return {regs[0], regs[1]};
  }

  LoopBuilder lb;
};

} // namespace

bool mmaSyncSoftmaxSupports(int64_t d, int64_t dv) {
  // One stage of Q, K and V tiles must fit the 48 KB of static shared memory
  // (ptxas rejects more: d = dv = 256 needs 64 KB).
  return d % 16 == 0 && dv % 8 == 0 && d <= 256 && dv <= 256 &&
         (kBlockQ * d + kBlockK * (d + dv)) * 2 <= 48 * 1024;
}

bool buildMmaSoftmaxKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                           func::FuncOp host, AttentionOp op, bool cpAsync) {
  auto qType = cast<MemRefType>(op.getQuery().getType());
  Type et = qType.getElementType();
  int64_t d = qType.getDimSize(3);
  int64_t dv = cast<MemRefType>(op.getValue().getType()).getDimSize(3);
  TilePlanAttr plan = op.getTilePlanAttr();
  if (!(et.isBF16() || et.isF16()) || !mmaSyncSoftmaxSupports(d, dv) ||
      plan.getBlockQ() != kBlockQ || plan.getBlockK() != kBlockK)
    return false;
  // cp.async needs 16-byte rows; two stages must fit the 48 KB of static
  // shared memory.
  int64_t stages = cpAsync ? 2 : 1;
  if (cpAsync && (d % 8 != 0 || dv % 8 != 0 ||
                  (kBlockQ * d + 2 * kBlockK * (d + dv)) * 2 > 48 * 1024))
    cpAsync = false, stages = 1;
  MLIRContext *ctx = b.getContext();
  IRMapping map;
  SmallVector<Value> shared;
  gpu::GPUFuncOp kernel = createKernel(
      b, module, host,
      {sharedTile(ctx, kBlockQ, d, et), sharedTile(ctx, stages * kBlockK, d, et),
       sharedTile(ctx, stages * kBlockK, dv, et)},
      map, shared);
  int64_t threads = kWarps * 32;
  kernel->setAttr("attn.block_threads", b.getI64IntegerAttr(threads));
  kernel->setAttr("attn.tensor_cores", b.getUnitAttr());
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(&kernel.getBody().front());
  KernelBuilder kb(b);
  LoopBuilder &lb = kb.lb;
  MmaBuilder mb(b, et);
  Value qs = shared[0];
  Value ks = shared[1];
  Value vs = shared[2];
  Value q = map.lookup(op.getQuery()), k = map.lookup(op.getKey());
  Value v = map.lookup(op.getValue()), out = map.lookup(op.getOut());

  Value tile = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value head = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  Value batch = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value warp = arith::DivUIOp::create(b, tid, lb.index(32));
  Value lane = arith::RemUIOp::create(b, tid, lb.index(32));
  Value g = arith::DivUIOp::create(b, lane, lb.index(4));
  Value t2 = arith::MulIOp::create(b, arith::RemUIOp::create(b, lane, lb.index(4)), lb.index(2));
  Value laneRow16 = arith::RemUIOp::create(b, lane, lb.index(16)); // ldmatrix row of this lane
  Value laneRow8 = arith::RemUIOp::create(b, lane, lb.index(8));
  Value laneColHalf = arith::MulIOp::create(
      b, arith::RemUIOp::create(b, arith::DivUIOp::create(b, lane, lb.index(8)), lb.index(2)),
      lb.index(8));
  Value seqQ = lb.dim(q, 2), seqK = lb.dim(k, 2);
  Value group = arith::DivUIOp::create(b, lb.dim(q, 1), lb.dim(k, 1));
  Value kvHead = arith::DivUIOp::create(b, head, group);
  Value rowBegin = arith::MulIOp::create(b, tile, lb.index(kBlockQ));
  // This lane's two rows within the block's tile, and in the sequence.
  Value r0 = arith::AddIOp::create(b, arith::MulIOp::create(b, warp, lb.index(kRowsPerWarp)), g);
  Value r1 = arith::AddIOp::create(b, r0, lb.index(8));
  std::array<Value, 2> rows = {arith::AddIOp::create(b, rowBegin, r0),
                               arith::AddIOp::create(b, rowBegin, r1)};
  ScoreEmitter emitter(op, b, seqQ, seqK, map);
  FragmentSoftmax softmax(kb, mb, emitter, op, batch, head, seqQ, seqK, rows, t2);

  kb.stageTileVectorized(q, batch, head, rowBegin, seqQ, qs, kBlockQ, d, tid, threads);
  gpu::BarrierOp::create(b);
  // Q fragments (A operand), kept in registers for the whole k loop.
  SmallVector<std::array<Value, 4>> qFrag;
  for (int64_t s = 0; s < d / 16; ++s) {
    Value c0 = arith::AddIOp::create(b, lb.index(s * 16), t2);
    Value c8 = arith::AddIOp::create(b, c0, lb.index(8));
    qFrag.push_back({mb.loadPair(qs, r0, c0), mb.loadPair(qs, r1, c0), mb.loadPair(qs, r0, c8),
                     mb.loadPair(qs, r1, c8)});
  }

  KTileRange range = emitKTileRange(b, plan, tile, seqQ, seqK);
  int64_t nTilesS = kBlockK / 8, nTilesO = dv / 8;
  // With cp.async: tile kt + 1 is fetched into the other stage while tile kt
  // is computed. Every iteration commits one group (empty on the last), so
  // wait_group 1 always means "tile kt has landed".
  auto fetch = [&](Value kt, Value stageRow) {
    Value colBegin = arith::MulIOp::create(b, kt, lb.index(kBlockK));
    kb.stageTileAsync(k, batch, kvHead, colBegin, seqK, ks, stageRow, kBlockK, d, tid, threads);
    kb.stageTileAsync(v, batch, kvHead, colBegin, seqK, vs, stageRow, kBlockK, dv, tid, threads);
  };
  if (cpAsync) {
    lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::slt, range.begin, range.end),
              [&] { fetch(range.begin, lb.index(0)); });
    NVVM::CpAsyncCommitGroupOp::create(b);
  }
  SmallVector<Value> state = kb.forWithState(
      range.begin, range.end, lb.index(1), SoftmaxState::initial(lb, nTilesO * 4).flatten(),
      [&](Value kt, ValueRange st) {
        Value colBegin = arith::MulIOp::create(b, kt, lb.index(kBlockK));
        Value stageRow = lb.index(0);
        if (cpAsync) {
          Value i = arith::SubIOp::create(b, kt, range.begin);
          Value stage = arith::RemUIOp::create(b, i, lb.index(2));
          stageRow = arith::MulIOp::create(b, stage, lb.index(kBlockK));
          Value next = arith::AddIOp::create(b, kt, lb.index(1));
          Value nextRow = arith::SubIOp::create(b, lb.index(kBlockK), stageRow);
          lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::slt, next, range.end),
                    [&] { fetch(next, nextRow); });
          NVVM::CpAsyncCommitGroupOp::create(b);
          NVVM::CpAsyncWaitGroupOp::create(b, 1);
        } else {
          kb.stageTileVectorized(k, batch, kvHead, colBegin, seqK, ks, kBlockK, d, tid, threads);
          kb.stageTileVectorized(v, batch, kvHead, colBegin, seqK, vs, kBlockK, dv, tid, threads);
        }
        gpu::BarrierOp::create(b);
        Value needMask = emitNeedsElementMask(b, op, range, kt);

        // S = Q K^T: K is n-major (a key's dims are contiguous): plain
        // ldmatrix, the lane's row is key j*8 + lane%8, its column half
        // (lane/8)%2.
        SmallVector<Value> acc;
        for (int64_t j = 0; j < nTilesS; ++j) {
          SmallVector<Value> tileAcc(4, lb.f32(0.0));
          Value keyRow = arith::AddIOp::create(
              b, stageRow, arith::AddIOp::create(b, lb.index(j * 8), laneRow8));
          for (int64_t st2 = 0; st2 < d / 16; ++st2) {
            Value col = arith::AddIOp::create(b, lb.index(st2 * 16), laneColHalf);
            auto frag = mb.ldmatrixAt(ks, keyRow, col, /*transpose=*/false);
            tileAcc = mb.mma(qFrag[st2], {frag[0], frag[1]}, tileAcc);
          }
          acc.append(tileAcc);
        }
        SmallVector<Value> s = softmax.scores(acc, colBegin, needMask);
        SmallVector<Value> p;
        SoftmaxState next = softmax.update(SoftmaxState::unflatten(st), s, p);

        // O = alpha O + P V.
        for (int64_t u = 0; u < kBlockK / 16; ++u) {
          std::array<Value, 4> aFrag = softmax.pOperand(p, u);
          for (int64_t n = 0; n < nTilesO; ++n) {
            auto frag = mb.ldmatrixB(vs, arith::AddIOp::create(b, stageRow, lb.index(u * 16)),
                                     laneRow16, lb.index(n * 8),
                                     /*transpose=*/true);
            SmallVector<Value> c(next.o.begin() + n * 4, next.o.begin() + n * 4 + 4);
            SmallVector<Value> dOut = mb.mma(aFrag, {frag[0], frag[1]}, c);
            std::copy(dOut.begin(), dOut.end(), next.o.begin() + n * 4);
          }
        }
        gpu::BarrierOp::create(b);
        return next.flatten();
      });

  softmax.finalize(SoftmaxState::unflatten(state), out,
                   op.getLse() ? map.lookup(op.getLse()) : Value());
  gpu::ReturnOp::create(b);
  return true;
}

} // namespace attn
