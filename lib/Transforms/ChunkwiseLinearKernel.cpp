//===- ChunkwiseLinearKernel.cpp - chunkwise linear attention on tensor cores ===//
//
// Linear and gated linear attention (no gate, scalar, head-constant or vector
// gates) as
// the chunkwise form of TileLinear.cpp, with every product on mma.sync
// m16n8k16 (f16/bf16 operands, f32 accumulation); docs/chunkwise-linear-gpu.md.
//
// Grid (Dv / 64, H, B); a block of 4 warps carries the f32 state slice
// S[Dk, 64] (value columns 64 * blockIdx.x ..) through the chunks in
// registers: warp w owns state rows [w Dk/4, (w + 1) Dk/4). Per chunk of
// C = 64 steps, with G the in-chunk cumulative log2 gate (scalar per step):
//
//   stage   Q, K (feature-mapped, rows past T zero), V[:, 64 cols], G
//   A     = (Q K^T) ⊙ 2^(G_t − G_s) ⊙ [s <= t]    warp w: query rows 16w..16w+15
//   O     = 2^G_t ⊙ (Q S_bf16) + A V                A from registers (bf16)
//   K    <- K ⊙ 2^(G_last − G_t)                   in shared memory
//   S     = 2^G_last S + K^T V                      f32 accumulators (ldmatrix.trans)
//   S_bf16 <- S                                     the B operand of the next chunk
//
// Every exponent is a difference G_t − G_s with s <= t, G_t, or G_last − G_t:
// never positive for decaying gates, however strong. The state is rounded to
// the element type only as the B operand of Q S (flash-linear-attention does
// the same); the f32 state itself carries over.
//
// Fragment layouts (PTX ISA, mma.m16n8k16): lane l, g = l / 4, t = l % 4,
// holds accumulator rows g, g + 8 and columns 2t, 2t + 1 of each n8 tile
// (values [0], [1] row g; [2], [3] row g + 8); the A operand is a0 = (g, 2t..),
// a1 = (g + 8, 2t..), a2 = (g, 2t + 8..), a3 = (g + 8, 2t + 8..); the B operand
// b0 = (k 2t.., n g), b1 = (k 2t + 8.., n g).
//
// Vector gates (GLA) decay per dimension, so the decays cannot be applied to
// A afterwards; FLA's sub-chunk split keeps every exponent <= 0: G becomes
// [64, Dk] (f32, shared), and A's 16 x 16 sub-blocks (t in block i = warp,
// s in block j) are
//   j < i:  (Q_i ⊙ 2^(G_t − G_r)) (K_j ⊙ 2^(G_r − G_s))^T on mma.sync, with
//           r = 16j + 15 (s <= r < t); K~ = K_j ⊙ 2^(G_r − G_s) is staged
//           once per chunk, the Q side scaled in registers per j;
//   j = i:  rows 8-15 x keys 0-7 of the block: one mma.sync on operands
//           scaled to step 16i + 7; the two 8 x 8 triangles:
//           sum_d q_td k_sd 2^(G_td − G_sd) in f32 (s <= t), per lane;
//   j > i:  0;
// Q S takes Q ⊙ 2^G_t, the state decays per row by 2^G_last,d. G is summed
// per dimension in registers from the global gates (thread d, dimension d).
// Per-chunk costs and the H200 profile: docs/chunkwise-linear-gpu.md.
//
// Not covered (the recurrent kernel in LowerToGpuKernels.cpp keeps them):
// f32 (no f32 tensor-core path), head dims other than 64 / 128.
//
//===----------------------------------------------------------------------===//

#include "FragmentSoftmax.h"
#include "GpuKernelCommon.h"
#include "LinearProblem.h"
#include "MmaSync.h"
#include "ScoreEmitter.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"

namespace attn {

namespace {

constexpr int64_t kChunk = 64, kWarps = 4, kThreads = kWarps * 32;
constexpr int64_t kCols = 64; // value columns per block
constexpr int64_t kPad = 8;   // elements of row padding: ldmatrix rows hit distinct banks

} // namespace

bool buildChunkwiseLinearKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                                func::FuncOp host, LinearProblem p, bool prefetch) {
  auto qType = cast<MemRefType>(p.query.getType());
  auto kType = cast<MemRefType>(p.key.getType());
  auto vType = cast<MemRefType>(p.value.getType());
  Type et = qType.getElementType();
  int64_t dk = qType.getDimSize(3), dv = vType.getDimSize(3);
  // f32 has no tensor-core path here; other head dims keep the recurrent
  // kernel (the fragment loops assume 64 / 128).
  if (!(et.isBF16() || et.isF16()) || kType.getElementType() != et ||
      vType.getElementType() != et || (dk != 64 && dk != 128) || (dv != 64 && dv != 128) ||
      (p.normalize && p.gate))
    return false;
  bool gated = p.gate.has_value();
  bool vectorGates = p.gate == GateKind::Vector;
  MLIRContext *ctx = b.getContext();
  Type f32 = b.getF32Type(), i8 = b.getI8Type();

  // Dynamic shared memory, byte offsets (all multiples of 16).
  int64_t ldqk = dk + kPad, ldv = kCols + kPad;
  int64_t qOff = 0, kOff = qOff + kChunk * ldqk * 2, vOff = kOff + kChunk * ldqk * 2;
  // With `prefetch`, Q, K and V have two stages of `stageBytes` each (stage 1
  // right after stage 0): chunk c + 1 is fetched with cp.async into the other
  // stage while chunk c is computed.
  int64_t stageBytes = vOff + kChunk * ldv * 2;
  // G: [64] (scalar gates) or [64, Dk + 8] (vector gates); vector gates also
  // keep K~, K scaled for the off-diagonal sub-blocks.
  int64_t ldg = dk + kPad;
  auto layout = [&](int64_t stages, int64_t &sOff, int64_t &gOff, int64_t &zOff,
                    int64_t &ktOff) {
    sOff = stages * stageBytes, gOff = sOff + dk * ldv * 2;
    zOff = gOff + kChunk * (vectorGates ? ldg : 1) * 4;
    ktOff = zOff + dk * 4;
    return ktOff + (vectorGates ? kChunk * ldqk * 2 : 0);
  };
  int64_t sOff, gOff, zOff, ktOff;
  int64_t total = layout(prefetch ? 2 : 1, sOff, gOff, zOff, ktOff);
  // Prefetch only while two blocks still fit an SM (H100/H200: 228 KB per SM,
  // 1 KB of it reserved per block). Each block walks its chunks in sequence, so
  // the second block is what hides one block's barriers and dependent
  // products. Measured on the H200 (bench/results/2026-11-29-linear-prefetch/):
  // scalar gates, 107 KB with prefetch, 2 blocks/SM: 69 -> 121 TFLOP/s; vector
  // gates, 159 KB, 1 block/SM: 26.4 -> 22.3 TFLOP/s. Past the limit the chunks
  // are staged synchronously.
  constexpr int64_t kTwoBlocksPerSm = 228 * 1024 / 2 - 1024;
  if (prefetch && total > kTwoBlocksPerSm)
    prefetch = false, total = layout(1, sOff, gOff, zOff, ktOff);

  memref::GlobalOp smemGlobal = getDynamicSharedMemory(b, module);
  IRMapping map;
  SmallVector<Value> unusedShared;
  gpu::GPUFuncOp kernel = createKernel(b, module, host, {}, map, unusedShared);
  kernel->setAttr("attn.block_threads", b.getI64IntegerAttr(kThreads));
  kernel->setAttr("attn.tensor_cores", b.getStringAttr("mma.sync.chunkwise"));
  kernel->setAttr("attn.dynamic_shared_memory", b.getI64IntegerAttr(total));
  if (prefetch)
    kernel->setAttr("attn.prefetch", b.getStringAttr("cp.async"));
  kernel->setAttr("attn.grid_x", b.getI64IntegerAttr(dv / kCols));
  p.remap(map);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(&kernel.getBody().front());
  KernelBuilder kb(b);
  LoopBuilder &lb = kb.lb;
  MmaSyncBuilder tc(b, et);
  auto idx = [&](int64_t v) { return lb.index(v); };
  auto add = [&](Value x, Value y) { return arith::AddIOp::create(b, x, y).getResult(); };
  auto mul = [&](Value x, Value y) { return arith::MulIOp::create(b, x, y).getResult(); };
  auto div = [&](Value x, int64_t y) { return arith::DivUIOp::create(b, x, idx(y)).getResult(); };
  auto rem = [&](Value x, int64_t y) { return arith::RemUIOp::create(b, x, idx(y)).getResult(); };
  auto fadd = [&](Value x, Value y) { return arith::AddFOp::create(b, x, y).getResult(); };
  auto fmul = [&](Value x, Value y) { return arith::MulFOp::create(b, x, y).getResult(); };
  auto fsub = [&](Value x, Value y) { return arith::SubFOp::create(b, x, y).getResult(); };
  // Every exponent is <= 0 (see the header): ftz only turns decays below
  // 2^-126 into 0, terms far below the f32 rounding of any normal-size sum,
  // and saves ptxas the denormal fix-up around each MUFU.EX2 (gated_vector:
  // 324 exponentials; ptxas 440 -> 310 ms).
  auto exp2 = [&](Value x) { return fastExp2(b, x); };

  // The shared buffers, carved from the dynamic shared memory.
  auto space = gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  Value raw = memref::GetGlobalOp::create(b, smemGlobal.getType(), smemGlobal.getSymName());
  Value flat = memref::ReinterpretCastOp::create(
      b, MemRefType::get({total}, i8, MemRefLayoutAttrInterface(), space), raw, 0,
      ArrayRef<int64_t>{total}, ArrayRef<int64_t>{1});
  auto view = [&](int64_t offset, ArrayRef<int64_t> shape, Type type) -> Value {
    return memref::ViewOp::create(
        b, MemRefType::get(shape, type, MemRefLayoutAttrInterface(), space), flat,
        idx(offset), ValueRange{});
  };
  Value qs = view(qOff, {kChunk, ldqk}, et), ks = view(kOff, {kChunk, ldqk}, et);
  Value vs = view(vOff, {kChunk, ldv}, et), ss = view(sOff, {dk, ldv}, et);
  Value gs = vectorGates ? view(gOff, {kChunk, ldg}, f32) : view(gOff, {kChunk}, f32);
  Value zs = view(zOff, {dk}, f32);
  Value kts = vectorGates ? view(ktOff, {kChunk, ldqk}, et) : Value();

  Value colBlock = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value head = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  Value batch = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value warp = div(tid, 32), lane = rem(tid, 32);
  Value g = div(lane, 4), t2 = mul(rem(lane, 4), idx(2));
  Value laneRow16 = rem(lane, 16), laneRow8 = rem(lane, 8);
  Value laneHalf8 = mul(rem(div(lane, 8), 2), idx(8)); // 8 * ((lane / 8) % 2)
  Value laneHigh8 = mul(div(lane, 16), idx(8));        // 8 * (lane / 16)
  Value colBase = mul(colBlock, idx(kCols));
  Value seq = lb.dim(p.query, 2);
  // This lane's two query rows in the chunk (accumulator rows g, g + 8).
  Value rowA[2] = {add(mul(warp, idx(16)), g), add(add(mul(warp, idx(16)), g), idx(8))};
  int64_t mTiles = dk / 64; // state m16 tiles per warp
  Value stateRow0 = mul(warp, idx(dk / 4));
  // State accumulator index: (m tile, n tile, element).
  auto sIndex = [&](int64_t mi, int64_t n, int64_t e) { return (mi * 8 + n) * 4 + e; };
  auto stateRow = [&](int64_t mi, int64_t e) {
    return add(stateRow0, add(idx(mi * 16 + 8 * (e / 2)), g));
  };
  auto stateCol = [&](int64_t n, int64_t e) { return add(idx(n * 8 + e % 2), t2); };

  auto zeroVector = [&](VectorType vt) -> Value {
    return arith::ConstantOp::create(b, vt, DenseElementsAttr::get(vt, b.getZeroAttr(vt.getElementType())));
  };
  // The state rounded to the element type: the B operand of Q S.
  auto writeState = [&](ValueRange s) {
    VectorType pair = VectorType::get({2}, et);
    for (int64_t mi = 0; mi < mTiles; ++mi)
      for (int64_t n = 0; n < 8; ++n)
        for (int64_t h = 0; h < 2; ++h) {
          Value v = vector::FromElementsOp::create(
              b, VectorType::get({2}, f32),
              ValueRange{s[sIndex(mi, n, 2 * h)], s[sIndex(mi, n, 2 * h + 1)]});
          v = arith::TruncFOp::create(b, pair, v);
          vector::StoreOp::create(b, v, ss, ValueRange{stateRow(mi, 2 * h), stateCol(n, 0)});
        }
  };

  // Initial state: this lane's fragments of S[:, colBase ..].
  SmallVector<Value> init;
  for (int64_t mi = 0; mi < mTiles; ++mi)
    for (int64_t n = 0; n < 8; ++n)
      for (int64_t e = 0; e < 4; ++e)
        init.push_back(p.initial ? lb.loadF32(p.initial, {batch, head, stateRow(mi, e),
                                                          add(colBase, stateCol(n, e))})
                                 : lb.f32(0.0));
  writeState(init);
  if (p.normalize)
    lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ult, tid, idx(dk)),
              [&] { memref::StoreOp::create(b, lb.f32(0.0), zs, ValueRange{tid}); });

  // Q and K rows of the chunk, feature-mapped in f32, zero past T (also
  // after the feature map: elu + 1 of 0 is 1).
  VectorType vec8 = VectorType::get({8}, et), vec8f = VectorType::get({8}, f32);
  // Synchronous staging of Q, K and V (vector gates, or prefetch off): every
  // thread first issues all of its 16-byte loads of the three tiles (Dk = 128:
  // 8 + 8 + 4 per thread, 80 registers in flight; loadQKV), then stores them
  // (storeQKV), so the tiles cost about one global-memory latency instead of
  // one per 1-4 loads (before: loops of `if (row < T) load; store`, which
  // LLVM unrolled by 4 at most: 14 dependent round trips per chunk with the
  // gates, SASS of b_gla on sm_90a). Rows past T are not loaded (predicated
  // loads, zero) and stay zero after the feature map (elu + 1 of 0 is 1).
  // Issuing the vector gates' loads before these stores as well (one round
  // trip instead of two) spills at 255 registers (80 + 64 loads in flight
  // next to the 64-value state).
  struct Piece {
    Value dst, r, c, inside, x;
    bool mapped;
  };
  auto loadQKV = [&](Value t0) {
    struct Tile {
      Value src, dst;
      int64_t width;
      Value colOffset;
      bool mapped;
    };
    Tile tiles[3] = {{p.query, qs, dk, Value(), true},
                     {p.key, ks, dk, Value(), true},
                     {p.value, vs, kCols, colBase, false}};
    SmallVector<Piece> pieces;
    for (const Tile &tile : tiles) {
      int64_t perRow = tile.width / 8, count = kChunk * perRow / kThreads;
      for (int64_t i = 0; i < count; ++i) {
        Value e = add(tid, idx(i * kThreads));
        Value r = div(e, perRow), c = mul(rem(e, perRow), idx(8));
        Value pos = add(t0, r);
        Value inside = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, pos, seq);
        Value col = tile.colOffset ? add(tile.colOffset, c) : c;
        Value x = kb.ifWithResults(
            inside, {vec8},
            [&] {
              return SmallVector<Value>{vector::LoadOp::create(
                  b, vec8, tile.src, ValueRange{batch, head, pos, col}, false,
                  llvm::MaybeAlign(16))};
            },
            [&] { return SmallVector<Value>{zeroVector(vec8)}; })[0];
        pieces.push_back({tile.dst, r, c, inside, x, tile.mapped});
      }
    }
    return pieces;
  };
  auto storeQKV = [&](ArrayRef<Piece> pieces) {
    for (const Piece &piece : pieces) {
      Value x = piece.x;
      if (piece.mapped && p.featureMap != FeatureMap::Identity) {
        x = arith::ExtFOp::create(b, vec8f, x);
        x = emitFeatureMap(b, p.featureMap, x);
        x = arith::TruncFOp::create(b, vec8, x);
        x = arith::SelectOp::create(b, piece.inside, x, zeroVector(vec8));
      }
      vector::StoreOp::create(b, x, piece.dst, ValueRange{piece.r, piece.c}, false,
                              llvm::MaybeAlign(16));
    }
  };
  // Scalar / head-constant gates: thread t < 64's raw gate of step t0 + t
  // (0 past T or for t >= 64). It is loaded one chunk ahead (carried through
  // the chunk loop), so the scan never waits on global memory: in the H200
  // profile of b_simple_gla (/work/profiles/linear, 2026-12-02) the staging
  // segment, whose only synchronous global load this was, held 22% of the
  // warp stall samples, 40% of them long scoreboard.
  auto loadRawGate = [&](Value t0) {
    Value pos = add(t0, tid);
    Value inside = arith::AndIOp::create(
        b, arith::CmpIOp::create(b, arith::CmpIPredicate::ult, tid, idx(kChunk)),
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, pos, seq));
    return kb.ifWithResults(
        inside, {f32},
        [&] {
          Value gate = p.gate == GateKind::Scalar ? lb.loadF32(p.gates, {batch, head, pos})
                                                  : lb.loadF32(p.gates, {head});
          return SmallVector<Value>{gate};
        },
        [&] { return SmallVector<Value>{lb.f32(0.0)}; })[0];
  };
  // Warps 0 and 1: G[t] = log2(e) * sum_{s <= t} g_s over the chunk (0 past
  // T, so G stays at its last value there), an inclusive scan per warp; warp
  // 1 adds warp 0's total after a barrier (fixGates).
  auto scanGates = [&](Value raw) {
    Value isScanWarp = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, tid, idx(kChunk));
    lb.ifThen(isScanWarp, [&] {
      Value x = fmul(raw, lb.f32(kLog2e));
      for (int32_t offset = 1; offset < 32; offset *= 2) {
        Value up = gpu::ShuffleOp::create(b, x, offset, 32, gpu::ShuffleMode::UP)
                       .getShuffleResult();
        Value has = arith::CmpIOp::create(b, arith::CmpIPredicate::uge, lane, idx(offset));
        x = arith::SelectOp::create(b, has, fadd(x, up), x);
      }
      memref::StoreOp::create(b, x, gs, ValueRange{tid});
    });
  };
  auto fixGates = [&] {
    Value secondWarp = arith::AndIOp::create(
        b, arith::CmpIOp::create(b, arith::CmpIPredicate::uge, tid, idx(32)),
        arith::CmpIOp::create(b, arith::CmpIPredicate::ult, tid, idx(kChunk)));
    lb.ifThen(secondWarp, [&] {
      Value x = memref::LoadOp::create(b, gs, ValueRange{tid});
      Value carry = memref::LoadOp::create(b, gs, ValueRange{idx(31)});
      memref::StoreOp::create(b, fadd(x, carry), gs, ValueRange{tid});
    });
  };

  // Vector gates: G [64, Dk] = log2(e) * the in-chunk cumulative sums of the
  // raw gates (0 past T, so G stays at the last valid step's value there).
  // Thread d < Dk owns dimension d: it loads its column straight from global
  // memory (a warp's load is 32 consecutive f32 of one step, 128 bytes) and
  // sums in registers, storing each prefix. The loads (predicated: 0 past T)
  // do not depend on the sums, so they are all in flight before the first
  // add (ptxas issues all 64); the adds are the only serial part (64
  // dependent FADDs). This replaced 16-byte staging into G, a barrier, and a
  // scan that re-read and re-wrote G in shared memory step by step.
  VectorType vec2f = VectorType::get({2}, f32);
  auto scanVectorGates = [&](Value t0) {
    auto scan = [&] {
      Value running = lb.f32(0.0);
      constexpr int64_t kGroup = 16;
      for (int64_t t = 0; t < kChunk; t += kGroup) {
        Value raw[kGroup], inside[kGroup];
        for (int64_t i = 0; i < kGroup; ++i) {
          Value pos = add(t0, idx(t + i));
          inside[i] = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, pos, seq);
          raw[i] = kb.ifWithResults(
              inside[i], {f32},
              [&] { return SmallVector<Value>{lb.loadF32(p.gates, {batch, head, pos, tid})}; },
              [&] { return SmallVector<Value>{lb.f32(0.0)}; })[0];
        }
        for (int64_t i = 0; i < kGroup; ++i) {
          Value x = fmul(raw[i], lb.f32(kLog2e));
          running = fadd(running, x);
          memref::StoreOp::create(b, running, gs, ValueRange{idx(t + i), tid});
        }
      }
    };
    // The branch stays even at Dk = 128 (every thread taken): it keeps
    // ptxas from hoisting the 64 gate loads above Q, K and V's stores, which
    // spills at 255 registers (sm_90a and sm_80).
    lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ult, tid, idx(dk)), scan);
  };
  // K~[s] = K[s] ⊙ 2^(G[ref] − G[s]), ref = the last step of s's 16-step
  // sub-block: the B operand of the off-diagonal sub-blocks (s <= ref).
  auto buildKTilde = [&] {
    kb.forEachChunk(idx(0), idx(kChunk), kChunk, dk, 8, tid, kThreads,
                    [&](Value r, Value cc, Value, Value) {
                      Value ref = add(mul(div(r, 16), idx(16)), idx(15));
                      Value gRef = vector::LoadOp::create(b, vec8f, gs, ValueRange{ref, cc});
                      Value gS = vector::LoadOp::create(b, vec8f, gs, ValueRange{r, cc});
                      Value x = kb.loadVectorF32(ks, {r, cc}, 8);
                      x = arith::MulFOp::create(
                          b, x, exp2(arith::SubFOp::create(b, gRef, gS)));
                      vector::StoreOp::create(b, arith::TruncFOp::create(b, vec8, x), kts,
                                              ValueRange{r, cc}, false, llvm::MaybeAlign(16));
                    });
  };
  // An operand register from two f32 values (vector<2xf32>).
  auto packPair = [&](Value v2) {
    return tc.packVector(arith::TruncFOp::create(b, VectorType::get({2}, et), v2));
  };

  // Prefetch: stage `stage` (0 or 1) of Q, K and V.
  auto stageViews = [&](Value stage, Value &q, Value &k, Value &v) {
    Value base = mul(stage, idx(stageBytes));
    auto at = [&](int64_t offset, ArrayRef<int64_t> shape) -> Value {
      return memref::ViewOp::create(
          b, MemRefType::get(shape, et, MemRefLayoutAttrInterface(), space), flat,
          add(base, idx(offset)), ValueRange{});
    };
    q = at(qOff, {kChunk, ldqk}), k = at(kOff, {kChunk, ldqk}), v = at(vOff, {kChunk, ldv});
  };
  // Rows t0 .. t0 + 63 of src[batch, head, :, colOffset + ..] into `dst` with
  // 16-byte cp.async.cg; rows at or past T are zero-filled (source size 0,
  // from the clamped, valid row T - 1), never read.
  auto copyAsync = [&](Value src, Value dst, Value t0, int64_t width, Value colOffset) {
    kb.forEachChunk(t0, seq, kChunk, width, 8, tid, kThreads,
                    [&](Value r, Value cc, Value pos, Value inside) {
                      Value valid = arith::MinSIOp::create(
                          b, pos, arith::SubIOp::create(b, seq, idx(1)));
                      Value n = arith::SelectOp::create(b, inside, idx(8), idx(0));
                      Value col = colOffset ? add(colOffset, cc) : cc;
                      nvgpu::DeviceAsyncCopyOp::create(
                          b, nvgpu::DeviceAsyncTokenType::get(ctx), dst, ValueRange{r, cc}, src,
                          ValueRange{batch, head, valid, col}, b.getIndexAttr(8), n,
                          b.getUnitAttr());
                    });
  };
  auto fetchChunk = [&](Value t0, Value stage) {
    Value q, k, v;
    stageViews(stage, q, k, v);
    copyAsync(p.query, q, t0, dk, Value());
    copyAsync(p.key, k, t0, dk, Value());
    copyAsync(p.value, v, t0, kCols, colBase);
  };
  // The feature map on the landed raw Q or K rows, in place; each thread
  // maps the 16-byte chunks it copied itself (forEachChunk gives the same
  // assignment as copyAsync), which cp.async.wait_group made visible to it.
  // Rows past T stay zero (elu + 1 of 0 is 1).
  auto mapInPlace = [&](Value tile, Value t0) {
    kb.forEachChunk(t0, seq, kChunk, dk, 8, tid, kThreads,
                    [&](Value r, Value cc, Value, Value inside) {
                      Value x = vector::LoadOp::create(b, vec8, tile, ValueRange{r, cc}, false,
                                                       llvm::MaybeAlign(16));
                      x = arith::ExtFOp::create(b, vec8f, x);
                      x = emitFeatureMap(b, p.featureMap, x);
                      x = arith::TruncFOp::create(b, vec8, x);
                      x = arith::SelectOp::create(b, inside, x, zeroVector(vec8));
                      vector::StoreOp::create(b, x, tile, ValueRange{r, cc}, false,
                                              llvm::MaybeAlign(16));
                    });
  };

  Value chunks = div(add(seq, idx(kChunk - 1)), kChunk);
  // Prefetch: chunk 0 into stage 0. Every iteration commits one group (empty
  // on the last chunk), so wait_group 1 there always means "this chunk's
  // group has landed".
  if (prefetch) {
    lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ult, idx(0), chunks),
              [&] { fetchChunk(idx(0), idx(0)); });
    NVVM::CpAsyncCommitGroupOp::create(b);
  }
  // Scalar gates: the loop also carries this thread's raw gate of the chunk
  // (loadRawGate), after the state's values.
  bool carryGate = gated && !vectorGates;
  SmallVector<Value> loopInit(init.begin(), init.end());
  if (carryGate)
    loopInit.push_back(loadRawGate(idx(0)));
  SmallVector<Value> state = kb.forWithState(
      idx(0), chunks, idx(1), loopInit, [&](Value c, ValueRange st) {
        Value t0 = mul(c, idx(kChunk));
        Value rawGate, nextRawGate;
        if (carryGate) {
          rawGate = st.back();
          st = st.drop_back();
          // Past the last chunk this loads nothing (every step is past T).
          nextRawGate = loadRawGate(add(t0, idx(kChunk)));
        }
        // The previous chunk's readers of Q, K, V and G are done (with
        // prefetch: also those of the stage the next chunk goes to).
        gpu::BarrierOp::create(b);
        if (prefetch) {
          // qs, ks and vs (captured by the helpers below) become this
          // chunk's stage.
          Value stage = rem(c, 2);
          stageViews(stage, qs, ks, vs);
          Value nextChunk = add(c, idx(1));
          lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ult, nextChunk, chunks),
                    [&] {
                      fetchChunk(add(t0, idx(kChunk)),
                                 arith::SubIOp::create(b, idx(1), stage));
                    });
          NVVM::CpAsyncCommitGroupOp::create(b);
          NVVM::CpAsyncWaitGroupOp::create(b, 1);
          if (p.featureMap != FeatureMap::Identity) {
            mapInPlace(qs, t0);
            mapInPlace(ks, t0);
          }
        }
        if (!prefetch)
          storeQKV(loadQKV(t0));
        if (vectorGates)
          scanVectorGates(t0);
        else if (gated)
          scanGates(rawGate);
        gpu::BarrierOp::create(b);
        Value gRow[2];
        if (vectorGates) {
          buildKTilde();
          gpu::BarrierOp::create(b);
        } else if (gated) {
          fixGates();
          gpu::BarrierOp::create(b);
          for (int r = 0; r < 2; ++r)
            gRow[r] = memref::LoadOp::create(b, gs, ValueRange{rowA[r]});
        }

        // A = Q K^T (8 n tiles of 8 keys) and O = Q S (8 n tiles of 8
        // value columns), sharing the Q fragments of each k16 step.
        SmallVector<Value> a(32, lb.f32(0.0)), o(32, lb.f32(0.0));
        Value qRow = add(mul(warp, idx(16)), laneRow16);
        for (int64_t s = 0; s < dk / 16; ++s) {
          SmallVector<Value> qf;
          if (vectorGates) {
            // Register i of the A operand: row rowA[i % 2], dims
            // 16s + 8 (i / 2) + 2t, + 1. Q S takes Q ⊙ 2^G; the off-diagonal
            // sub-block (this warp's rows, keys of sub-block j < warp) takes
            // Q ⊙ 2^(G − G[16j + 15]) against K~ (blocks j >= warp are
            // computed and dropped below).
            Value qv[4], gq[4];
            for (int64_t i = 0; i < 4; ++i) {
              Value dim = add(idx(s * 16 + 8 * (i / 2)), t2);
              qv[i] = kb.loadVectorF32(qs, {rowA[i % 2], dim}, 2);
              gq[i] = vector::LoadOp::create(b, vec2f, gs, ValueRange{rowA[i % 2], dim});
              qf.push_back(packPair(arith::MulFOp::create(b, qv[i], exp2(gq[i]))));
            }
            for (int64_t j = 0; j < 3; ++j) {
              SmallVector<Value> qj;
              for (int64_t i = 0; i < 4; ++i) {
                Value dim = add(idx(s * 16 + 8 * (i / 2)), t2);
                Value gRef =
                    vector::LoadOp::create(b, vec2f, gs, ValueRange{idx(16 * j + 15), dim});
                qj.push_back(packPair(arith::MulFOp::create(
                    b, qv[i], exp2(arith::SubFOp::create(b, gq[i], gRef)))));
              }
              for (int64_t n = 2 * j; n < 2 * j + 2; ++n) {
                SmallVector<Value> kf = tc.ldmatrix(kts, add(idx(n * 8), laneRow8),
                                                    add(idx(s * 16), laneHalf8), false, 2);
                SmallVector<Value> d = tc.mma(qj, kf, ArrayRef<Value>(a).slice(n * 4, 4));
                std::copy(d.begin(), d.end(), a.begin() + n * 4);
              }
            }
          } else {
          qf = tc.ldmatrix(qs, qRow, add(idx(s * 16), laneHigh8), /*transpose=*/false, 4);
          for (int64_t j = 0; j < 8; ++j) {
            // K is n-major (a key's dims contiguous): plain ldmatrix .x2,
            // lanes 0-15 address key 8j + lane % 8, dims 16s + 8 ((lane/8)%2).
            SmallVector<Value> kf = tc.ldmatrix(ks, add(idx(j * 8), laneRow8),
                                                add(idx(s * 16), laneHalf8), false, 2);
            SmallVector<Value> d = tc.mma(qf, kf, ArrayRef<Value>(a).slice(j * 4, 4));
            std::copy(d.begin(), d.end(), a.begin() + j * 4);
          }
          }
          for (int64_t n = 0; n < 8; ++n) {
            // S is k-major (state rows = dims): ldmatrix .x2 .trans, lanes
            // 0-15 address dim 16s + lane % 16.
            SmallVector<Value> sf =
                tc.ldmatrix(ss, add(idx(s * 16), laneRow16), idx(n * 8), true, 2);
            SmallVector<Value> d = tc.mma(qf, sf, ArrayRef<Value>(o).slice(n * 4, 4));
            std::copy(d.begin(), d.end(), o.begin() + n * 4);
          }
        }
        // Causal mask and in-chunk decay on A (f32), inter-chunk decay on O.
        Value rowSum[2] = {lb.f32(0.0), lb.f32(0.0)};
        if (vectorGates) {
          // The diagonal sub-block (rows and keys 16w .. 16w + 15) with the
          // exact per-dimension decays 2^(G_t,d − G_s,d), s <= t. This lane
          // holds rows rowA[r] = 16w + g + 8r against keys[kk] = 16w + 8 (kk
          // / 2) + (kk % 2) + 2t, i.e. n tile jj = kk / 2 of the block. Of
          // its 8 (r, jj) pairs:
          //   r = 0, jj = 1 (rows 0-7 vs keys 8-15): always masked, never
          //     computed;
          //   r = 1, jj = 0 (rows 8-15 vs keys 0-7): always visible, and the
          //     reference step 16w + 7 lies between key and row, so it is
          //     one mma.sync on (Q ⊙ 2^(G_t − G_ref)) (K ⊙ 2^(G_ref − G_s))^T,
          //     both exponents <= 0, as the off-diagonal sub-blocks;
          //   r = jj (the two 8 x 8 triangles): in f32, one exp2 per (t, s, d).
          // Per lane and chunk: 512 + 64 exp2 instead of 768 (6 pairs x Dk in
          // f32; LLVM already dropped the always-masked pair).
          Value keys[4];
          for (int64_t kk = 0; kk < 4; ++kk)
            keys[kk] = add(mul(warp, idx(16)), add(idx(8 * (kk / 2) + kk % 2), t2));
          SmallVector<Value> diag = kb.forWithState(
              idx(0), idx(dk), idx(8), SmallVector<Value>(4, lb.f32(0.0)),
              [&](Value d0, ValueRange acc) {
                SmallVector<Value> next(acc.begin(), acc.end());
                for (int r = 0; r < 2; ++r) {
                  Value qv = kb.loadVectorF32(qs, {rowA[r], d0}, 8);
                  Value gq = vector::LoadOp::create(b, vec8f, gs, ValueRange{rowA[r], d0});
                  for (int64_t h = 0; h < 2; ++h) {
                    Value key = keys[2 * r + h];
                    Value kv = kb.loadVectorF32(ks, {key, d0}, 8);
                    Value gk = vector::LoadOp::create(b, vec8f, gs, ValueRange{key, d0});
                    Value decay = exp2(arith::SubFOp::create(b, gq, gk));
                    Value prod = arith::MulFOp::create(
                        b, arith::MulFOp::create(b, qv, kv), decay);
                    next[r * 2 + h] = fadd(next[r * 2 + h], kb.reduceAdd(prod));
                  }
                }
                return next;
              });
          // The lower-left quadrant: A rows g (rows 0-7 of the block) are
          // zero operands, rows g + 8 are Q rowA[1] scaled to the reference;
          // the B operand is key 16w + g (b0: dims 2t.., b1: dims 2t + 8..).
          // Accumulator values [2], [3] are (row g + 8, keys 2t, 2t + 1).
          Value ref = add(mul(warp, idx(16)), idx(7));
          Value ownKey = add(mul(warp, idx(16)), g);
          Value zeroReg = tc.packF32(lb.f32(0.0), lb.f32(0.0));
          SmallVector<Value> quad = kb.forWithState(
              idx(0), idx(dk), idx(16), SmallVector<Value>(4, lb.f32(0.0)),
              [&](Value s0, ValueRange acc) {
                Value qa[2], kop[2];
                for (int64_t h = 0; h < 2; ++h) {
                  Value dim = add(s0, add(idx(8 * h), t2));
                  Value gRef = vector::LoadOp::create(b, vec2f, gs, ValueRange{ref, dim});
                  Value qv = kb.loadVectorF32(qs, {rowA[1], dim}, 2);
                  Value gq = vector::LoadOp::create(b, vec2f, gs, ValueRange{rowA[1], dim});
                  qa[h] = packPair(arith::MulFOp::create(
                      b, qv, exp2(arith::SubFOp::create(b, gq, gRef))));
                  Value kv = kb.loadVectorF32(ks, {ownKey, dim}, 2);
                  Value gk = vector::LoadOp::create(b, vec2f, gs, ValueRange{ownKey, dim});
                  kop[h] = packPair(arith::MulFOp::create(
                      b, kv, exp2(arith::SubFOp::create(b, gRef, gk))));
                }
                return tc.mma({zeroReg, qa[0], zeroReg, qa[1]}, {kop[0], kop[1]},
                              SmallVector<Value>(acc.begin(), acc.end()));
              });
          // A's k16 block u: the diagonal (u == warp), the tensor-core
          // off-diagonal (u < warp, every key visible), zero (u > warp).
          for (int64_t u = 0; u < 4; ++u) {
            Value isDiag = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, warp, idx(u));
            Value below = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, idx(u), warp);
            for (int64_t jj = 0; jj < 2; ++jj)
              for (int64_t e = 0; e < 4; ++e) {
                int64_t r = e / 2, kk = 2 * jj + e % 2;
                Value dv;
                if (jj == r) {
                  Value visible = arith::CmpIOp::create(b, arith::CmpIPredicate::ule,
                                                        keys[kk], rowA[r]);
                  dv = arith::SelectOp::create(b, visible, diag[r * 2 + e % 2], lb.f32(0.0));
                } else {
                  dv = r == 1 ? quad[e] : lb.f32(0.0);
                }
                Value &slot = a[(2 * u + jj) * 4 + e];
                Value off = arith::SelectOp::create(b, below, slot, lb.f32(0.0));
                slot = arith::SelectOp::create(b, isDiag, dv, off);
              }
          }
        }
        for (int64_t j = 0; j < 8 && !vectorGates; ++j)
          for (int64_t e = 0; e < 4; ++e) {
            Value col = add(idx(j * 8 + e % 2), t2);
            Value visible =
                arith::CmpIOp::create(b, arith::CmpIPredicate::ule, col, rowA[e / 2]);
            Value v = a[j * 4 + e];
            if (gated) {
              Value gCol = memref::LoadOp::create(b, gs, ValueRange{col});
              v = fmul(v, exp2(fsub(gRow[e / 2], gCol)));
            }
            v = arith::SelectOp::create(b, visible, v, lb.f32(0.0));
            a[j * 4 + e] = v;
            if (p.normalize)
              rowSum[e / 2] = fadd(rowSum[e / 2], v);
          }
        if (gated && !vectorGates) {
          Value decay[2] = {exp2(gRow[0]), exp2(gRow[1])};
          for (int64_t i = 0; i < 32; ++i)
            o[i] = fmul(o[i], decay[(i % 4) / 2]);
        }
        // O += A V: A's accumulator layout is the A-operand layout; V is
        // k-major (ldmatrix .trans, lanes 0-15 address key 16u + lane % 16).
        for (int64_t u = 0; u < 4; ++u) {
          const Value *lo = &a[(2 * u) * 4], *hi = &a[(2 * u + 1) * 4];
          SmallVector<Value> af = {tc.packF32(lo[0], lo[1]), tc.packF32(lo[2], lo[3]),
                                   tc.packF32(hi[0], hi[1]), tc.packF32(hi[2], hi[3])};
          for (int64_t n = 0; n < 8; ++n) {
            SmallVector<Value> vf =
                tc.ldmatrix(vs, add(idx(u * 16), laneRow16), idx(n * 8), true, 2);
            SmallVector<Value> d = tc.mma(af, vf, ArrayRef<Value>(o).slice(n * 4, 4));
            std::copy(d.begin(), d.end(), o.begin() + n * 4);
          }
        }
        // Output rows (scale, or 1 / normalizer), never past T.
        Value factor[2] = {lb.f32(p.scale), lb.f32(p.scale)};
        if (p.normalize) {
          // den = sum_s A[t, s] + q_t . z; lane t of a quad sums dims
          // [t Dk/4, (t + 1) Dk/4).
          Value quarter = mul(rem(lane, 4), idx(dk / 4));
          for (int r = 0; r < 2; ++r) {
            Value qz = lb.f32(0.0);
            for (int64_t i = 0; i < dk / 4; i += 8) {
              Value dim = add(quarter, idx(i));
              Value qv = kb.loadVectorF32(qs, {rowA[r], dim}, 8);
              Value zv = vector::LoadOp::create(b, vec8f, zs, ValueRange{dim});
              qz = fadd(qz, kb.reduceAdd(arith::MulFOp::create(b, qv, zv)));
            }
            Value den = fadd(tc.quadReduce(rowSum[r], false), tc.quadReduce(qz, false));
            Value zero = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, den, lb.f32(0.0));
            factor[r] = arith::SelectOp::create(
                b, zero, lb.f32(0.0), arith::DivFOp::create(b, lb.f32(1.0), den));
          }
        }
        Type outEt = cast<MemRefType>(p.out.getType()).getElementType();
        for (int r = 0; r < 2; ++r) {
          Value pos = add(t0, rowA[r]);
          lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::slt, pos, seq), [&] {
            for (int64_t n = 0; n < 8; ++n) {
              Value pair = vector::FromElementsOp::create(
                  b, VectorType::get({2}, f32),
                  ValueRange{fmul(o[n * 4 + 2 * r], factor[r]),
                             fmul(o[n * 4 + 2 * r + 1], factor[r])});
              if (outEt != f32)
                pair = arith::TruncFOp::create(b, VectorType::get({2}, outEt), pair);
              // A pair from an even column of a 16-byte aligned row: one
              // aligned store (with only the element's alignment LLVM split
              // it into two 16-bit stores, as in the softmax epilogue).
              int64_t pairBytes = 2 * ((outEt.getIntOrFloatBitWidth() + 7) / 8);
              vector::StoreOp::create(b, pair, p.out,
                                      ValueRange{batch, head, pos, add(colBase, stateCol(n, 0))},
                                      false, llvm::MaybeAlign(pairBytes));
            }
          });
        }
        // Every warp is done with Q S_bf16, K (unscaled) and z.
        gpu::BarrierOp::create(b);

        SmallVector<Value> next(st.begin(), st.end());
        if (vectorGates) {
          // K <- K ⊙ 2^(G_last − G_t) per dimension, in place; S row d
          // decays by 2^(G_last,d).
          Value last = idx(kChunk - 1);
          kb.forEachChunk(idx(0), idx(kChunk), kChunk, dk, 8, tid, kThreads,
                          [&](Value r, Value cc, Value, Value) {
                            Value gl = vector::LoadOp::create(b, vec8f, gs, ValueRange{last, cc});
                            Value gt = vector::LoadOp::create(b, vec8f, gs, ValueRange{r, cc});
                            Value f = exp2(arith::SubFOp::create(b, gl, gt));
                            Value x = kb.loadVectorF32(ks, {r, cc}, 8);
                            x = arith::TruncFOp::create(b, vec8, arith::MulFOp::create(b, x, f));
                            vector::StoreOp::create(b, x, ks, ValueRange{r, cc}, false,
                                                    llvm::MaybeAlign(16));
                          });
          for (int64_t mi = 0; mi < mTiles; ++mi)
            for (int64_t e = 0; e < 4; e += 2) {
              Value decay = exp2(memref::LoadOp::create(b, gs, ValueRange{last, stateRow(mi, e)}));
              for (int64_t n = 0; n < 8; ++n)
                for (int64_t h = 0; h < 2; ++h)
                  next[sIndex(mi, n, e + h)] = fmul(next[sIndex(mi, n, e + h)], decay);
            }
        } else if (gated) {
          // K <- K ⊙ 2^(G_last − G_t), in place.
          Value gLast = memref::LoadOp::create(b, gs, ValueRange{idx(kChunk - 1)});
          kb.forEachChunk(idx(0), idx(kChunk), kChunk, dk, 8, tid, kThreads,
                          [&](Value r, Value cc, Value, Value) {
                            Value gt = memref::LoadOp::create(b, gs, ValueRange{r});
                            Value f = kb.splat(exp2(fsub(gLast, gt)), 8);
                            Value x = kb.loadVectorF32(ks, {r, cc}, 8);
                            x = arith::TruncFOp::create(b, vec8, arith::MulFOp::create(b, x, f));
                            vector::StoreOp::create(b, x, ks, ValueRange{r, cc}, false,
                                                    llvm::MaybeAlign(16));
                          });
          Value decay = exp2(gLast);
          for (Value &s : next)
            s = fmul(s, decay);
        }
        if (p.normalize)
          lb.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ult, tid, idx(dk)), [&] {
            Value z = lb.reduceLoop(idx(0), idx(kChunk),
                                    memref::LoadOp::create(b, zs, ValueRange{tid}),
                                    [&](Value t, Value acc) {
                                      return fadd(acc, lb.loadF32(ks, {t, tid}));
                                    });
            memref::StoreOp::create(b, z, zs, ValueRange{tid});
          });
        if (gated)
          gpu::BarrierOp::create(b);

        // S += K^T V: K^T's A fragments by ldmatrix .x4 .trans from K [t][d]:
        // lane l addresses step 16u + l % 8 + 8 (l / 16), dims m0 + 8 ((l/8)%2)
        // (matrices a0..a3 = (d 0-7, t 0-7), (d 8-15, t 0-7), (d 0-7, t 8-15),
        // (d 8-15, t 8-15)).
        for (int64_t mi = 0; mi < mTiles; ++mi) {
          Value m0 = add(stateRow0, idx(mi * 16));
          for (int64_t u = 0; u < 4; ++u) {
            SmallVector<Value> kf =
                tc.ldmatrix(ks, add(idx(u * 16), add(laneRow8, laneHigh8)), add(m0, laneHalf8),
                            /*transpose=*/true, 4);
            for (int64_t n = 0; n < 8; ++n) {
              SmallVector<Value> vf =
                  tc.ldmatrix(vs, add(idx(u * 16), laneRow16), idx(n * 8), true, 2);
              SmallVector<Value> d =
                  tc.mma(kf, vf, ArrayRef<Value>(next).slice(sIndex(mi, n, 0), 4));
              std::copy(d.begin(), d.end(), next.begin() + sIndex(mi, n, 0));
            }
          }
        }
        // Q S_bf16 was read before the last barrier; the next chunk reads
        // this after its staging barrier.
        writeState(next);
        if (carryGate)
          next.push_back(nextRawGate);
        return next;
      });

  if (p.final)
    for (int64_t mi = 0; mi < mTiles; ++mi)
      for (int64_t n = 0; n < 8; ++n)
        for (int64_t e = 0; e < 4; ++e)
          memref::StoreOp::create(b, state[sIndex(mi, n, e)], p.final,
                                  ValueRange{batch, head, stateRow(mi, e),
                                             add(colBase, stateCol(n, e))});
  gpu::ReturnOp::create(b);
  return true;
}

} // namespace attn
