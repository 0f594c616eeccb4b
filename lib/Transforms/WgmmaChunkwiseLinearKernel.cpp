//===- WgmmaChunkwiseLinearKernel.cpp - chunkwise linear attention, sm_90a -===//
//
// The Hopper form of ChunkwiseLinearKernel.cpp (same math, same gate
// conventions; docs/chunkwise-linear-gpu.md) for plain linear attention
// (identity feature map, no normalizer) and gated linear attention with
// scalar or head-constant gates, f16 / bf16, head dims 64 / 128. Pass option
// `chunked-linear-wgmma` of attn-lower-to-gpu-kernels (attn-compile
// --chunked-linear-wgmma, sm_90a only); everything else keeps the mma.sync
// kernel.
//
// With `vectorGates` (chunked-linear-wgmma-vector; off in the pass, on in
// attn-compile since session 10), vector gates (GLA) too: `vectorChunk` below and
// docs/chunkwise-linear-gpu.md "Session 9" (8-key sub-blocks with reference
// step 8j + 7 on m64n8k16, the 8 x 8 diagonal triangles in f32; G [2][64][Dk]
// f32 and K~ in shared memory: 1 block per SM at Dk = 128). With
// `producerDiagonal` (experimental) the producer warpgroup computes those
// triangles a chunk ahead (`diagonalTriangles`). With `twoConsumers` (on in
// attn-compile since session 11; Dk = Dv = 128) a block of 384 threads per
// (batch, head): two consumer warpgroups, one per 64-column value half,
// split the state-independent part of a chunk and exchange A through
// shared memory (docs/chunkwise-linear-gpu.md "Session 11"); their diagonal
// blocks compute only the pairs at or below the diagonal (`pairDiagonal`,
// "Session 12").
//
// Grid (Dv / 64, H, B); a block of 256 threads: warpgroup 0 produces (one
// warp: lane 0 issues the TMA loads, the 32 lanes scan the chunk's gates),
// warpgroup 1 consumes (carries the f32 state slice S[Dk, 64] in its
// wgmma accumulators: Dk / 64 x m64n64, 64 f32 per thread at Dk = 128).
// Registers: 128 per thread at launch (.maxntid 256, .minnctapersm 2), then
// setmaxnreg 24 (producer) / 232 (consumer): 2 blocks per SM.
//
// Per chunk c of 64 steps (stage c % 2; G = log2(e) * the in-chunk inclusive
// cumsum of the natural-log gates, 0 without gates):
//   producer  wait empty[stage]; TMA Q, K [64 x Dk] (Dk / 64 boxes each) and
//             V [64 x 64] (columns 64 blockIdx.x) into the stage (rows past T
//             zero-filled); G[stage] from the gates (shuffle scan); arrive
//             on full[stage] (expect_tx + 32 lanes with gates, expect_tx only
//             without)
//   consumer  wait full[stage]
//             A  = Q K^T                  8 x wgmma m64n64k16 (K-major Q, K)
//             OQ = Q S_bf16               8 x wgmma m64n64k16 (S MN-major)
//             A  = A ⊙ 2^(G_t − G_s) ⊙ [s <= t], rounded to the A registers
//             O  = 2^G_t ⊙ OQ + A V       4 x wgmma, A from registers
//             K <- K ⊙ 2^(G_last − G_s)   in place (gates only; row scale,
//                                         so the swizzle does not matter)
//             S  = 2^G_last S + K^T V     Dk / 64 x 4 x wgmma, A = K^T as an
//                                         MN-major (transposed) descriptor
//             out <- scale * O (rows < T); S_bf16 <- S; release the stage
// With `overlap` (chunked-linear-wgmma-overlap, experimental), O is stored
// while the state update runs, and the next chunk's A = Q K^T is issued
// right after (it runs during the S_bf16 write-out and the barrier) and
// carried, complete, into the next iteration.
//
// Shared memory (1024-byte aligned, carved by offset; every TMA box and
// wgmma operand 128-byte swizzled): stage s in {0, 1}: Q [Dk/64 boxes][64
// rows][64], K likewise, V [64 rows][64]; then S_bf16 [Dk rows][64] (written
// with the TMA swizzle: element (d, n) at d * 128 + ((n / 8) ^ (d % 8)) * 16
// + (n % 8) * 2), G [2][64] f32, mbarriers full[2], empty[2].
// wgmma descriptors as WgmmaSoftmaxKernel.cpp: K-major operands (Q, K in
// Q K^T) step 32 bytes per k16 inside a 64-wide box, 8-row groups 1024 bytes
// apart; MN-major operands (S_bf16 and V as B, K^T as A) step 16 rows = 2048
// bytes per k16, 8-row groups 1024 bytes apart, 64-wide M/N boxes `leading`
// bytes apart (one box here: M = N = 64).
//
//===----------------------------------------------------------------------===//

#include "ChunkGates.h"
#include "FragmentSoftmax.h"
#include "GpuKernelCommon.h"
#include "LinearProblem.h"
#include "PtxEmitter.h"
#include "WgmmaLinearCommon.h"
#include "ScoreEmitter.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "llvm/Support/SaveAndRestore.h"

namespace attn {

namespace {

constexpr int64_t kChunk = 64, kCols = 64, kBoxCols = 64;
constexpr int64_t kBoxBytes = kChunk * 128; // one [64 rows][64] box of 16-bit elements
constexpr int64_t kThreads = 256, kConsumerThreads = 128;
// 128 * 40 + 128 * 216 = 32768 = 256 threads x the 128 registers per thread
// of two blocks per SM.
constexpr int64_t kProducerRegisters = 40, kConsumerRegisters = 216;
// Vector gates at Dk = 128 (1 block per SM by shared memory: 255 registers
// per thread at launch): 40 + 248 (the consumer spills at 224, and by 4 bytes
// at 240 with the chained scales; the producer's gate scan at 24).
constexpr int64_t kVecProducerRegisters = 40, kVecConsumerRegisters = 248;
// ... when the producer computes the diagonal triangles too (1 block per SM:
// the register file has room for both).
constexpr int64_t kDiagProducerRegisters = 168;
// Two consumer warpgroups (vector gates, Dk = Dv = 128; 384 threads, 1
// block per SM): setmaxnreg moves registers within the block's own pool,
// 384 x 168 (the cap at entry) = 64512 = 128 x 24 + 256 x 240 (32 / 240
// asks for 1024 more than the pool holds: the consumers' setmaxnreg.inc
// never returned and the kernel hung on the H200).
constexpr int64_t kPairProducerRegisters = 24, kPairConsumerRegisters = 240;
constexpr int64_t kConsumerBarrier = 1; // named barrier of the consumer warpgroup
constexpr int64_t kProducerBarrier = 2; // ... of the producer warpgroup (diagonal)
// Two consumer warpgroups: each one's own barrier (3 + its index), and one
// for the 256 consumer threads together.
constexpr int64_t kPairBarrierBase = 3, kBothConsumersBarrier = 5;
// Two consumer warpgroups: words per thread of the A exchange (8 packed
// pairs of its 4 sub-block tiles; 4 more per thread hold the warpgroup's
// [64 rows][8 keys] f32 partial sums of the diagonal blocks).
constexpr int64_t kExchangeWords = 12;
// Vector gates: k16-step groups of Q S and the A sub-block chains left in
// flight while the next step's operands are computed.
constexpr int kVecInFlight = 0;
// Vector gates: Q ⊙ 2^(G_t − G_r(j)) for the 7 reference blocks as one exp2
// (the nearest block below the row's) times a per-chunk table of
// 2^(G_r(j+1) − G_r(j)) (exponents <= 0), rather than 7 exp2 per value.
constexpr bool kVecChainedScales = true;

} // namespace

bool buildWgmmaChunkwiseLinearKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                                     func::FuncOp host, LinearProblem p,
                                     WgmmaLinearOptions options) {
  bool overlap = options.overlap, vectorGates = options.vectorGates;
  std::optional<WgmmaLinearShape> shape = wgmmaLinearShape(host, p);
  if (!shape || (p.gate == GateKind::Vector && !vectorGates))
    return false;
  // Named copies (structured bindings cannot be captured by the lambdas in C++17).
  Type et = shape->et;
  int64_t dk = shape->dk, dv = shape->dv, qArg = shape->qArg, kArg = shape->kArg,
          vArg = shape->vArg;
  bool gated = p.gate.has_value();
  // Vector gates (GLA): G [2 stages][64][Dk] f32 and K~ (below); no overlap.
  bool vec = p.gate == GateKind::Vector;
  if (vec)
    overlap = false;
  // Two consumer warpgroups (GLA at Dk = Dv = 128; docs/chunkwise-linear-gpu.md
  // "Session 11"): one block per (batch, head), consumer warpgroup h owns
  // value columns 64 h .. 64 h + 63 (its state half and output columns) and
  // half of the state-independent work of a chunk (K~, the ratio table, the
  // reference sub-blocks 4 h .. 4 h + 3 of A, dims 64 h .. of the diagonal
  // triangles, half of K's in-place scaling); the two exchange their parts
  // of A through shared memory. Without it, two blocks (one per value half)
  // each computed all of A.
  bool pair = vec && options.twoConsumers && !options.producerDiagonal && dk == 128 &&
              dv == 128;
  int64_t consumers = pair ? 2 : 1;
  int64_t threads = kThreads + (consumers - 1) * kConsumerThreads;
  int64_t allConsumerThreads = consumers * kConsumerThreads;
  Type f32 = b.getF32Type(), i32 = b.getI32Type(), i64 = b.getI64Type();

  // Byte offsets in the dynamic shared memory.
  int64_t boxes = dk / kBoxCols; // Q / K boxes, state halves
  int64_t qkBytes = boxes * kBoxBytes;
  // V: one [64 rows][64] box per consumer warpgroup (value half).
  int64_t qOff = 0, kOff = qkBytes, vOff = 2 * qkBytes,
          stageBytes = vOff + consumers * kBoxBytes;
  // S_bf16: one [Dk rows][64] tile per consumer warpgroup.
  int64_t stateTileBytes = dk * kCols * 2;
  int64_t sOff = 2 * stageBytes, gOff = sOff + consumers * stateTileBytes,
          barOff = gOff + 2 * kChunk * 4;
  // Vector gates: G [2][64][Dk] f32 (row-major), then K~ [Dk / 64 boxes][64
  // rows][64] (1024-aligned, K's swizzled layout), then the barriers.
  int64_t ktOff = 0, diagOff = 0;
  // G's row stride (f32): 8 floats of padding put the 8 rows of a fragment
  // load (lanes g = 0..7, same dims) 8 banks apart instead of on one bank.
  // Two consumer warpgroups: 4 floats (4 banks a row: a fragment load's
  // half-warp, rows g = 0..3, still covers the 32 banks once; a quarter-warp
  // of 16-byte loads of 8 rows too), which leaves room for both value halves.
  int64_t ldg = pair ? dk + 4 : dk + 8;
  int64_t xOff = 0; // two consumer warpgroups: the A exchange [2][12][128] 32-bit words
  int64_t ratioRows = pair ? 8 : 6;
  if (vec) {
    ktOff = gOff + 2 * kChunk * ldg * 4; // a multiple of 1024 (ldg = Dk + 8, or Dk + 4 at Dk = 128)
    barOff = ktOff + qkBytes;
    if (kVecChainedScales)
      barOff += ratioRows * dk * 4; // the ratio table D [6 or 8][Dk] f32
    if (pair) {
      xOff = barOff;
      barOff += consumers * kExchangeWords * kConsumerThreads * 4;
    }
  }
  // Producer diagonal (Dk = 128: the kernel already runs 1 block per SM):
  // diag [2 stages][64 rows][8 keys of the row's 8-block] f32, and a
  // loaded[2] barrier (TMA only) that the producer waits on before reading
  // the stage's Q and K; full[stage] then means G and diag are written too.
  bool producerDiag = vec && options.producerDiagonal && dk == 128;
  if (producerDiag) {
    diagOff = barOff;
    barOff += 2 * kChunk * 8 * 4;
  }
  int64_t total = barOff + (producerDiag ? 6 : 4) * 8;
  int64_t stageTxBytes = stageBytes; // Q, K and V boxes of one chunk

  memref::GlobalOp smemGlobal = getDynamicSharedMemory(b, module);
  IRMapping map;
  SmallVector<Value> unusedShared;
  gpu::GPUFuncOp kernel = createKernel(b, module, host, {}, map, unusedShared);
  SmallVector<Value> maps = appendTensorMapArguments(kernel, host, 3);
  Value qMap = maps[0], kMap = maps[1], vMap = maps[2];
  kernel->setAttr("attn.block_threads", b.getI64IntegerAttr(threads));
  kernel->setAttr("attn.tensor_cores", b.getStringAttr("wgmma.chunkwise"));
  kernel->setAttr("attn.dynamic_shared_memory", b.getI64IntegerAttr(total));
  kernel->setAttr("attn.grid_x", b.getI64IntegerAttr(dv / (kCols * consumers)));
  if (pair)
    kernel->setAttr("attn.consumer_warpgroups", b.getI64IntegerAttr(consumers));
  if (overlap)
    kernel->setAttr("attn.overlap", b.getUnitAttr());
  // The register cap at entry (65536 / (256 x 2) = 128) that setmaxnreg
  // redistributes.
  kernel->setAttr(NVVM::NVVMDialect::getMaxntidAttrName(),
                  b.getDenseI32ArrayAttr({int32_t(threads), 1, 1}));
  // Vector gates past ~113 KB of shared memory run 1 block per SM.
  bool oneBlock = vec && total > 113 * 1024;
  kernel->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(), b.getI32IntegerAttr(oneBlock ? 1 : 2));
  // The setmaxnreg split. It moves registers within the block's pool (the
  // cap at entry, 65536 / (threads x blocks per SM) rounded down to 8, per
  // thread): a split that asks for more never returns from setmaxnreg.inc.
  int64_t producerRegs = producerDiag ? kDiagProducerRegisters
                         : pair       ? kPairProducerRegisters
                         : oneBlock   ? kVecProducerRegisters
                                      : kProducerRegisters;
  int64_t consumerRegs = pair       ? kPairConsumerRegisters
                         : oneBlock ? kVecConsumerRegisters
                                    : kConsumerRegisters;
  int64_t entryCap = std::min<int64_t>(256, 65536 / (threads * (oneBlock ? 1 : 2)) / 8 * 8);
  if (128 * producerRegs + allConsumerThreads * consumerRegs > entryCap * threads)
    llvm::report_fatal_error("chunkwise linear kernel: the setmaxnreg split exceeds the "
                             "block's register pool");
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
  auto c64 = [&](int64_t v) { return arith::ConstantIntOp::create(b, v, 64).getResult(); };
  auto toI32 = [&](Value index) { return arith::IndexCastOp::create(b, i32, index).getResult(); };
  // An index LLVM cannot see through (a `mov` in side-effecting asm), so that
  // what is derived from it is computed where it is used instead of hoisted
  // out of the chunk loop and held in registers through it.
  auto opaqueIndex = [&](Value v) -> Value {
    return arith::IndexCastOp::create(
        b, b.getIndexType(), ptx.emit({i32}, {toI32(v)}, "mov.b32 $0, $1;", "=r,r"));
  };
  auto add = [&](Value x, Value y) { return arith::AddIOp::create(b, x, y).getResult(); };
  auto mul = [&](Value x, Value y) { return arith::MulIOp::create(b, x, y).getResult(); };
  auto div = [&](Value x, int64_t y) {
    return arith::DivUIOp::create(b, x, idx(y)).getResult();
  };
  auto rem = [&](Value x, int64_t y) {
    return arith::RemUIOp::create(b, x, idx(y)).getResult();
  };
  auto fadd = [&](Value x, Value y) { return arith::AddFOp::create(b, x, y).getResult(); };
  auto fmul = [&](Value x, Value y) { return arith::MulFOp::create(b, x, y).getResult(); };
  auto fsub = [&](Value x, Value y) { return arith::SubFOp::create(b, x, y).getResult(); };
  auto cmp = [&](arith::CmpIPredicate pred, Value x, Value y) {
    return arith::CmpIOp::create(b, pred, x, y).getResult();
  };
  // Every exponent is <= 0 for decaying gates (as the mma.sync kernel).
  auto exp2 = [&](Value x) { return fastExp2(b, x); };

  Value colBlock = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value head = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  Value batch = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value warp = div(tid, 32), lane = rem(tid, 32), wg = div(tid, 128);
  Value colBase = mul(colBlock, idx(kCols * consumers));
  Value seq = lb.dim(p.query, 2);
  Value chunks = div(add(seq, idx(kChunk - 1)), kChunk);

  // Shared memory: 32-bit shared-window addresses for the asynchronous
  // instructions, typed views for the ordinary accesses.
  SharedArena arena(b, smemGlobal, total);
  auto at = [&](Value offset) { return arena.address(offset); };
  auto view = [&](Value byteOffset, int64_t elements, Type type) {
    return arena.view(byteOffset, elements, type);
  };
  Value sView = view(idx(sOff), dk * kCols, et);
  Value gView = view(idx(gOff), vec ? 2 * kChunk * ldg : 2 * kChunk, f32);
  auto fullBar = [&](Value stage32) { return at(add(c32(barOff), mul(stage32, c32(8)))); };
  auto emptyBar = [&](Value stage32) {
    return at(add(c32(barOff + 16), mul(stage32, c32(8))));
  };
  auto loadedBar = [&](Value stage32) {
    return at(add(c32(barOff + 32), mul(stage32, c32(8))));
  };
  Value diagView = producerDiag ? view(idx(diagOff), 2 * kChunk * 8, f32) : Value();
  // Element index of (row, dim) in a swizzled [Dk / 64 boxes][64 rows][64]
  // tile of 16-bit elements (Q and K as TMA writes them).
  auto swz = [&](Value row, Value dim) {
    Value box = div(dim, kBoxCols), inBox = rem(dim, kBoxCols);
    Value phys = arith::XOrIOp::create(b, div(inBox, 8), rem(row, 8));
    return add(add(mul(box, idx(kChunk * kBoxCols)), mul(row, idx(kBoxCols))),
               add(mul(phys, idx(8)), rem(inBox, 8)));
  };
  auto descriptor = [&](Value offset, int64_t leadingBytes) {
    return wgmmaDescriptor(b, at(offset), leadingBytes);
  };
  // Stage `stageIdx`'s swizzled Q or K tile ([Dk / 64 boxes][64 rows][64],
  // at `offset` in the stage) as a typed view.
  auto stageTile = [&](Value stageIdx, int64_t offset) {
    return view(add(mul(stageIdx, idx(stageBytes)), idx(offset)), boxes * kChunk * kBoxCols, et);
  };

  Value firstThread = cmp(arith::CmpIPredicate::eq, tid, idx(0));
  lb.ifThen(firstThread, [&] {
    for (int64_t s = 0; s < 2; ++s) {
      // The producer's expect_tx arrival, plus each gate lane's (producer
      // diagonal: every producer thread's, the TMA completing on loaded).
      ptx.mbarrierInit(fullBar(c32(s)),
                       producerDiag ? 128 : vec ? 1 + dk : gated ? 1 + 32 : 1);
      if (producerDiag)
        ptx.mbarrierInit(loadedBar(c32(s)), 1);
      // One thread of each consumer warpgroup, after its last barrier of
      // the chunk.
      ptx.mbarrierInit(emptyBar(c32(s)), consumers);
    }
    ptx.mbarrierInitFence();
  });
  gpu::BarrierOp::create(b);

  auto roles = scf::IfOp::create(b, TypeRange(),
                                 cmp(arith::CmpIPredicate::eq, wg, idx(0)),
                                 /*withElseRegion=*/true);
  //===--------------------------------------------------------------------===//
  // Producer: warp 0 of warpgroup 0.
  //===--------------------------------------------------------------------===//
  b.setInsertionPointToStart(&roles.getThenRegion().front());
  ptx.setMaxRegisters(producerRegs, /*increase=*/false);
  // From the stage's second fill on (chunk c >= 2): every consumer read of
  // its previous chunk (Q, K, V, G) is done.
  auto waitStageFree = [&](Value c, Value stage, Value round) {
    lb.ifThen(cmp(arith::CmpIPredicate::uge, c, idx(2)), [&] {
      ptx.wait(emptyBar(stage),
               arith::RemUIOp::create(b, arith::SubIOp::create(b, round, c32(1)), c32(2)));
    });
  };
  // The chunk from step t0 into `stage` (completing on `full`): the
  // expected bytes, then Q and K per box, and V.
  auto issueChunkLoads = [&](Value stage, Value t0, Value full, Value batch32, Value head32,
                             Value col32) {
    ptx.arriveExpectTx(full, stageTxBytes);
    Value base = mul(stage, c32(stageBytes));
    Value row = toI32(t0);
    for (int64_t box = 0; box < boxes; ++box) {
      ptx.tmaLoad(at(add(base, c32(qOff + box * kBoxBytes))), qMap,
                  {c32(box * kBoxCols), row, head32, batch32}, full);
      ptx.tmaLoad(at(add(base, c32(kOff + box * kBoxBytes))), kMap,
                  {c32(box * kBoxCols), row, head32, batch32}, full);
    }
    for (int64_t half = 0; half < consumers; ++half)
      ptx.tmaLoad(at(add(base, c32(vOff + half * kBoxBytes))), vMap,
                  {add(col32, c32(half * kCols)), row, head32, batch32}, full);
  };
  // Producer diagonal: the 8 x 8 diagonal triangles of the chunk in stage
  // `stageIdx`, diag[stage][t][s % 8] = sum_d Q[t, d] K[s, d] 2^(G[t, d] −
  // G[s, d]) for s <= t in the same 8-step block (one exp2 per term, as the
  // consumer's form). Thread (warp w, lane 4 blk + q) takes block blk, dims
  // q Dk / 4 .. + Dk / 4, and w's quarter of the triangle: w = 0 the upper
  // 4 x 4 triangle (rows and keys 0..3, 10 pairs), 1 the lower one (4..7),
  // 2 and 3 rows 4, 5 / 6, 7 against keys 0..3 (8 pairs): 320 exp2 per
  // thread at most, against 512 per consumer lane for the whole 8 x 8
  // blocks. The four dim quarters meet by two xor shuffles. A thread walks
  // its 32 dims in 4-dim units starting at unit (blk + 2 q) % 8: the 8
  // lanes of a 16-byte load phase then hit 8 distinct bank groups of G
  // (rows 8 apart are 8 x 544 bytes apart: the same banks) and of the
  // swizzled Q, K rows (in unit order, every lane hit the same banks:
  // 8-way conflicts, and the kernel ran 16% slower than without this).
  auto diagonalTriangles = [&](Value stageIdx) {
    VectorType vec4 = VectorType::get({4}, et), vec4f = VectorType::get({4}, f32);
    Value qView = stageTile(stageIdx, qOff);
    Value kView = stageTile(stageIdx, kOff);
    Value gBase = mul(stageIdx, idx(kChunk * ldg));
    Value blockRow = mul(div(lane, 4), idx(8)), quarter = rem(lane, 4);
    Value dimBase = mul(quarter, idx(dk / 4));
    constexpr int64_t kUnits = 8; // 4-dim units per quarter at Dk = 128
    Value rotation = rem(add(div(lane, 4), mul(quarter, idx(2))), kUnits);
    auto triangle = [&](ArrayRef<int64_t> rows, ArrayRef<int64_t> keys) {
      SmallVector<std::pair<int64_t, int64_t>> pairs;
      for (int64_t t : rows)
        for (int64_t s : keys)
          if (s <= t)
            pairs.push_back({t, s});
      SmallVector<Value> sums = kb.forWithState(
          idx(0), idx(kUnits), idx(1), SmallVector<Value>(pairs.size(), lb.f32(0.0)),
          [&](Value u, ValueRange acc) {
            Value d0 = add(dimBase, mul(rem(add(u, rotation), kUnits), idx(4)));
            // Q, K and G of the positions this quarter touches, 8 dims each.
            DenseMap<int64_t, Value> q, k, gate;
            auto gAt = [&](int64_t pos) {
              if (!gate.count(pos))
                gate[pos] = vector::LoadOp::create(
                    b, vec4f, gView,
                    ValueRange{add(gBase, add(mul(add(blockRow, idx(pos)), idx(ldg)), d0))},
                    false, llvm::MaybeAlign(16));
              return gate[pos];
            };
            auto load = [&](Value tile, int64_t pos) -> Value {
              Value index = swz(add(blockRow, idx(pos)), d0);
              return arith::ExtFOp::create(
                  b, vec4f,
                  vector::LoadOp::create(b, vec4, tile, ValueRange{index}, false,
                                         llvm::MaybeAlign(8))
                      .getResult());
            };
            for (int64_t t : rows)
              q[t] = load(qView, t);
            for (int64_t s : keys)
              k[s] = load(kView, s);
            SmallVector<Value> next(acc.begin(), acc.end());
            for (auto [n, pair] : llvm::enumerate(pairs)) {
              auto [t, s] = pair;
              Value prod = arith::MulFOp::create(
                  b, arith::MulFOp::create(b, q[t], k[s]), exp2(fsub(gAt(t), gAt(s))));
              next[n] = fadd(next[n], kb.reduceAdd(prod));
            }
            return next;
          });
      for (auto [n, pair] : llvm::enumerate(pairs)) {
        for (int32_t offset : {1, 2})
          sums[n] = fadd(sums[n], gpu::ShuffleOp::create(b, sums[n], offset, 32,
                                                        gpu::ShuffleMode::XOR)
                                      .getShuffleResult());
      }
      lb.ifThen(cmp(arith::CmpIPredicate::eq, quarter, idx(0)), [&] {
        for (auto [n, pair] : llvm::enumerate(pairs)) {
          Value row = add(blockRow, idx(pair.first));
          memref::StoreOp::create(
              b, sums[n], diagView,
              ValueRange{add(mul(stageIdx, idx(kChunk * 8)),
                             add(mul(row, idx(8)), idx(pair.second)))});
        }
      });
    };
    // Warp-uniform: each warp one static quarter of every block's triangle.
    const SmallVector<int64_t> quarters[4][2] = {{{0, 1, 2, 3}, {0, 1, 2, 3}},
                                                  {{4, 5, 6, 7}, {4, 5, 6, 7}},
                                                  {{4, 5}, {0, 1, 2, 3}},
                                                  {{6, 7}, {0, 1, 2, 3}}};
    for (int64_t w = 0; w < 4; ++w)
      lb.ifThen(cmp(arith::CmpIPredicate::eq, warp, idx(w)),
                [&] { triangle(quarters[w][0], quarters[w][1]); });
  };
  // Vector gates: the 128 producer threads run the chunk loop; thread 0
  // issues the TMA loads, thread d < Dk scans dimension d of the gates
  // (producer diagonal: then all 128 compute the diagonal triangles).
  if (vec) {
    Value batch32 = toI32(batch), head32 = toI32(head), col32 = toI32(colBase);
    lb.forLoop(idx(0), chunks, [&](Value c) {
      Value t0 = mul(c, idx(kChunk));
      Value stage = toI32(rem(c, 2)), round = toI32(div(c, 2));
      waitStageFree(c, stage, round);
      Value full = fullBar(stage);
      lb.ifThen(firstThread, [&] {
        issueChunkLoads(stage, t0, producerDiag ? loadedBar(stage) : full, batch32, head32,
                        col32);
      });
      // G[stage][t][d] = log2(e) * sum_{u <= t} gate[t0 + u][d] (0 past T,
      // so G stays constant there), 16 loads in flight per group (producer
      // diagonal: all 64 at once, one global round trip instead of four:
      // the producer's scan and triangles are then its chain per chunk,
      // and its 168 registers hold them).
      lb.ifThen(cmp(arith::CmpIPredicate::ult, tid, idx(dk)), [&] {
        Value running = lb.f32(0.0);
        Value gBase = mul(rem(c, 2), idx(kChunk * ldg));
        // (Two consumer warpgroups: 8, in the producer's 24 registers.)
        const int64_t kGroup = producerDiag ? kChunk : pair ? 8 : 16;
        for (int64_t t = 0; t < kChunk; t += kGroup) {
          SmallVector<Value> raw(kGroup);
          for (int64_t i = 0; i < kGroup; ++i) {
            Value pos = add(t0, idx(t + i));
            raw[i] = kb.ifWithResults(
                cmp(arith::CmpIPredicate::slt, pos, seq), {f32},
                [&] { return SmallVector<Value>{lb.loadF32(p.gates, {batch, head, pos, tid})}; },
                [&] { return SmallVector<Value>{lb.f32(0.0)}; })[0];
          }
          for (int64_t i = 0; i < kGroup; ++i) {
            running = fadd(running, fmul(raw[i], lb.f32(kLog2e)));
            memref::StoreOp::create(b, running, gView,
                                    ValueRange{add(gBase, add(idx((t + i) * ldg), tid))});
          }
        }
        // Release semantics: G is visible to whoever completes the wait.
        if (!producerDiag)
          ptx.arrive(full);
      });
      if (producerDiag) {
        // Every dimension's G written, the stage's Q and K landed.
        ptx.namedBarrierSync(c32(kProducerBarrier), 128);
        ptx.wait(loadedBar(stage), toI32(rem(div(c, 2), 2)));
        diagonalTriangles(rem(c, 2));
        // Release semantics: G and diag are visible to the consumers.
        ptx.arrive(full);
      }
    });
  } else
  lb.ifThen(cmp(arith::CmpIPredicate::eq, warp, idx(0)), [&] {
    Value batch32 = toI32(batch), head32 = toI32(head), col32 = toI32(colBase);
    lb.forLoop(idx(0), chunks, [&](Value c) {
      Value t0 = mul(c, idx(kChunk));
      Value stage = toI32(rem(c, 2)), round = toI32(div(c, 2));
      // This lane's two raw gates (steps t0 + 2 lane, + 1; 0 past T),
      // loaded before the wait.
      Value raw[2];
      if (gated)
        loadChunkScalarGates(b, p, batch, head, t0, lane, seq, raw);
      waitStageFree(c, stage, round);
      Value full = fullBar(stage);
      lb.ifThen(cmp(arith::CmpIPredicate::eq, lane, idx(0)),
                [&] { issueChunkLoads(stage, t0, full, batch32, head32, col32); });
      if (!gated)
        return;
      scanChunkScalarGates(b, raw, lane, gView, mul(rem(c, 2), idx(kChunk)));
      // Release semantics: G is visible to whoever completes the wait.
      ptx.arrive(full);
    });
  });

  //===--------------------------------------------------------------------===//
  // Consumer: warpgroup 1.
  //===--------------------------------------------------------------------===//
  b.setInsertionPointToStart(&roles.getElseRegion().front());
  ptx.setMaxRegisters(consumerRegs, /*increase=*/true);
  // ctid: the thread among all consumers; wtid: in its warpgroup, which
  // owns value half `group` (columns colBase .. + 63).
  Value ctid = arith::SubIOp::create(b, tid, idx(128));
  Value group = div(ctid, kConsumerThreads), wtid = rem(ctid, kConsumerThreads);
  Value cwarp = div(wtid, 32);
  // The output / state columns of value half `grp`.
  auto groupColBase = [&](Value grp) {
    return add(mul(colBlock, idx(kCols * consumers)), mul(grp, idx(kCols)));
  };
  // A consumer lane's fragment coordinates: warp in its warpgroup, g =
  // lane / 4, t2 = 2 (lane % 4), its two accumulator rows 16 warp + g (+ 8).
  // Only the index mod 128 matters: the thread index or the consumer index.
  struct LanePlace {
    Value warp, g, t2, row[2];
  };
  auto lanePlace = [&](Value threadIndex) {
    LanePlace l;
    l.warp = div(rem(threadIndex, kConsumerThreads), 32);
    Value lane = rem(threadIndex, 32);
    l.g = div(lane, 4);
    l.t2 = mul(rem(lane, 4), idx(2));
    l.row[0] = add(mul(l.warp, idx(16)), l.g);
    l.row[1] = add(l.row[0], idx(8));
    return l;
  };
  // Keys of a lane's 4 diagonal-block values: 16 warp + 8 (e / 2) + t2 + e % 2.
  auto diagonalKeys = [&](const LanePlace &l, Value keys[4]) {
    for (int64_t e = 0; e < 4; ++e)
      keys[e] = add(mul(l.warp, idx(16)), add(idx(8 * (e / 2) + e % 2), l.t2));
  };
  if (pair) {
    colBase = groupColBase(group);
    sView = view(add(idx(sOff), mul(group, idx(stateTileBytes))), dk * kCols, et);
  }
  Value g = div(lane, 4), t2 = mul(rem(lane, 4), idx(2));
  // This lane's accumulator rows (of A, O and each state half).
  Value rowA[2] = {add(mul(cwarp, idx(16)), g), add(add(mul(cwarp, idx(16)), g), idx(8))};
  // State accumulator index: (half h = state rows 64h.., n8 tile j, element).
  auto sIndex = [&](int64_t h, int64_t j, int64_t e) { return (h * 8 + j) * 4 + e; };
  auto stateRow = [&](int64_t h, int64_t e) { return add(idx(64 * h), rowA[e / 2]); };
  auto fragCol = [&](int64_t j, int64_t e) { return add(idx(j * 8 + e % 2), t2); };
  Value barrierId = pair ? add(c32(kPairBarrierBase), toI32(group)) : c32(kConsumerBarrier);
  auto consumerSync = [&] { ptx.namedBarrierSync(barrierId, kConsumerThreads); };
  // Both consumer warpgroups (two consumers only).
  auto bothConsumersSync = [&] {
    ptx.namedBarrierSync(c32(kBothConsumersBarrier), allConsumerThreads);
  };

  // The state rounded to the element type, as the MN-major B operand of
  // Q S_bf16 (the TMA swizzle: 16-byte chunk n / 8 of row d at chunk
  // (n / 8) ^ (d % 8); d % 8 = g here). Each lane writes 4-byte pairs; a
  // warp's 32 lanes hit 32 distinct banks.
  auto writeState = [&](ArrayRef<Value> s) {
    writeSwizzledState(b, s, sView, boxes, kCols / 8, /*halfElems=*/0,
                       AccumulatorLane{g, t2, {rowA[0], rowA[1]}}, et);
  };

  SmallVector<Value> init;
  for (int64_t h = 0; h < boxes; ++h)
    for (int64_t j = 0; j < 8; ++j)
      for (int64_t e = 0; e < 4; ++e)
        init.push_back(p.initial ? lb.loadF32(p.initial, {batch, head, stateRow(h, e),
                                                          add(colBase, fragCol(j, e))})
                                 : lb.f32(0.0));
  writeState(init);
  ptx.fenceProxyAsync();
  consumerSync();

  // Chunk c's stage: index, i32, parity of its full barrier, byte offset.
  struct Stage {
    Value index, i32, parity, base;
  };
  auto stageOf = [&](Value c) {
    Stage st;
    st.index = rem(c, 2);
    st.i32 = toI32(st.index);
    st.parity = toI32(rem(div(c, 2), 2));
    st.base = mul(st.i32, c32(stageBytes));
    return st;
  };
  // K-major Q and K descriptors of chunk stage `st`, per k16 step.
  auto qkDescriptors = [&](const Stage &st, SmallVector<Value> &qDesc,
                           SmallVector<Value> &kDesc) {
    for (int64_t step = 0; step < dk / 16; ++step) {
      int64_t box = step * 16 / kBoxCols, inBox = (step * 16 % kBoxCols) * 2;
      qDesc.push_back(descriptor(add(st.base, c32(qOff + box * kBoxBytes + inBox)), 16));
      kDesc.push_back(descriptor(add(st.base, c32(kOff + box * kBoxBytes + inBox)), 16));
    }
  };
  // Waits for chunk `c`'s stage (only where `waitIf` holds, when given)
  // and issues A = Q K^T as one committed group.
  auto issueQK = [&](Value c, Value waitIf) {
    Stage st = stageOf(c);
    SmallVector<Value> qDesc, kDesc;
    qkDescriptors(st, qDesc, kDesc);
    if (waitIf)
      lb.ifThen(waitIf, [&] { ptx.wait(fullBar(st.i32), st.parity); });
    else
      ptx.wait(fullBar(st.i32), st.parity);
    ptx.wgmmaFence();
    SmallVector<Value> a(32, lb.f32(0.0));
    for (int64_t step = 0; step < dk / 16; ++step)
      a = ptx.wgmma(a, qDesc[step], {}, kDesc[step], kChunk, et, /*transposeB=*/false);
    ptx.wgmmaCommit();
    return a;
  };
  // V's B-operand descriptors of the stage at byte offset `base`, per k16
  // step over the chunk's keys.
  auto vDescriptors = [&](Value base) {
    SmallVector<Value> vDesc;
    for (int64_t u = 0; u < kChunk / 16; ++u)
      vDesc.push_back(descriptor(add(base, c32(vOff + u * 16 * 128)), kBoxBytes));
    return vDesc;
  };
  // S += K^T V as one committed group: A = K^T, M = the 64 dims of K box h
  // (MN-major, the transposed A operand), k16 steps over the chunk's keys.
  auto issueStateUpdate = [&](Value base, ArrayRef<Value> vDesc, SmallVector<Value> &next) {
    SmallVector<Value> ktDesc;
    for (int64_t h = 0; h < boxes; ++h)
      for (int64_t u = 0; u < kChunk / 16; ++u)
        ktDesc.push_back(
            descriptor(add(base, c32(kOff + h * kBoxBytes + u * 16 * 128)), kBoxBytes));
    ptx.wgmmaFence();
    for (int64_t h = 0; h < boxes; ++h) {
      SmallVector<Value> acc(next.begin() + h * 32, next.begin() + (h + 1) * 32);
      for (int64_t u = 0; u < kChunk / 16; ++u)
        acc = ptx.wgmma(acc, ktDesc[h * 4 + u], {}, vDesc[u], kCols, et,
                        /*transposeB=*/true, /*transposeA=*/true);
      std::copy(acc.begin(), acc.end(), next.begin() + h * 32);
    }
    ptx.wgmmaCommit();
  };
  // Output rows of the chunk from step t0 (this lane's `rows` in it), times
  // the scale, never past T: aligned pair stores.
  auto storeOutput = [&](Value t0, ArrayRef<Value> rows, ArrayRef<Value> o) {
    storeOutputPairs(b, o, p.out, batch, head, t0, seq, colBase, kCols / 8, p.scale,
                     AccumulatorLane{g, t2, {rows[0], rows[1]}});
  };
  // The chunk's end, every wgmma of it complete (the warpgroup's S_bf16
  // reads included): the state as the next chunk's B operand, then the
  // stage (Q, K, V, G) is free for the producer (consumer thread `ctid` 0
  // arrives).
  auto finishChunk = [&](SmallVector<Value> &next, Value stage, Value ctid) {
    next = ptx.fenceOperands(next);
    writeState(next);
    ptx.fenceProxyAsync();
    consumerSync();
    lb.ifThen(cmp(arith::CmpIPredicate::eq, ctid, idx(0)), [&] { ptx.arrive(emptyBar(stage)); });
  };
  // Two consumer warpgroups: the A exchange, [2 warpgroups][12 words][128
  // threads] (words 0 .. 7: packed tiles of A; 8 .. 11: the warpgroup's
  // diagonal partial sums as [64 rows][8 keys of the row's 8-block] f32).
  Value xWords, xFloats;
  if (pair) {
    xWords = view(idx(xOff), consumers * kExchangeWords * kConsumerThreads, i32);
    xFloats = view(idx(xOff), consumers * kExchangeWords * kConsumerThreads, f32);
  }
  // The first element of word k of warpgroup grp's part of the exchange.
  auto exchangeWord = [&](Value grp, int64_t k) {
    return mul(add(mul(grp, idx(kExchangeWords)), idx(k)), idx(kConsumerThreads));
  };
  auto diagWord = [&](Value grp, Value row, Value keyInBlock) {
    return add(exchangeWord(grp, 8), add(mul(row, idx(8)), keyInBlock));
  };
  // Two consumer warpgroups: the diagonal 8 x 8 blocks of A in f32 over this
  // warpgroup's dims 64 h .. 64 h + 63, only the pairs that count (the one
  // warpgroup kernel's fragment layout computes all 64 pairs of a block,
  // 28 of which are above the diagonal). Warp w owns blocks 2w and 2w + 1;
  // lane (half, m) of it block 2w + half, row pair p = m / 4 (rows 7 − p and
  // p: 7 − p + p = 7 keys below the diagonal), slots 2 (m % 4), + 1 of the
  // pair's 7 (slot 7 computes key = row and is not stored); the 16 diagonal
  // pairs (t = s, no exponent) on lanes 0 .. 15. Partial sums go to the
  // exchange; the A assembly adds both warpgroups'. Per 8-dim step: 16 MUFU
  // instead of 32 and 236 instructions instead of ~290 (SASS), +12% on the
  // H200 (bench/NOTES.md, "Session 12").
  auto pairDiagonal = [&](Value ctid, Value cwarp, Value qView, Value kView,
                          function_ref<Value(Value, Value)> gAt) {
    Value group = div(ctid, kConsumerThreads), lane32 = rem(ctid, 32);
    Value half = div(lane32, 16), m = rem(lane32, 16);
    Value pairIdx = div(m, 4), sub = rem(m, 4);
    Value blockRow = add(mul(cwarp, idx(16)), mul(half, idx(8)));
    Value hiRow = arith::SubIOp::create(b, idx(7), pairIdx);
    Value rows[3], keyRows[3], keyIn[3], live[3];
    for (int64_t k = 0; k < 2; ++k) {
      Value slot = add(mul(sub, idx(2)), idx(k));
      Value onHi = cmp(arith::CmpIPredicate::ult, slot, hiRow);
      Value rowIn = arith::SelectOp::create(b, onHi, hiRow, pairIdx);
      keyIn[k] = arith::SelectOp::create(b, onHi, slot, arith::SubIOp::create(b, slot, hiRow));
      rows[k] = add(blockRow, rowIn);
      keyRows[k] = add(blockRow, keyIn[k]);
      live[k] = cmp(arith::CmpIPredicate::ne, slot, idx(7));
    }
    rows[2] = keyRows[2] = add(mul(cwarp, idx(16)), m);
    keyIn[2] = rem(m, 8);
    live[2] = cmp(arith::CmpIPredicate::eq, half, idx(0));
    VectorType vec8 = VectorType::get({8}, et), vec8f = VectorType::get({8}, f32);
    auto loadRow = [&](Value tile, Value row, Value d0) -> Value {
      return arith::ExtFOp::create(b, vec8f,
                                   vector::LoadOp::create(b, vec8, tile, ValueRange{swz(row, d0)},
                                                          false, llvm::MaybeAlign(16))
                                       .getResult());
    };
    auto loadG = [&](Value row, Value d0) -> Value {
      return vector::LoadOp::create(b, vec8f, gView, ValueRange{gAt(row, d0)}, false,
                                    llvm::MaybeAlign(16));
    };
    Value dimLo = mul(group, idx(dk / 2));
    SmallVector<Value> sums = kb.forWithState(
        dimLo, add(dimLo, idx(dk / 2)), idx(8), SmallVector<Value>(3, kb.splat(lb.f32(0.0), 8)),
        [&](Value d0, ValueRange acc) {
          SmallVector<Value> next;
          for (int64_t k = 0; k < 3; ++k) {
            Value qx = loadRow(qView, rows[k], d0), kx = loadRow(kView, keyRows[k], d0);
            if (k == 2) {
              next.push_back(math::FmaOp::create(b, qx, kx, acc[k]));
              continue;
            }
            Value decay = exp2(fsub(loadG(rows[k], d0), loadG(keyRows[k], d0)));
            next.push_back(math::FmaOp::create(b, fmul(qx, kx), decay, acc[k]));
          }
          return next;
        });
    for (int64_t k = 0; k < 3; ++k) {
      Value sum = kb.reduceAdd(sums[k]);
      lb.ifThen(live[k], [&] {
        memref::StoreOp::create(b, sum, xFloats,
                                ValueRange{diagWord(group, rows[k], keyIn[k])});
      });
    }
  };
  // Vector gates (GLA): one chunk (docs/chunkwise-linear-gpu.md, "Session
  // 9"). A is split into 8-key sub-blocks j (keys 8j .. 8j + 7) with the
  // reference step r(j) = 8j + 7: for the rows of a later 8-row block,
  //   A[t, s] = sum_d (Q ⊙ 2^(G_t − G_r))_td (K~_j)_sd,  K~ = K ⊙ 2^(G_r − G_s),
  // both exponents <= 0 (s <= r < t), one wgmma m64n8k16 chain over Dk per
  // j with Q's side from registers; the 8 x 8 diagonal blocks (t, s in the
  // same 8-step block, s <= t) in f32, one exp2 per (t, s, d), as the
  // mma.sync kernel's triangles. Q S takes Q ⊙ 2^G_t (registers), the state
  // decays per row d by 2^G_last,d, and K ⊙ 2^(G_last − G_s) (in place)
  // updates it.
  auto vectorChunk = [&](Value c, ValueRange carried) -> SmallVector<Value> {
    Value t0 = mul(c, idx(kChunk));
    // The lane's fragment coordinates that writeState (finishChunk) uses,
    // replaced below by this chunk's opaque ones with two consumer
    // warpgroups (its hoisted swizzled indices spilled), restored after.
    Value *outerLane[] = {&g, &t2, &rowA[0], &rowA[1]};
    llvm::SaveAndRestore<Value> chunkG(g), chunkT2(t2), chunkRow0(rowA[0]), chunkRow1(rowA[1]);
    // The thread index as an opaque per-chunk value: the lane-dependent
    // shared-memory indices below are loop-invariant, and hoisted out of the
    // chunk loop they held ~30 registers through it (spills at Dk = 128).
    Value ctid = arith::SubIOp::create(b, opaqueIndex(tid), idx(128));
    Value wtid = rem(ctid, kConsumerThreads), group = div(ctid, kConsumerThreads);
    LanePlace here = lanePlace(ctid);
    Value cwarp = here.warp;
    // Two consumer warpgroups: the warpgroup's S_bf16 tile and barrier for
    // this chunk from the opaque index too, and its output coordinates
    // (column base, batch, head) from another one right before the stores
    // (`placeOutput`): from the values outside the loop, their address math
    // was hoisted and held through the chunk, and the consumer spilled.
    // The outer values come back after the chunk.
    llvm::SaveAndRestore<Value> chunkColBase(colBase), chunkSView(sView),
        chunkBarrierId(barrierId), chunkBatch(batch), chunkHead(head);
    auto placeOutput = [&] {
      if (!pair)
        return;
      colBase = groupColBase(
          div(arith::SubIOp::create(b, opaqueIndex(tid), idx(128)), kConsumerThreads));
      batch = opaqueIndex(batch);
      head = opaqueIndex(head);
    };
    if (pair) {
      sView = view(add(idx(sOff), mul(group, idx(stateTileBytes))), dk * kCols, et);
      barrierId = add(c32(kPairBarrierBase), toI32(group));
    }
    Value g = here.g, t2 = here.t2;
    Value rowA[2] = {here.row[0], here.row[1]};
    auto stateRow = [&](int64_t h, int64_t e) { return add(idx(64 * h), rowA[e / 2]); };
    if (pair) {
      Value lanes[] = {g, t2, rowA[0], rowA[1]};
      for (auto [outer, v] : llvm::zip_equal(outerLane, lanes))
        *outer = v;
    }
    Stage st = stageOf(c);
    Value stageIdx = st.index, stage = st.i32, base = st.base;
    Value gBase = mul(stageIdx, idx(kChunk * ldg));
    auto gAt = [&](Value row, Value dim) { return add(gBase, add(mul(row, idx(ldg)), dim)); };
    VectorType vec8 = VectorType::get({8}, et), vec8f = VectorType::get({8}, f32),
               vec2f = VectorType::get({2}, f32), vec2 = VectorType::get({2}, et);
    Value kView = stageTile(stageIdx, kOff);
    Value qView = stageTile(stageIdx, qOff);
    Value ktView = view(idx(ktOff), boxes * kChunk * kBoxCols, et);
    // Applies `f(row, dim0, x)` to each 16-byte chunk of a [64, Dk] swizzled
    // tile (row ctid % 64, part ctid / 64 of the row's chunks: a half with
    // one consumer warpgroup, a quarter with two; iteration i takes physical
    // chunk i ^ (row % 8): a warp's 32 rows hit all banks).
    auto eachChunk = [&](function_ref<void(Value, Value, Value)> f) {
      Value row = rem(ctid, kChunk), part = div(ctid, kChunk);
      int64_t perThread = dk / 8 / (allConsumerThreads / kChunk);
      for (int64_t i = 0; i < perThread; ++i) {
        Value cidx = add(mul(part, idx(perThread)), idx(i));
        Value box = div(cidx, 8);
        Value phys = arith::XOrIOp::create(b, rem(cidx, 8), rem(row, 8));
        Value index = add(mul(box, idx(kChunk * kBoxCols)),
                          add(mul(row, idx(kBoxCols)), mul(phys, idx(8))));
        f(row, mul(cidx, idx(8)), index);
      }
    };
    // One 16-byte chunk of K (row `row`, dims d0 .. d0 + 7, at `index` of
    // the swizzled tile) times 2^(G[ref, d] − G[row, d]), into `dst`.
    auto scaleKChunk = [&](Value ref, Value row, Value d0, Value index, Value dst) {
      Value gRef = vector::LoadOp::create(b, vec8f, gView, ValueRange{gAt(ref, d0)}, false,
                                          llvm::MaybeAlign(16));
      Value gS = vector::LoadOp::create(b, vec8f, gView, ValueRange{gAt(row, d0)}, false,
                                        llvm::MaybeAlign(16));
      Value x = vector::LoadOp::create(b, vec8, kView, ValueRange{index}, false,
                                       llvm::MaybeAlign(16));
      x = arith::MulFOp::create(b, arith::ExtFOp::create(b, vec8f, x), exp2(fsub(gRef, gS)));
      vector::StoreOp::create(b, arith::TruncFOp::create(b, vec8, x), dst, ValueRange{index},
                              false, llvm::MaybeAlign(16));
    };
    if (producerDiag)
      ptx.wait(loadedBar(stage), st.parity);
    ptx.wait(fullBar(stage), st.parity);
    // K~ [s, d] = K[s, d] 2^(G[r(s), d] − G[s, d]), r(s) = 8 (s / 8) + 7.
    eachChunk([&](Value row, Value d0, Value index) {
      scaleKChunk(add(mul(div(row, 8), idx(8)), idx(7)), row, d0, index, ktView);
    });
    // D[j][d] = 2^(G[r(j + 1), d] − G[r(j), d]), j = 0 .. 5 (two consumer
    // warpgroups: rows 6 and 7 too, with r clamped to step 63, so that
    // warpgroup h reads rows 4 h .. 4 h + 3, all finite).
    Value dView;
    if (kVecChainedScales) {
      Value dTable = view(idx(ktOff + qkBytes), ratioRows * dk, f32);
      for (int64_t m = 0; m < ratioRows * dk / allConsumerThreads; ++m) {
        Value e = add(ctid, idx(m * allConsumerThreads));
        Value j = div(e, dk), d = rem(e, dk);
        Value r0 = add(mul(j, idx(8)), idx(7));
        Value r1 = add(r0, idx(8));
        if (pair) {
          r0 = arith::MinUIOp::create(b, r0, idx(kChunk - 1));
          r1 = arith::MinUIOp::create(b, r1, idx(kChunk - 1));
        }
        Value g0 = memref::LoadOp::create(b, gView, ValueRange{gAt(r0, d)});
        Value g1 = memref::LoadOp::create(b, gView, ValueRange{gAt(r1, d)});
        memref::StoreOp::create(b, exp2(fsub(g1, g0)), dTable, ValueRange{e});
      }
      // This warpgroup's rows (from jBase, below).
      dView = pair ? view(add(idx(ktOff + qkBytes), mul(group, idx(4 * dk * 4))),
                          4 * dk, f32)
                   : dTable;
    }
    ptx.fenceProxyAsync();
    if (pair)
      bothConsumersSync(); // K~ and D of both warpgroups written
    else
      consumerSync();

    // Per k16 step s: this lane's Q operand values (register i: row
    // rowA[i % 2], dims 16s + 8 (i / 2) + 2t, + 1) and their G; then
    //   O += (Q ⊙ 2^G_t) S_bf16                 m64n64k16
    //   A_j += (Q ⊙ 2^min(G_t − G_r(j), 0)) K~_j^T  m64n8k16, j = 0 .. 6
    // (rows not below block j compute clamped garbage, dropped below; j = 7
    // is never below any row block), one group per step, one in flight.
    // The zero accumulators as distinct registers defined before the first
    // fence (movs between the wgmmas make ptxas serialize them, C7517/C7519).
    // The S_bf16 and K~ descriptors (loop-invariant) from an opaque
    // per-chunk value, plus constant offsets: hoisted out of the chunk loop,
    // the 64 descriptors of the k16 steps took 128 registers.
    Value opaque = ptx.emit({i64}, {c64(0)}, "mov.b64 $0, $1;", "=l,l");
    auto add64 = [&](Value x, int64_t y) {
      return arith::AddIOp::create(b, x, c64(y)).getResult();
    };
    // This warpgroup's sub-blocks of A: j = jBase .. jBase + tiles − 1 (two
    // consumer warpgroups: 4 each, 4 h ..; j = 7 is never below a row
    // block, its wgmma is discarded), and its S_bf16 tile.
    int64_t tiles = pair ? 4 : 7;
    Value jBase = pair ? mul(group, idx(tiles)) : idx(0);
    Value sTile = pair ? mul(toI32(group), c32(stateTileBytes)) : c32(0);
    Value sDesc0 =
        arith::OrIOp::create(b, descriptor(add(c32(sOff), sTile), dk * 128), opaque);
    Value ktDesc0 = arith::OrIOp::create(b, descriptor(c32(ktOff), 16), opaque);
    if (pair) {
      // Tile jBase's rows of K~ (8 x 128 bytes a tile) in the descriptor's
      // address field (16-byte units), the sum made opaque: as (base +
      // tile) + constant, LLVM reassociated each step's descriptor into a
      // loop-invariant base + constant and held all 32 through the chunk
      // loop (the consumer spilled).
      Value tileUnits = arith::ExtUIOp::create(b, i64, toI32(mul(jBase, idx(8 * 128 / 16))));
      ktDesc0 = ptx.emit({i64}, {arith::AddIOp::create(b, ktDesc0, tileUnits).getResult()},
                         "mov.b64 $0, $1;", "=l,l");
    }
    SmallVector<Value> o = ptx.fenceOperands(SmallVector<Value>(32, lb.f32(0.0)));
    SmallVector<Value> a = ptx.fenceOperands(SmallVector<Value>(4 * tiles, lb.f32(0.0)));
    for (int64_t s = 0; s < dk / 16; ++s) {
      Value qv[4], gq[4];
      SmallVector<Value> qo;
      for (int64_t i = 0; i < 4; ++i) {
        Value dim = add(idx(s * 16 + 8 * (i / 2)), t2);
        qv[i] = arith::ExtFOp::create(
            b, vec2f,
            vector::LoadOp::create(b, vec2, qView, ValueRange{swz(rowA[i % 2], dim)}, false,
                                   llvm::MaybeAlign(4))
                .getResult());
        gq[i] = vector::LoadOp::create(b, vec2f, gView, ValueRange{gAt(rowA[i % 2], dim)},
                                       false, llvm::MaybeAlign(8));
        Value x = arith::MulFOp::create(b, qv[i], exp2(gq[i]));
        qo.push_back(fb.packF32(vector::ExtractOp::create(b, x, 0),
                                vector::ExtractOp::create(b, x, 1), true));
      }
      SmallVector<SmallVector<Value>> qj(tiles);
      if (kVecChainedScales) {
        // Row half h (register i % 2) sits in 8-row block 2w + h; its
        // nearest reference block below is jStart = 2w + h − 1 (none for
        // w = h = 0). The chain starts at jTop = min(jStart, the top tile of
        // this warpgroup): x_jTop = Q 2^(G_t − G_r(jTop)) directly, x_j =
        // x_(j+1) D[j] for j < jTop; blocks j > jStart are masked (their
        // rows of A are dropped by a select).
        // Tiles are numbered from jBase (jj = j − jBase), so that every
        // comparison is against a constant jj, as with one warpgroup (with
        // j itself a run-time value, their results held 20 more registers
        // through the k16 loop and the consumer spilled).
        for (int64_t i = 0; i < 4; ++i) {
          Value dim = add(idx(s * 16 + 8 * (i / 2)), t2);
          Value jStart = arith::SubIOp::create(
              b, add(mul(cwarp, idx(2)), idx(i % 2)), idx(1)); // may be "-1" (wraps)
          Value jStartRel = arith::SubIOp::create(b, jStart, jBase); // may be negative
          Value jTopRel = pair ? arith::MinSIOp::create(b, jStartRel, idx(tiles - 1)).getResult()
                               : jStartRel;
          Value startRow = arith::MaxSIOp::create(
              b, add(mul(add(jBase, jTopRel), idx(8)), idx(7)), idx(0));
          Value gRef = vector::LoadOp::create(b, vec2f, gView, ValueRange{gAt(startRow, dim)},
                                              false, llvm::MaybeAlign(8));
          Value e = arith::MinimumFOp::create(b, fsub(gq[i], gRef), kb.splat(lb.f32(0.0), 2));
          Value direct = arith::MulFOp::create(b, qv[i], exp2(e));
          Value x = qv[i];
          SmallVector<Value> xs(tiles);
          for (int64_t jj = tiles - 1; jj >= 0; --jj) {
            Value isStart = cmp(arith::CmpIPredicate::eq, jTopRel, idx(jj));
            Value chained = x;
            // D[j] for j <= 5 (the two-warpgroup table has finite rows 6
            // and 7 too: tiles 6 and 7 are never chained, jTop <= 6).
            if (pair || jj < 6) {
              Value d = vector::LoadOp::create(b, vec2f, dView,
                                               ValueRange{add(idx(jj * dk), dim)}, false,
                                               llvm::MaybeAlign(8));
              chained = arith::MulFOp::create(b, x, d);
            }
            // Tiles above jStart (jj > jStartRel) chain on from Q itself: the
            // rows of A they produce are garbage (finite for decaying gates),
            // and each is replaced by a select, never multiplied, below (an
            // accumulator row of a wgmma depends on that row of A only).
            x = arith::SelectOp::create(b, isStart, direct, chained);
            xs[jj] = fb.packF32(vector::ExtractOp::create(b, x, 0),
                                vector::ExtractOp::create(b, x, 1), true);
          }
          for (int64_t jj = 0; jj < tiles; ++jj)
            qj[jj].push_back(xs[jj]);
        }
      }
      assert((kVecChainedScales || !pair) && "two consumers use the chained scales");
      for (int64_t j = 0; j < 7 && !kVecChainedScales; ++j)
        for (int64_t i = 0; i < 4; ++i) {
          Value dim = add(idx(s * 16 + 8 * (i / 2)), t2);
          Value gRef = vector::LoadOp::create(b, vec2f, gView,
                                              ValueRange{gAt(idx(8 * j + 7), dim)}, false,
                                              llvm::MaybeAlign(8));
          Value e = arith::MinimumFOp::create(b, fsub(gq[i], gRef),
                                              kb.splat(lb.f32(0.0), 2));
          Value x = arith::MulFOp::create(b, qv[i], exp2(e));
          qj[j].push_back(fb.packF32(vector::ExtractOp::create(b, x, 0),
                                     vector::ExtractOp::create(b, x, 1), true));
        }
      int64_t box = s * 16 / kBoxCols, inBox = (s * 16 % kBoxCols) * 2;
      Value sDesc = add64(sDesc0, (s * 16 * 128) >> 4);
      SmallVector<Value> ktDesc;
      for (int64_t jj = 0; jj < tiles; ++jj)
        ktDesc.push_back(add64(ktDesc0, (box * kBoxBytes + jj * 8 * 128 + inBox) >> 4));
      ptx.wgmmaFence();
      o = ptx.wgmma(o, Value(), qo, sDesc, kCols, et, /*transposeB=*/true);
      for (int64_t jj = 0; jj < tiles; ++jj) {
        SmallVector<Value> acc(a.begin() + 4 * jj, a.begin() + 4 * jj + 4);
        acc = ptx.wgmma(acc, Value(), qj[jj], ktDesc[jj], 8, et, /*transposeB=*/false);
        std::copy(acc.begin(), acc.end(), a.begin() + 4 * jj);
      }
      ptx.wgmmaCommit();
      ptx.wgmmaWait(kVecInFlight);
    }

    // The diagonal 8 x 8 blocks in f32 while the last step runs: value e
    // of this lane is row rowA[e / 2] = 16w + 8 (e / 2) + g against key
    // 16w + 8 (e / 2) + 2t + e % 2 (n tile 2w + e / 2).
    Value keys[4];
    diagonalKeys(here, keys);
    SmallVector<Value> diag;
    if (producerDiag) {
      // The producer's triangles (s <= t written; the rest masked below).
      for (int64_t r = 0; r < 2; ++r) {
        Value sums = vector::LoadOp::create(
            b, vec2f, diagView,
            ValueRange{add(mul(stageIdx, idx(kChunk * 8)), add(mul(rowA[r], idx(8)), t2))},
            false, llvm::MaybeAlign(8));
        diag.push_back(vector::ExtractOp::create(b, sums, 0));
        diag.push_back(vector::ExtractOp::create(b, sums, 1));
      }
    } else if (pair) {
      pairDiagonal(ctid, cwarp, qView, kView, gAt);
    } else {
      diag = kb.forWithState(
          idx(0), idx(dk), idx(8), SmallVector<Value>(4, lb.f32(0.0)),
          [&](Value d0, ValueRange acc) {
            SmallVector<Value> next(acc.begin(), acc.end());
            for (int r = 0; r < 2; ++r) {
              Value qx = arith::ExtFOp::create(
                  b, vec8f,
                  vector::LoadOp::create(b, vec8, qView, ValueRange{swz(rowA[r], d0)}, false,
                                         llvm::MaybeAlign(16))
                      .getResult());
              Value gx = vector::LoadOp::create(b, vec8f, gView, ValueRange{gAt(rowA[r], d0)},
                                                false, llvm::MaybeAlign(16));
              for (int64_t h = 0; h < 2; ++h) {
                Value key = keys[2 * r + h];
                Value kx = arith::ExtFOp::create(
                    b, vec8f,
                    vector::LoadOp::create(b, vec8, kView, ValueRange{swz(key, d0)}, false,
                                           llvm::MaybeAlign(16))
                        .getResult());
                Value gk = vector::LoadOp::create(b, vec8f, gView, ValueRange{gAt(key, d0)},
                                                  false, llvm::MaybeAlign(16));
                Value prod = arith::MulFOp::create(b, arith::MulFOp::create(b, qx, kx),
                                                   exp2(fsub(gx, gk)));
                next[2 * r + h] = fadd(next[2 * r + h], kb.reduceAdd(prod));
              }
            }
            return next;
          });
    }

    ptx.wgmmaWait(0);
    o = ptx.fenceOperands(o);
    a = ptx.fenceOperands(a);
    SmallVector<Value> aRegs;
    if (pair) {
      // Each warpgroup writes its 4 tiles of A (below the row's block: the
      // tensor-core value, else 0; packed pairs, word 2 jj + h for tile jj,
      // row half h) and its 4 partial diagonal sums (words 8 ..); then both
      // read all 8 tiles and both partial sums from the exchange and
      // assemble the same A (the diagonal as warpgroup 0's sum plus 1's).
      auto word = [&](Value grp, int64_t k) { return add(exchangeWord(grp, k), wtid); };
      for (int64_t jj = 0; jj < tiles; ++jj)
        for (int64_t h = 0; h < 2; ++h) {
          Value below = cmp(arith::CmpIPredicate::ult, add(jBase, idx(jj)),
                            add(mul(cwarp, idx(2)), idx(h)));
          Value lo = arith::SelectOp::create(b, below, a[4 * jj + 2 * h], lb.f32(0.0));
          Value hi = arith::SelectOp::create(b, below, a[4 * jj + 2 * h + 1], lb.f32(0.0));
          memref::StoreOp::create(b, fb.packF32(lo, hi, true), xWords,
                                  ValueRange{word(group, 2 * jj + h)});
        }
      bothConsumersSync();
      // The lane's rows and keys again from an opaque index (held across
      // the exchange, one of them spilled).
      LanePlace late = lanePlace(rem(opaqueIndex(tid), kConsumerThreads));
      diagonalKeys(late, keys);
      diag.resize(4);
      for (int64_t e = 0; e < 4; ++e) {
        Value keyInBlock = rem(keys[e], 8);
        diag[e] = fadd(
            memref::LoadOp::create(b, xFloats, ValueRange{diagWord(idx(0), late.row[e / 2], keyInBlock)}),
            memref::LoadOp::create(b, xFloats, ValueRange{diagWord(idx(1), late.row[e / 2], keyInBlock)}));
      }
      for (int64_t j = 0; j < 8; ++j)
        for (int64_t h = 0; h < 2; ++h) {
          Value packed = memref::LoadOp::create(
              b, xWords, ValueRange{word(idx(j / tiles), 2 * (j % tiles) + h)});
          Value onDiag =
              cmp(arith::CmpIPredicate::eq, idx(j), add(mul(late.warp, idx(2)), idx(h)));
          Value dlo = arith::SelectOp::create(
              b, cmp(arith::CmpIPredicate::ule, keys[2 * h], late.row[h]), diag[2 * h],
              lb.f32(0.0));
          Value dhi = arith::SelectOp::create(
              b, cmp(arith::CmpIPredicate::ule, keys[2 * h + 1], late.row[h]), diag[2 * h + 1],
              lb.f32(0.0));
          aRegs.push_back(
              arith::SelectOp::create(b, onDiag, fb.packF32(dlo, dhi, true), packed));
        }
      // aRegs is tile-major (j, h); the A operand of k16 step u wants
      // (2u, h0), (2u, h1), (2u + 1, h0), (2u + 1, h1): the same order.
    }
    // A's n tile j for row half h (8-row block 2w + h): the tensor-core
    // value below the block, the f32 diagonal (s <= t) on it, 0 above.
    SmallVector<Value> full(pair ? 0 : 32, lb.f32(0.0));
    for (int64_t j = 0; j < 8 && !pair; ++j)
      for (int64_t e = 0; e < 4; ++e) {
        Value blockRow = add(mul(cwarp, idx(2)), idx(e / 2));
        Value below = cmp(arith::CmpIPredicate::ult, idx(j), blockRow);
        Value onDiag = cmp(arith::CmpIPredicate::eq, idx(j), blockRow);
        Value visible = cmp(arith::CmpIPredicate::ule, keys[e], rowA[e / 2]);
        Value dv = arith::SelectOp::create(b, visible, diag[e], lb.f32(0.0));
        Value off = j < 7 ? arith::SelectOp::create(b, below, a[4 * j + e], lb.f32(0.0))
                          : lb.f32(0.0);
        full[4 * j + e] = arith::SelectOp::create(b, onDiag, dv, off);
      }
    for (int64_t u = 0; u < 4 && !pair; ++u) {
      const Value *lo = &full[(2 * u) * 4], *hi = &full[(2 * u + 1) * 4];
      aRegs.append({fb.packF32(lo[0], lo[1], true), fb.packF32(lo[2], lo[3], true),
                    fb.packF32(hi[0], hi[1], true), fb.packF32(hi[2], hi[3], true)});
    }
    SmallVector<Value> vDesc =
        vDescriptors(pair ? add(base, mul(toI32(group), c32(kBoxBytes))) : base);
    // O += A V.
    ptx.wgmmaFence();
    for (int64_t u = 0; u < 4; ++u)
      o = ptx.wgmma(o, Value(), ArrayRef<Value>(aRegs).slice(4 * u, 4), vDesc[u], kCols, et,
                    /*transposeB=*/true);
    ptx.wgmmaCommit();

    // K <- K ⊙ 2^(G_last − G_s) in place, once every lane's diagonal reads
    // of K are done (two consumer warpgroups: the exchange's barrier); the
    // state decays per row d by 2^G_last,d.
    if (!pair)
      consumerSync();
    Value last = idx(kChunk - 1);
    eachChunk([&](Value row, Value d0, Value index) {
      scaleKChunk(last, row, d0, index, kView);
    });
    ptx.fenceProxyAsync();
    SmallVector<Value> next(carried.begin(), carried.end());
    for (int64_t h = 0; h < boxes; ++h)
      for (int64_t r = 0; r < 2; ++r) {
        Value decay = exp2(memref::LoadOp::create(b, gView, ValueRange{gAt(last, stateRow(h, 2 * r))}));
        for (int64_t j = 0; j < 8; ++j)
          for (int64_t e = 2 * r; e < 2 * r + 2; ++e)
            next[sIndex(h, j, e)] = fmul(next[sIndex(h, j, e)], decay);
      }
    if (pair)
      bothConsumersSync(); // K scaled by both warpgroups
    else
      consumerSync();
    issueStateUpdate(base, vDesc, next);
    ptx.wgmmaWait(0);
    o = ptx.fenceOperands(o);
    placeOutput();
    storeOutput(t0, rowA, o);
    finishChunk(next, stage, wtid);
    return next;
  };
  int64_t nState = init.size();
  auto chunkLoop = [&](ValueRange loopInit) {
    return kb.forWithState(
      idx(0), chunks, idx(1), loopInit, [&](Value c, ValueRange loopCarried) {
        ValueRange carried = loopCarried.take_front(nState);
        if (vec)
          return vectorChunk(c, carried);
        Value t0 = mul(c, idx(kChunk));
        Stage st = stageOf(c);
        Value stageIdx = st.index, stage = st.i32, base = st.base;
        // Descriptors first: every operand is ready before the fence.
        SmallVector<Value> qDesc, kDesc, sDesc, vDesc;
        qkDescriptors(st, qDesc, kDesc);
        for (int64_t step = 0; step < dk / 16; ++step)
          // S_bf16 [Dk rows][64]: 16 state rows per k16 step.
          sDesc.push_back(descriptor(c32(sOff + step * 16 * 128), dk * 128));
        vDesc = vDescriptors(base);

        // A = Q K^T and OQ = Q S_bf16, two groups (overlap: A was computed
        // by the previous iteration, during its output and state write-out).
        SmallVector<Value> a;
        if (overlap) {
          a.assign(loopCarried.begin() + nState, loopCarried.end());
          ptx.wgmmaFence();
        } else {
          a = issueQK(c, Value());
        }
        SmallVector<Value> o(32, lb.f32(0.0));
        for (int64_t step = 0; step < dk / 16; ++step)
          o = ptx.wgmma(o, qDesc[step], {}, sDesc[step], kCols, et, /*transposeB=*/true);
        ptx.wgmmaCommit();

        // A's in-chunk decay 2^(G_t - G_s) (one exp2 per element: G falls
        // by up to 64 steps' log gates, so 2^G_t 2^-G_s could overflow),
        // computed while Q K^T runs: its gate loads and MUFU work are off
        // the chain that waits for A.
        Value gRow[2];
        SmallVector<Value> decayA;
        if (gated) {
          for (int r = 0; r < 2; ++r)
            gRow[r] = memref::LoadOp::create(
                b, gView, ValueRange{add(mul(stageIdx, idx(kChunk)), rowA[r])});
          for (int64_t j = 0; j < 8; ++j) {
            Value gCol = vector::LoadOp::create(
                b, VectorType::get({2}, f32), gView,
                ValueRange{add(mul(stageIdx, idx(kChunk)), fragCol(j, 0))});
            for (int64_t e = 0; e < 4; ++e)
              decayA.push_back(
                  exp2(fsub(gRow[e / 2], vector::ExtractOp::create(b, gCol, e % 2))));
          }
        }
        // A's causal mask and decay, then the A-register operand.
        if (!overlap) {
          ptx.wgmmaWait(1);
          a = ptx.fenceOperands(a);
        }
        SmallVector<Value> aRegs =
            causalChunkOperand(b, fb, a, decayA, AccumulatorLane{g, t2, {rowA[0], rowA[1]}});

        // O = 2^G_t OQ + A V.
        ptx.wgmmaWait(0);
        o = ptx.fenceOperands(o);
        if (gated) {
          Value decay[2] = {exp2(gRow[0]), exp2(gRow[1])};
          for (int64_t i = 0; i < 32; ++i)
            o[i] = fmul(o[i], decay[(i % 4) / 2]);
        }
        ptx.wgmmaFence();
        for (int64_t u = 0; u < 4; ++u)
          o = ptx.wgmma(o, Value(), ArrayRef<Value>(aRegs).slice(4 * u, 4), vDesc[u], kCols,
                        et, /*transposeB=*/true);
        ptx.wgmmaCommit();

        SmallVector<Value> next(carried.begin(), carried.end());
        if (gated) {
          // K <- K ⊙ 2^(G_last − G_s) in place (Q K^T is done reading it).
          // Thread: row ctid % 64, half ctid / 64 of the row's Dk / 8
          // 16-byte chunks; iteration i takes physical chunk (i ^ (row % 8))
          // of its box, so a warp's 32 rows spread over all banks.
          Value gLast = memref::LoadOp::create(
              b, gView, ValueRange{add(mul(stageIdx, idx(kChunk)), idx(kChunk - 1))});
          Value row = rem(ctid, kChunk), part = div(ctid, kChunk);
          Value gS = memref::LoadOp::create(
              b, gView, ValueRange{add(mul(stageIdx, idx(kChunk)), row)});
          Value w = kb.splat(exp2(fsub(gLast, gS)), 8);
          Value kView = stageTile(stageIdx, kOff);
          scaleSwizzledRow(b, kView, kView, row, part, w, dk, et);
          // The scaled K is read by wgmma (the async proxy).
          ptx.fenceProxyAsync();
          consumerSync();
          Value decay = exp2(gLast);
          for (Value &s : next)
            s = fmul(s, decay);
        }
        // S += K^T V.
        issueStateUpdate(base, vDesc, next);
        // Overlap: O is written while the state update runs, then the next
        // chunk's A = Q K^T (the other stage) is issued and runs while the
        // state is written out; it completes (wait_group 0) before the loop
        // carries it: accumulators in flight across the back edge (phi
        // copies) make ptxas serialize every wgmma (C7514), as does issuing
        // it before O's stores (C7511, registers). The last chunk issues a
        // discarded one on its own stage (landed; the producer loads nothing
        // after it) rather than a branch that defines the accumulators
        // (C7515).
        // O (A V, the older group) is stored while the state update runs.
        ptx.wgmmaWait(1);
        o = ptx.fenceOperands(o);

        storeOutput(t0, rowA, o);
        SmallVector<Value> aNext;
        if (overlap) {
          Value nextChunk = add(c, idx(1));
          Value hasNext = cmp(arith::CmpIPredicate::ult, nextChunk, chunks);
          aNext = issueQK(arith::SelectOp::create(b, hasNext, nextChunk, c), hasNext);
          ptx.wgmmaWait(1); // the state update (the next A in flight)
        } else {
          ptx.wgmmaWait(0); // the state update
        }
        finishChunk(next, stage, wtid);
        if (overlap) {
          ptx.wgmmaWait(0); // the next chunk's A
          aNext = ptx.fenceOperands(aNext);
          next.append(aNext.begin(), aNext.end());
        }
        return next;
      });
  };
  SmallVector<Value> state;
  if (overlap) {
    // Chunk 0's Q K^T before the loop, which carries the next chunk's
    // (complete) A accumulators after the state; no chunks, no loop.
    state = kb.ifWithResults(
        cmp(arith::CmpIPredicate::ult, idx(0), chunks), ValueRange(init).getTypes(),
        [&] {
          SmallVector<Value> loopInit(init.begin(), init.end());
          SmallVector<Value> a0 = issueQK(idx(0), Value());
          ptx.wgmmaWait(0);
          a0 = ptx.fenceOperands(a0);
          // Copied into fresh registers (an untied asm): with chunk 0's
          // wgmma accumulators flowing straight into the loop's phi, ptxas
          // serialized every wgmma ("insufficient register resources",
          // C7511).
          for (Value &x : a0)
            x = ptx.emit({f32}, {x}, "mov.b32 $0, $1;", "=f,f");
          loopInit.append(a0.begin(), a0.end());
          SmallVector<Value> loopOut = chunkLoop(loopInit);
          loopOut.resize(nState);
          return loopOut;
        },
        [&] { return init; });
  } else {
    state = chunkLoop(init);
  }

  if (p.final && pair) {
    // The final state's coordinates from an opaque thread index (computed
    // before the chunk loop, they were held through it: 8 bytes of spills).
    Value late = arith::SubIOp::create(b, opaqueIndex(tid), idx(128));
    LanePlace l = lanePlace(late);
    g = l.g;
    t2 = l.t2;
    rowA[0] = l.row[0];
    rowA[1] = l.row[1];
    colBase = groupColBase(div(late, kConsumerThreads));
  }
  if (p.final)
    for (int64_t h = 0; h < boxes; ++h)
      for (int64_t j = 0; j < 8; ++j)
        for (int64_t e = 0; e < 4; ++e)
          memref::StoreOp::create(b, state[sIndex(h, j, e)], p.final,
                                  ValueRange{batch, head, stateRow(h, e),
                                             add(colBase, fragCol(j, e))});
  b.setInsertionPointAfter(roles);
  gpu::ReturnOp::create(b);
  return true;
}

} // namespace attn
