//===- WgmmaSplitStateLinearKernel.cpp - chunkwise linear, state split off -===//
//
// A second Hopper shape of the chunkwise linear kernel (WgmmaChunkwiseLinear
// Kernel.cpp; same math, same gate conventions, docs/chunkwise-linear-gpu.md)
// for no, scalar and head-constant gates, identity feature map, no
// normalizer, f16 / bf16, Dk and Dv in {64, 128}. Pass option
// `chunked-linear-split-state` (attn-compile --chunked-linear-split-state).
//
// Why: in the one-consumer kernel a chunk is one dependent chain (Q K^T, the
// mask, A V, the state update, the state's write-out) and an SM holds two of
// them (two blocks, one consumer warpgroup each), so the tensor cores idle
// most of the chunk (session 13's profile: 31% of issue slots busy, 211 us
// against a 126 us bandwidth floor at T = 4k). Only the state update is a
// recurrence: a chunk's output needs the state at its start, nothing else of
// the chunks before it. So here one warpgroup runs the recurrence alone and
// hands each chunk's starting state to two output warpgroups, which take
// alternate chunks and run in parallel with it and with each other.
//
// Grid (1, H, B); a block of 512 threads, 1 per SM (180800 bytes of shared
// memory at Dk = Dv = 128 with gates):
//   warpgroup 0  producer: warp 0 issues the TMA loads of chunk c into stage
//                c % 2 (Q, K [64 x Dk], V [64 x Dv], 64 x 64 boxes) and scans
//                its gates into G[c % 2] (ChunkGates.h); arrives on full.
//   warpgroup 1  state: carries S [Dk x Dv] f32 in wgmma accumulators; per
//                chunk: K~ = K ⊙ 2^(G_last − G_s) into its own buffer (gates
//                only), S = 2^G_last S + K~^T V (Dk / 64 x 4 wgmma
//                m64nDvk16, A = K~^T MN-major), releases the stage, waits
//                until slot (c + 1) % 2 is free, writes S rounded to the
//                element type there (S_(c+1), the MN-major B operand of
//                Q S) and arrives on ready[(c + 1) % 2].
//   warpgroup 2 + w, w in {0, 1}: the output of chunks c = w, w + 2, ...
//                (stage and slot w): waits full[w] and ready[w]; A = Q K^T
//                (m64n64k16), OQ = Q S_c (m64nDvk16) as two groups; A's
//                decay 2^(G_t − G_s) while they run; A masked and packed;
//                frees slot w; O = 2^G_t OQ + A V (A from registers);
//                releases the stage; stores scale * O (rows < T).
// Barriers (mbarrier, parity = (c / 2) % 2 for chunk c): full[s] (the
// producer's expect_tx, + 32 gate lanes with gates), empty[s] (each warp of
// the state warpgroup and of output warpgroup s, after its last wgmma read
// of the stage: 8), ready[s] (the state warpgroup, 1), free[s] (each warp of
// output warpgroup s after Q S_c: 4). Stage s and slot s only ever serve
// output warpgroup s's chunks, so no waiter can fall two phases behind.
// Registers: 128 per thread at entry (65536 / 512), setmaxnreg 24 / 168 /
// 160 / 160.
//
// With `producerKScale` (chunked-linear-producer-k-scale, experimental, not
// yet run on a GPU; gates only): warps 1 and 2 of the producer warpgroup write
// K~[c % 2] (a double buffer) a row per thread once chunk c's stage has
// landed and arrive on kt_ready[c % 2] (64 arrivals); the state warpgroup waits
// there instead of scaling K itself, which took 37% of its samples on the
// H200 (d4) while the output warpgroups waited for it. Setmaxnreg 32 / 160 /
// 160 / 160, 2 stages.
//
// Shared memory (1024-byte aligned; every TMA box and wgmma operand 128-byte
// swizzled, the layouts of WgmmaChunkwiseLinearKernel.cpp): stage s in {0, 1}:
// Q [Dk / 64][64][64], K likewise, V [Dv / 64][64][64]; K~ [Dk / 64][64][64]
// (gates only); slots 0, 1: S_bf16 [Dv / 64 halves][Dk rows][64]; G [2][64]
// f32; the barriers.
//
//===----------------------------------------------------------------------===//

#include "ChunkGates.h"
#include "FragmentSoftmax.h"
#include "GpuKernelCommon.h"
#include "LinearProblem.h"
#include "PtxEmitter.h"
#include "WgmmaLinearCommon.h"

#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

namespace attn {

namespace {

constexpr int64_t kChunk = 64, kBoxCols = 64;
constexpr int64_t kBoxBytes = kChunk * 128; // one [64 rows][64] box of 16-bit elements
constexpr int64_t kWarpgroup = 128, kThreads = 4 * kWarpgroup;
// 128 x (24 + 168 + 2 x 160) = 65536: the whole register file, one block per
// SM. The state warpgroup holds Dk x Dv / 128 = 128 accumulators per thread
// at Dk = Dv = 128; an output warpgroup O (64), A (32), its decays (32) and
// A's packed registers (16).
constexpr int64_t kProducerRegisters = 24, kStateRegisters = 168, kOutputRegisters = 160;
static_assert(kWarpgroup * (kProducerRegisters + kStateRegisters + 2 * kOutputRegisters) <= 65536,
              "the setmaxnreg split exceeds the block's register pool");
// With the producer warpgroup scaling K (producerKScale): its warps 1 and 2
// need more than 24, the state warpgroup less (no K~ code).
constexpr int64_t kScalingProducerRegisters = 32, kLeanStateRegisters = 160;
static_assert(kWarpgroup * (kScalingProducerRegisters + kLeanStateRegisters +
                            2 * kOutputRegisters) <= 65536,
              "the setmaxnreg split exceeds the block's register pool");
constexpr int64_t kStateBarrier = 1; // named barrier of the state warpgroup
// Stages of Q, K, V (and G), as many as fit the 227 KiB a block may have, up
// to kMaxStages. 3 fit every shape it covers (230224 bytes at Dk = Dv = 128
// with gates) and were meant to let an output warpgroup's next chunk load
// before it released its current one, but on the H200 they ran no faster
// (simple_gla 278 / 281 and 281 / 270 TFLOP/s at T = 4k / 16k against 2
// stages' 291 / 277 and 285 / 275 in one call, bench/results/
// 2026-12-03-v25-session13/ d4): the output warpgroups wait for the state
// warpgroup, not for loads (ncu: the ready barrier holds 32% of the samples).
constexpr int64_t kMaxStages = 2, kMaxSharedBytes = 227 * 1024;

} // namespace

bool buildWgmmaSplitStateLinearKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                                      func::FuncOp host, LinearProblem p, bool producerKScale) {
  std::optional<WgmmaLinearShape> shape = wgmmaLinearShape(host, p);
  if (!shape || p.gate == GateKind::Vector)
    return false;
  // Named copies (structured bindings cannot be captured by the lambdas in C++17).
  Type et = shape->et;
  int64_t dk = shape->dk, dv = shape->dv, qArg = shape->qArg, kArg = shape->kArg,
          vArg = shape->vArg;
  bool gated = p.gate.has_value();
  // K~ by warps 1 and 2 of the producer warpgroup a chunk ahead, into a
  // double buffer (K~[c % 2]), instead of by the state warpgroup on its chain.
  bool kByProducer = gated && producerKScale;
  Type f32 = b.getF32Type(), i32 = b.getI32Type();

  // Byte offsets in the dynamic shared memory.
  int64_t qkBoxes = dk / kBoxCols, vBoxes = dv / kBoxCols;
  int64_t qOff = 0, kOff = qkBoxes * kBoxBytes, vOff = 2 * qkBoxes * kBoxBytes;
  int64_t stageBytes = vOff + vBoxes * kBoxBytes;
  int64_t slotBytes = dk * dv * 2, halfBytes = dk * 128; // S_bf16: [Dv / 64][Dk][64]
  int64_t ktBytes = qkBoxes * kBoxBytes, ktBuffers = !gated ? 0 : kByProducer ? 2 : 1;
  int64_t stages = kByProducer ? 2 : kMaxStages, ktOff, sOff, gOff, barOff, total;
  for (;; --stages) {
    ktOff = stages * stageBytes;
    sOff = ktOff + ktBuffers * ktBytes;
    gOff = sOff + 2 * slotBytes;
    barOff = gOff + stages * kChunk * 4;
    // full, empty [stages]; ready, free [2]; K~ ready [2] (producer K~)
    total = barOff + 8 * (2 * stages + 4 + (kByProducer ? 2 : 0));
    if (total <= kMaxSharedBytes || stages == 2)
      break;
  }
  int64_t producerRegs = kByProducer ? kScalingProducerRegisters : kProducerRegisters;
  int64_t stateRegs = kByProducer ? kLeanStateRegisters : kStateRegisters;

  memref::GlobalOp smemGlobal = getDynamicSharedMemory(b, module);
  IRMapping map;
  SmallVector<Value> unusedShared;
  gpu::GPUFuncOp kernel = createKernel(b, module, host, {}, map, unusedShared);
  SmallVector<Value> maps = appendTensorMapArguments(kernel, host, 3);
  Value qMap = maps[0], kMap = maps[1], vMap = maps[2];
  kernel->setAttr("attn.block_threads", b.getI64IntegerAttr(kThreads));
  kernel->setAttr("attn.tensor_cores", b.getStringAttr("wgmma.chunkwise"));
  kernel->setAttr("attn.split_state", b.getUnitAttr());
  if (kByProducer)
    kernel->setAttr("attn.producer_k_scale", b.getUnitAttr());
  kernel->setAttr("attn.dynamic_shared_memory", b.getI64IntegerAttr(total));
  kernel->setAttr("attn.grid_x", b.getI64IntegerAttr(1));
  kernel->setAttr(NVVM::NVVMDialect::getMaxntidAttrName(),
                  b.getDenseI32ArrayAttr({int32_t(kThreads), 1, 1}));
  kernel->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(), b.getI32IntegerAttr(1));
  kernel->setAttr("attn.tensor_maps",
                  b.getArrayAttr({tensorMapAttr(b, qArg, kBoxCols, kChunk),
                                  tensorMapAttr(b, kArg, kBoxCols, kChunk),
                                  tensorMapAttr(b, vArg, kBoxCols, kChunk)}));
  p.remap(map);

  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(&kernel.getBody().front());
  KernelBuilder kb(b);
  LoopBuilder &lb = kb.lb;
  FragmentBuilder fb(b, et);
  PtxEmitter ptx(b);
  auto idx = [&](int64_t v) { return lb.index(v); };
  auto c32 = [&](int64_t v) { return ptx.i32(v); };
  auto toI32 = [&](Value index) { return arith::IndexCastOp::create(b, i32, index).getResult(); };
  auto add = [&](Value x, Value y) { return arith::AddIOp::create(b, x, y).getResult(); };
  auto mul = [&](Value x, Value y) { return arith::MulIOp::create(b, x, y).getResult(); };
  auto div = [&](Value x, int64_t y) { return arith::DivUIOp::create(b, x, idx(y)).getResult(); };
  auto rem = [&](Value x, int64_t y) { return arith::RemUIOp::create(b, x, idx(y)).getResult(); };
  auto fmul = [&](Value x, Value y) { return arith::MulFOp::create(b, x, y).getResult(); };
  auto fsub = [&](Value x, Value y) { return arith::SubFOp::create(b, x, y).getResult(); };
  auto cmp = [&](arith::CmpIPredicate pred, Value x, Value y) {
    return arith::CmpIOp::create(b, pred, x, y).getResult();
  };
  auto eq = [&](Value x, int64_t v) { return cmp(arith::CmpIPredicate::eq, x, idx(v)); };
  // Every exponent is <= 0 for decaying gates.
  auto exp2 = [&](Value x) { return fastExp2(b, x); };

  Value head = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  Value batch = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value warp = div(tid, 32), lane = rem(tid, 32), wg = div(tid, kWarpgroup);
  Value wtid = rem(tid, kWarpgroup);
  Value seq = lb.dim(p.query, 2);
  Value chunks = div(add(seq, idx(kChunk - 1)), kChunk);

  // Shared memory: 32-bit shared-window addresses for the asynchronous
  // instructions, typed views for the ordinary accesses.
  SharedArena arena(b, smemGlobal, total);
  auto at = [&](Value offset) { return arena.address(offset); };
  auto view = [&](Value byteOffset, int64_t elements, Type type) {
    return arena.view(byteOffset, elements, type);
  };
  Value gView = view(idx(gOff), stages * kChunk, f32);
  auto bar = [&](int64_t first, Value s32) {
    return at(add(c32(barOff + 8 * first), mul(s32, c32(8))));
  };
  auto fullBar = [&](Value s) { return bar(0, s); };
  auto emptyBar = [&](Value s) { return bar(stages, s); };
  auto readyBar = [&](Value s) { return bar(2 * stages, s); };
  auto freeBar = [&](Value s) { return bar(2 * stages + 2, s); };
  auto ktReadyBar = [&](Value s) { return bar(2 * stages + 4, s); };
  auto descriptor = [&](Value offset, int64_t leadingBytes) {
    return wgmmaDescriptor(b, at(offset), leadingBytes);
  };
  // Chunk c's stage c % stages (index, i32, the parity of its full / empty
  // barriers, byte offset) and state slot c % 2 (i32, parity of ready / free).
  struct Stage {
    Value index, i32, parity, base, slot, slotParity;
  };
  auto stageOf = [&](Value c) {
    Stage st;
    st.index = rem(c, stages);
    st.i32 = toI32(st.index);
    st.parity = toI32(rem(div(c, stages), 2));
    st.base = mul(st.i32, c32(stageBytes));
    st.slot = toI32(rem(c, 2));
    st.slotParity = toI32(rem(div(c, 2), 2));
    return st;
  };
  // V as the MN-major B operand (N = Dv: the 64-column boxes kBoxBytes apart)
  // per k16 step over the chunk's steps.
  auto vDescriptors = [&](Value base) {
    SmallVector<Value> vDesc;
    for (int64_t u = 0; u < kChunk / 16; ++u)
      vDesc.push_back(descriptor(add(base, c32(vOff + u * 16 * 128)), kBoxBytes));
    return vDesc;
  };

  lb.ifThen(eq(tid, 0), [&] {
    for (int64_t s = 0; s < stages; ++s) {
      ptx.mbarrierInit(fullBar(c32(s)), gated ? 1 + 32 : 1);
      ptx.mbarrierInit(emptyBar(c32(s)), 8);
    }
    for (int64_t s = 0; s < 2; ++s) {
      ptx.mbarrierInit(readyBar(c32(s)), 1);
      ptx.mbarrierInit(freeBar(c32(s)), 4);
      if (kByProducer)
        ptx.mbarrierInit(ktReadyBar(c32(s)), 64); // every thread of warps 1, 2
    }
    ptx.mbarrierInitFence();
  });
  gpu::BarrierOp::create(b);

  // A lane's accumulator coordinates in its warpgroup: rows 16 warp + g
  // (+ 8), columns 8 j + t2 (+ 1) of n8 tile j.
  Value g, t2, rowA[2];
  auto placeLane = [&](Value threadIndex) {
    Value inGroup = rem(threadIndex, kWarpgroup), laneIndex = rem(threadIndex, 32);
    g = div(laneIndex, 4);
    t2 = mul(rem(laneIndex, 4), idx(2));
    rowA[0] = add(mul(div(inGroup, 32), idx(16)), g);
    rowA[1] = add(rowA[0], idx(8));
  };
  placeLane(tid);
  auto fragCol = [&](int64_t j, int64_t e) { return add(idx(j * 8 + e % 2), t2); };
  int64_t vTiles = dv / 8; // n8 tiles of an m64nDv accumulator

  auto producerOrNot = scf::IfOp::create(b, TypeRange(), eq(wg, 0), /*withElseRegion=*/true);
  //===--------------------------------------------------------------------===//
  // Producer: warp 0 of warpgroup 0.
  //===--------------------------------------------------------------------===//
  b.setInsertionPointToStart(&producerOrNot.getThenRegion().front());
  ptx.setMaxRegisters(producerRegs, /*increase=*/false);
  if (kByProducer) {
    // Warps 1, 2: K~[c % 2] = K ⊙ 2^(G_last − G_s) once chunk c's stage
    // (K and G) has landed, a row per thread; released per thread (each
    // one's own stores, then its arrival). K~[c % 2] is free again by then:
    // chunk c's stage can only land after chunk c - 2's empty barrier, which
    // waits for the state warpgroup's update that read K~[c % 2].
    lb.ifThen(arith::AndIOp::create(b, cmp(arith::CmpIPredicate::uge, warp, idx(1)),
                                    cmp(arith::CmpIPredicate::ule, warp, idx(2))),
              [&] {
      Value row = arith::SubIOp::create(b, tid, idx(32));
      int64_t tileElems = qkBoxes * kChunk * kBoxCols;
      lb.forLoop(idx(0), chunks, [&](Value c) {
        Stage st = stageOf(c);
        ptx.wait(fullBar(st.i32), st.parity);
        Value gFirst = mul(st.index, idx(kChunk));
        Value gLast =
            memref::LoadOp::create(b, gView, ValueRange{add(gFirst, idx(kChunk - 1))});
        Value gS = memref::LoadOp::create(b, gView, ValueRange{add(gFirst, row)});
        Value w = kb.splat(exp2(fsub(gLast, gS)), 8);
        Value kView = view(add(mul(st.index, idx(stageBytes)), idx(kOff)), tileElems, et);
        Value ktView = view(add(idx(ktOff), mul(rem(c, 2), idx(ktBytes))), tileElems, et);
        scaleSwizzledRow(b, kView, ktView, row, idx(0), w, dk, et, /*parts=*/1);
        ptx.fenceProxyAsync(); // K~ is read by wgmma
        ptx.arrive(ktReadyBar(toI32(rem(c, 2))));
      });
    });
  }
  lb.ifThen(eq(warp, 0), [&] {
    Value batch32 = toI32(batch), head32 = toI32(head);
    lb.forLoop(idx(0), chunks, [&](Value c) {
      Value t0 = mul(c, idx(kChunk));
      Stage st = stageOf(c);
      Value raw[2];
      if (gated)
        loadChunkScalarGates(b, p, batch, head, t0, lane, seq, raw);
      // From the stage's second fill on: its previous chunk's readers are done.
      lb.ifThen(cmp(arith::CmpIPredicate::uge, c, idx(stages)), [&] {
        ptx.wait(emptyBar(st.i32), toI32(rem(add(div(c, stages), idx(1)), 2)));
      });
      Value full = fullBar(st.i32);
      lb.ifThen(eq(lane, 0), [&] {
        ptx.arriveExpectTx(full, stageBytes);
        Value row = toI32(t0);
        for (int64_t box = 0; box < qkBoxes; ++box) {
          ptx.tmaLoad(at(add(st.base, c32(qOff + box * kBoxBytes))), qMap,
                      {c32(box * kBoxCols), row, head32, batch32}, full);
          ptx.tmaLoad(at(add(st.base, c32(kOff + box * kBoxBytes))), kMap,
                      {c32(box * kBoxCols), row, head32, batch32}, full);
        }
        for (int64_t box = 0; box < vBoxes; ++box)
          ptx.tmaLoad(at(add(st.base, c32(vOff + box * kBoxBytes))), vMap,
                      {c32(box * kBoxCols), row, head32, batch32}, full);
      });
      if (!gated)
        return;
      scanChunkScalarGates(b, raw, lane, gView, mul(st.index, idx(kChunk)));
      // Release semantics: G is visible to whoever completes the wait.
      ptx.arrive(full);
    });
  });

  b.setInsertionPointToStart(&producerOrNot.getElseRegion().front());
  auto stateOrOutput = scf::IfOp::create(b, TypeRange(), eq(wg, 1), /*withElseRegion=*/true);
  //===--------------------------------------------------------------------===//
  // State: warpgroup 1.
  //===--------------------------------------------------------------------===//
  b.setInsertionPointToStart(&stateOrOutput.getThenRegion().front());
  ptx.setMaxRegisters(stateRegs, /*increase=*/true);
  {
    // Accumulator index of (K box h, n8 tile j, element e); state row of it.
    auto sIndex = [&](int64_t h, int64_t j, int64_t e) { return (h * vTiles + j) * 4 + e; };
    auto stateRow = [&](int64_t h, int64_t e) { return add(idx(64 * h), rowA[e / 2]); };
    // S rounded into slot `slot` (TMA swizzle: 16-byte chunk n / 8 of row d
    // at (n / 8) ^ (d % 8), d % 8 = g): 4-byte pairs, 32 distinct banks a warp.
    // (stmatrix.x4, 16 a thread instead of these 64 stores, ran 1-4% slower
    // on the H200: bench/results/2026-12-03-v25-session13/ d5.)
    auto writeState = [&](ArrayRef<Value> s, Value slot) {
      writeSwizzledState(b, s, view(add(idx(sOff), mul(slot, idx(slotBytes))), dk * dv, et),
                         qkBoxes, vTiles, dk * kBoxCols, AccumulatorLane{g, t2, {rowA[0], rowA[1]}},
                         et);
    };
    // The writes visible to the output warpgroups' wgmma (async proxy), then
    // slot `slot` is ready.
    auto publishState = [&](Value slot32) {
      ptx.fenceProxyAsync();
      ptx.namedBarrierSync(c32(kStateBarrier), kWarpgroup);
      lb.ifThen(eq(wtid, 0), [&] { ptx.arrive(readyBar(slot32)); });
    };
    SmallVector<Value> init;
    for (int64_t h = 0; h < qkBoxes; ++h)
      for (int64_t j = 0; j < vTiles; ++j)
        for (int64_t e = 0; e < 4; ++e)
          init.push_back(p.initial ? lb.loadF32(p.initial,
                                                {batch, head, stateRow(h, e), fragCol(j, e)})
                                   : lb.f32(0.0));
    writeState(init, idx(0));
    publishState(c32(0));

    SmallVector<Value> state = kb.forWithState(
        idx(0), chunks, idx(1), init, [&](Value c, ValueRange carried) {
          Stage st = stageOf(c);
          SmallVector<Value> next(carried.begin(), carried.end());
          ptx.wait(fullBar(st.i32), st.parity);
          // A = K^T (MN-major): K itself, or K~ = K ⊙ 2^(G_last − G_s) in
          // this warpgroup's own buffer (the output warpgroup of the chunk
          // still reads K). Thread: row wtid % 64, half wtid / 64 of the
          // row's 16-byte chunks; chunk i of box b at (i ^ (row % 8)).
          int64_t aOff = kOff;
          Value aBase = st.base;
          if (kByProducer) {
            // K~[c % 2] from the producer warpgroup.
            ptx.wait(ktReadyBar(st.slot), st.slotParity);
            Value gLast = memref::LoadOp::create(
                b, gView, ValueRange{add(mul(st.index, idx(kChunk)), idx(kChunk - 1))});
            Value decay = exp2(gLast);
            for (Value &s : next)
              s = fmul(s, decay);
            aOff = ktOff;
            aBase = mul(st.slot, c32(ktBytes));
          } else if (gated) {
            Value gFirst = mul(st.index, idx(kChunk));
            Value gLast = memref::LoadOp::create(b, gView, ValueRange{add(gFirst, idx(kChunk - 1))});
            Value row = rem(wtid, kChunk), part = div(wtid, kChunk);
            Value gS = memref::LoadOp::create(b, gView, ValueRange{add(gFirst, row)});
            Value w = kb.splat(exp2(fsub(gLast, gS)), 8);
            int64_t tileElems = qkBoxes * kChunk * kBoxCols;
            Value kView = view(add(mul(st.index, idx(stageBytes)), idx(kOff)), tileElems, et);
            Value ktView = view(idx(ktOff), tileElems, et);
            scaleSwizzledRow(b, kView, ktView, row, part, w, dk, et);
            ptx.fenceProxyAsync(); // K~ is read by wgmma
            ptx.namedBarrierSync(c32(kStateBarrier), kWarpgroup);
            Value decay = exp2(gLast);
            for (Value &s : next)
              s = fmul(s, decay);
            aOff = ktOff;
            aBase = c32(0);
          }
          // S += K^T V.
          SmallVector<Value> vDesc = vDescriptors(st.base);
          ptx.wgmmaFence();
          for (int64_t h = 0; h < qkBoxes; ++h) {
            SmallVector<Value> acc(next.begin() + h * 4 * vTiles,
                                   next.begin() + (h + 1) * 4 * vTiles);
            for (int64_t u = 0; u < kChunk / 16; ++u)
              acc = ptx.wgmma(
                  acc, descriptor(add(aBase, c32(aOff + h * kBoxBytes + u * 16 * 128)), kBoxBytes),
                  {}, vDesc[u], dv, et, /*transposeB=*/true, /*transposeA=*/true);
            std::copy(acc.begin(), acc.end(), next.begin() + h * 4 * vTiles);
          }
          ptx.wgmmaCommit();
          ptx.wgmmaWait(0);
          next = ptx.fenceOperands(next);
          // This warp's reads of the stage (K, V) are done.
          lb.ifThen(eq(lane, 0), [&] { ptx.arrive(emptyBar(st.i32)); });
          // Slot (c + 1) % 2 held S_(c - 1): wait until chunk c - 1's output
          // warpgroup has read it.
          Value nextSlot = rem(add(c, idx(1)), 2);
          Value nextSlot32 = toI32(nextSlot);
          lb.ifThen(cmp(arith::CmpIPredicate::uge, c, idx(1)), [&] {
            ptx.wait(freeBar(nextSlot32),
                     toI32(rem(div(arith::SubIOp::create(b, c, idx(1)), 2), 2)));
          });
          writeState(next, nextSlot);
          publishState(nextSlot32);
          return next;
        });
    if (p.final)
      for (int64_t h = 0; h < qkBoxes; ++h)
        for (int64_t j = 0; j < vTiles; ++j)
          for (int64_t e = 0; e < 4; ++e)
            memref::StoreOp::create(b, state[sIndex(h, j, e)], p.final,
                                    ValueRange{batch, head, stateRow(h, e), fragCol(j, e)});
  }

  //===--------------------------------------------------------------------===//
  // Output: warpgroups 2 and 3, chunks w, w + 2, ... (w = warpgroup - 2).
  //===--------------------------------------------------------------------===//
  b.setInsertionPointToStart(&stateOrOutput.getElseRegion().front());
  ptx.setMaxRegisters(kOutputRegisters, /*increase=*/true);
  {
    Value w = arith::SubIOp::create(b, wg, idx(2));
    auto outputLoop = scf::ForOp::create(b, w, chunks, idx(2));
    b.setInsertionPointToStart(outputLoop.getBody());
    {
      Value c = outputLoop.getInductionVar();
      // The lane's coordinates and the stage's descriptors from indices LLVM
      // cannot see through (a `mov` in side-effecting asm): computed here,
      // not hoisted out of the loop (LLVM sees through c % stages)
      // and held through it (80 bytes of spills at 160 registers).
      auto opaque = [&](Value v) -> Value {
        return arith::IndexCastOp::create(
            b, b.getIndexType(), ptx.emit({i32}, {toI32(v)}, "mov.b32 $0, $1;", "=r,r"));
      };
      placeLane(opaque(tid));
      Value t0 = mul(c, idx(kChunk));
      Stage st = stageOf(opaque(c));
      // The stage's and the slot's byte offsets broadcast from lane 0: ptxas
      // then knows the descriptors computed from them are warp-uniform (from
      // %tid.x, through the chunk index, every wgmma waited on R2URs). Not
      // with the producer's K scaling (experimental), whose leaner registers
      // it spilled (28 B).
      auto broadcast32 = [&](Value v) -> Value {
        if (kByProducer)
          return v;
        return ptx.broadcastFromLaneZero(v);
      };
      Value stageBase = broadcast32(st.base);
      Value slotBase = broadcast32(mul(st.slot, c32(slotBytes)));
      SmallVector<Value> qDesc, kDesc, sDesc;
      for (int64_t step = 0; step < dk / 16; ++step) {
        int64_t box = step * 16 / kBoxCols, inBox = (step * 16 % kBoxCols) * 2;
        qDesc.push_back(descriptor(add(stageBase, c32(qOff + box * kBoxBytes + inBox)), 16));
        kDesc.push_back(descriptor(add(stageBase, c32(kOff + box * kBoxBytes + inBox)), 16));
        // S_c [Dk rows][64] per value half (halfBytes apart): 16 rows a step.
        sDesc.push_back(descriptor(add(slotBase, c32(sOff + step * 16 * 128)), halfBytes));
      }
      SmallVector<Value> vDesc = vDescriptors(stageBase);
      ptx.wait(fullBar(st.i32), st.parity);
      ptx.wait(readyBar(st.slot), st.slotParity);
      // A = Q K^T and OQ = Q S_c, two groups.
      ptx.wgmmaFence();
      SmallVector<Value> a(32, lb.f32(0.0));
      for (int64_t step = 0; step < dk / 16; ++step)
        a = ptx.wgmma(a, qDesc[step], {}, kDesc[step], kChunk, et, /*transposeB=*/false);
      ptx.wgmmaCommit();
      SmallVector<Value> o(4 * vTiles, lb.f32(0.0));
      for (int64_t step = 0; step < dk / 16; ++step)
        o = ptx.wgmma(o, qDesc[step], {}, sDesc[step], dv, et, /*transposeB=*/true);
      ptx.wgmmaCommit();
      // A's decay 2^(G_t − G_s) (one exp2 per element: 2^G_t 2^-G_s could
      // overflow): the gates loaded while both groups run, the exp2 after
      // (computed before the wait too, its 32 values spill at 160 registers).
      Value gFirst = mul(st.index, idx(kChunk));
      Value gRow[2];
      SmallVector<Value> gCols;
      if (gated) {
        for (int r = 0; r < 2; ++r)
          gRow[r] = memref::LoadOp::create(b, gView, ValueRange{add(gFirst, rowA[r])});
        for (int64_t j = 0; j < 8; ++j)
          gCols.push_back(vector::LoadOp::create(b, VectorType::get({2}, f32), gView,
                                                 ValueRange{add(gFirst, fragCol(j, 0))}));
      }
      ptx.wgmmaWait(1);
      a = ptx.fenceOperands(a);
      SmallVector<Value> decayA;
      if (gated)
        for (int64_t j = 0; j < 8; ++j)
          for (int64_t e = 0; e < 4; ++e)
            decayA.push_back(
                exp2(fsub(gRow[e / 2], vector::ExtractOp::create(b, gCols[j], e % 2))));
      SmallVector<Value> aRegs =
          causalChunkOperand(b, fb, a, decayA, AccumulatorLane{g, t2, {rowA[0], rowA[1]}});
      ptx.wgmmaWait(0);
      o = ptx.fenceOperands(o);
      // This warp is done with S_c: the state warpgroup may overwrite slot.
      lb.ifThen(eq(lane, 0), [&] { ptx.arrive(freeBar(st.slot)); });
      // O = 2^G_t OQ + A V.
      if (gated) {
        Value decay[2] = {exp2(gRow[0]), exp2(gRow[1])};
        for (int64_t i = 0; i < 4 * vTiles; ++i)
          o[i] = fmul(o[i], decay[(i % 4) / 2]);
      }
      ptx.wgmmaFence();
      for (int64_t u = 0; u < 4; ++u)
        o = ptx.wgmma(o, Value(), ArrayRef<Value>(aRegs).slice(4 * u, 4), vDesc[u], dv, et,
                      /*transposeB=*/true);
      ptx.wgmmaCommit();
      ptx.wgmmaWait(0);
      o = ptx.fenceOperands(o);
      // This warp's reads of the stage (Q, K, V, G) are done.
      lb.ifThen(eq(lane, 0), [&] { ptx.arrive(emptyBar(st.i32)); });
      storeOutputPairs(b, o, p.out, batch, head, t0, seq, /*colBase=*/Value(), vTiles, p.scale,
                       AccumulatorLane{g, t2, {rowA[0], rowA[1]}});
    }
  }
  b.setInsertionPointAfter(producerOrNot);
  gpu::ReturnOp::create(b);
  return true;
}

} // namespace attn
