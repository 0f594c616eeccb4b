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

#include "GpuKernelCommon.h"
#include "ScoreEmitter.h"
#include "TileRange.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"

namespace attn {

namespace {

constexpr int64_t kWarps = 4, kRowsPerWarp = 16, kBlockQ = kWarps * kRowsPerWarp;
constexpr int64_t kBlockK = 32;

class MmaBuilder {
public:
  MmaBuilder(ImplicitLocOpBuilder &b, Type elem) : b(b), lb(b), elem(elem) {
    NVVM::MMATypes t = elem.isBF16() ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
    types = {t, t};
    f32 = b.getF32Type();
    accType = LLVM::LLVMStructType::getLiteral(b.getContext(), {f32, f32, f32, f32});
  }

  /// Two consecutive elements of a shared tile, packed in an i32.
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
    VectorType vt = VectorType::get({2, 2}, elem);
    Value m = nvgpu::LdMatrixOp::create(b, vt, tile, ValueRange{row, col},
                                        b.getBoolAttr(transpose), b.getI32IntegerAttr(2));
    return {packVector(vector::ExtractOp::create(b, m, 0)),
            packVector(vector::ExtractOp::create(b, m, 1))};
  }

  /// Two f32 values rounded to the element type and packed.
  Value packF32(Value x, Value y) {
    Value v = vector::FromElementsOp::create(b, VectorType::get({2}, f32), ValueRange{x, y});
    v = arith::TruncFOp::create(b, VectorType::get({2}, elem), v);
    return packVector(v);
  }
  /// An mma operand register: f16 pairs stay vector<2xf16>; bf16 pairs are
  /// packed into an i32 (the form nvvm.mma.sync accepts for each).
  Value packVector(Value v2) {
    if (elem.isF16())
      return v2;
    Value asInt = vector::BitCastOp::create(b, VectorType::get({1}, b.getI32Type()), v2);
    return vector::ExtractOp::create(b, asInt, 0);
  }

  /// D = A B + C for one m16n8k16 tile; c and the result are 4 f32 values.
  SmallVector<Value> mma(ArrayRef<Value> a, ArrayRef<Value> bFrag, ArrayRef<Value> c) {
    auto op = NVVM::MmaOp::create(b, accType, a, bFrag, c, {16, 8, 16}, std::nullopt,
                                  std::nullopt, types,
                                  std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                                                 NVVM::MMALayout::col});
    SmallVector<Value> d;
    for (int64_t i = 0; i < 4; ++i)
      d.push_back(LLVM::ExtractValueOp::create(b, op.getResult(), {i}));
    return d;
  }

  /// Reduces over the 4 lanes that share a row (xor 1, xor 2).
  Value quadReduce(Value v, bool isMax) {
    for (int32_t offset : {1, 2}) {
      Value other = gpu::ShuffleOp::create(b, v, offset, 32, gpu::ShuffleMode::XOR).getShuffleResult();
      v = isMax ? (Value)arith::MaximumFOp::create(b, v, other)
                : (Value)arith::AddFOp::create(b, v, other);
    }
    return v;
  }

  ImplicitLocOpBuilder &b;
  LoopBuilder lb;
  Type elem, f32;
  Type accType;
  std::array<NVVM::MMATypes, 2> types;
};

} // namespace

bool buildMmaSoftmaxKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                           func::FuncOp host, AttentionOp op) {
  auto qType = cast<MemRefType>(op.getQuery().getType());
  Type et = qType.getElementType();
  int64_t d = qType.getDimSize(3);
  int64_t dv = cast<MemRefType>(op.getValue().getType()).getDimSize(3);
  TilePlanAttr plan = op.getTilePlanAttr();
  if (!(et.isBF16() || et.isF16()) || d % 16 != 0 || dv % 8 != 0 || d > 256 || dv > 256 ||
      plan.getBlockQ() != kBlockQ || plan.getBlockK() != kBlockK)
    return false;
  MLIRContext *ctx = b.getContext();
  IRMapping map;
  SmallVector<Value> shared;
  gpu::GPUFuncOp kernel = createKernel(
      b, module, host,
      {sharedTile(ctx, kBlockQ, d, et), sharedTile(ctx, kBlockK, d, et),
       sharedTile(ctx, kBlockK, dv, et)},
      map, shared);
  int64_t threads = kWarps * 32;
  kernel->setAttr("attn.block_threads", b.getI64IntegerAttr(threads));
  kernel->setAttr("attn.tensor_cores", b.getUnitAttr());
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(&kernel.getBody().front());
  KernelBuilder kb(b);
  LoopBuilder &lb = kb.lb;
  MmaBuilder mb(b, et);
  Type f32 = b.getF32Type();
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
  Value rows[2] = {arith::AddIOp::create(b, rowBegin, r0), arith::AddIOp::create(b, rowBegin, r1)};
  Value lastRow = arith::SubIOp::create(b, seqQ, lb.index(1));
  // Rows past Sq compute on zeros and are never stored; their masks and
  // score functions are evaluated at a valid row so no input is over-read.
  Value evalRows[2] = {arith::MinSIOp::create(b, rows[0], lastRow),
                       arith::MinSIOp::create(b, rows[1], lastRow)};
  ScoreEmitter emitter(op, b, seqQ, seqK, map);

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

  // State: max and partial sum for rows r0, r1; O as dv/8 tiles of 4 f32.
  int64_t nTilesS = kBlockK / 8, nTilesO = dv / 8;
  SmallVector<Value> init = {lb.negInf(), lb.negInf(), lb.f32(0.0), lb.f32(0.0)};
  for (int64_t i = 0; i < nTilesO * 4; ++i)
    init.push_back(lb.f32(0.0));

  SmallVector<Value> state = kb.forWithState(
      range.begin, range.end, lb.index(1), init, [&](Value kt, ValueRange st) {
        Value colBegin = arith::MulIOp::create(b, kt, lb.index(kBlockK));
        kb.stageTileVectorized(k, batch, kvHead, colBegin, seqK, ks, kBlockK, d, tid, threads);
        kb.stageTileVectorized(v, batch, kvHead, colBegin, seqK, vs, kBlockK, dv, tid, threads);
        gpu::BarrierOp::create(b);
        Value needMask = emitNeedsElementMask(b, op, range, kt);

        // S = Q K^T, then scores and masks element by element.
        SmallVector<Value> s; // [n tile][4]
        for (int64_t j = 0; j < nTilesS; ++j) {
          SmallVector<Value> acc(4, lb.f32(0.0));
          // K is n-major (a key's dims are contiguous): plain ldmatrix, the
          // lane's row is key j*8 + lane%8, its column half (lane/8)%2.
          Value keyRow = arith::AddIOp::create(b, lb.index(j * 8), laneRow8);
          for (int64_t st2 = 0; st2 < d / 16; ++st2) {
            Value col = arith::AddIOp::create(b, lb.index(st2 * 16), laneColHalf);
            auto frag = mb.ldmatrixAt(ks, keyRow, col, /*transpose=*/false);
            SmallVector<Value> bFrag = {frag[0], frag[1]};
            acc = mb.mma(qFrag[st2], bFrag, acc);
          }
          for (int64_t e = 0; e < 4; ++e) {
            int64_t rowSel = e / 2;
            Value col = arith::AddIOp::create(
                b, colBegin, arith::AddIOp::create(b, lb.index(j * 8 + e % 2), t2));
            // Keys past Sk (a partial last tile) are masked below; score
            // functions and masks are evaluated at a valid key so that a
            // captured tensor indexed by k is never over-read.
            Value colEval =
                arith::MinSIOp::create(b, col, arith::SubIOp::create(b, seqK, lb.index(1)));
            Value score = emitter.score(acc[e], batch, head, evalRows[rowSel], colEval);
            Value visible = kb.ifWithResults(
                needMask, {b.getI1Type()},
                [&] {
                  Value inSeq = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, col, seqK);
                  Value vis = emitter.visible(batch, head, evalRows[rowSel], colEval);
                  return SmallVector<Value>{arith::AndIOp::create(b, inSeq, vis)};
                },
                [&] { return SmallVector<Value>{lb.boolean(true)}; })[0];
            s.push_back(arith::SelectOp::create(b, visible, score, lb.negInf()));
          }
        }

        // Online softmax per row (base 2), guarded for rows that saw only -inf.
        SmallVector<Value> next;
        Value alpha[2], mNew[2];
        for (int64_t r = 0; r < 2; ++r) {
          Value m = st[r];
          for (int64_t j = 0; j < nTilesS; ++j)
            for (int64_t e = 2 * r; e < 2 * r + 2; ++e)
              m = arith::MaximumFOp::create(b, m, s[j * 4 + e]);
          mNew[r] = mb.quadReduce(m, /*isMax=*/true);
          Value noneSeen = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, mNew[r], lb.negInf());
          alpha[r] = arith::SelectOp::create(
              b, noneSeen, lb.f32(1.0),
              math::Exp2Op::create(b, arith::SubFOp::create(b, st[r], mNew[r])));
        }
        SmallVector<Value> p(s.size());
        Value rowSum[2] = {lb.f32(0.0), lb.f32(0.0)};
        for (int64_t j = 0; j < nTilesS; ++j)
          for (int64_t e = 0; e < 4; ++e) {
            int64_t r = e / 2;
            Value x = s[j * 4 + e];
            Value masked = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, x, lb.negInf());
            p[j * 4 + e] = arith::SelectOp::create(
                b, masked, lb.f32(0.0),
                math::Exp2Op::create(b, arith::SubFOp::create(b, x, mNew[r])));
            rowSum[r] = arith::AddFOp::create(b, rowSum[r], p[j * 4 + e]);
          }
        next.push_back(mNew[0]);
        next.push_back(mNew[1]);
        for (int64_t r = 0; r < 2; ++r)
          next.push_back(arith::AddFOp::create(
              b, arith::MulFOp::create(b, st[2 + r], alpha[r]), rowSum[r]));

        // O = alpha O + P V: P's accumulator layout is the A operand of m16n8k16.
        SmallVector<Value> o;
        for (int64_t n = 0; n < nTilesO; ++n)
          for (int64_t e = 0; e < 4; ++e)
            o.push_back(arith::MulFOp::create(b, st[4 + n * 4 + e], alpha[e / 2]));
        for (int64_t u = 0; u < kBlockK / 16; ++u) {
          const Value *lo = &p[(2 * u) * 4], *hi = &p[(2 * u + 1) * 4];
          SmallVector<Value> aFrag = {mb.packF32(lo[0], lo[1]), mb.packF32(lo[2], lo[3]),
                                      mb.packF32(hi[0], hi[1]), mb.packF32(hi[2], hi[3])};
          for (int64_t n = 0; n < nTilesO; ++n) {
            auto frag = mb.ldmatrixB(vs, lb.index(u * 16), laneRow16, lb.index(n * 8),
                                     /*transpose=*/true);
            SmallVector<Value> bFrag = {frag[0], frag[1]};
            SmallVector<Value> c(o.begin() + n * 4, o.begin() + n * 4 + 4);
            SmallVector<Value> dOut = mb.mma(aFrag, bFrag, c);
            std::copy(dOut.begin(), dOut.end(), o.begin() + n * 4);
          }
        }
        next.append(o.begin(), o.end());
        gpu::BarrierOp::create(b);
        return next;
      });

  // Finalize: sums over the row's 4 lanes; out = O / sum; lse on lane t = 0.
  Type outEt = cast<MemRefType>(out.getType()).getElementType();
  for (int64_t r = 0; r < 2; ++r) {
    Value sum = mb.quadReduce(state[2 + r], /*isMax=*/false);
    Value valid = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, rows[r], seqQ);
    lb.ifThen(valid, [&] {
      Value empty = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, sum, lb.f32(0.0));
      Value inv = arith::SelectOp::create(b, empty, lb.f32(0.0),
                                          arith::DivFOp::create(b, lb.f32(1.0), sum));
      for (int64_t n = 0; n < nTilesO; ++n) {
        Value x = arith::MulFOp::create(b, state[4 + n * 4 + 2 * r], inv);
        Value y = arith::MulFOp::create(b, state[4 + n * 4 + 2 * r + 1], inv);
        Value pair = vector::FromElementsOp::create(b, VectorType::get({2}, f32), ValueRange{x, y});
        if (outEt != f32)
          pair = arith::TruncFOp::create(b, VectorType::get({2}, outEt), pair);
        Value col = arith::AddIOp::create(b, lb.index(n * 8), t2);
        vector::StoreOp::create(b, pair, out, ValueRange{batch, head, rows[r], col});
      }
      if (op.getLse()) {
        Value firstLane = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, t2, lb.index(0));
        lb.ifThen(firstLane, [&] {
          Value natural = arith::MulFOp::create(
              b, arith::AddFOp::create(b, state[r], math::Log2Op::create(b, sum)), lb.f32(kLn2));
          memref::StoreOp::create(b, arith::SelectOp::create(b, empty, lb.negInf(), natural),
                                  map.lookup(op.getLse()), ValueRange{batch, head, rows[r]});
        });
      }
    });
  }
  gpu::ReturnOp::create(b);
  return true;
}

} // namespace attn
