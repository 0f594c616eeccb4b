//===- LowerToGpuKernels.cpp - portable SIMT GPU kernels ------------------===//
//
// The first GPU lowering: correct for every variant, simple, and with no
// tensor cores yet. Softmax attention: one block per (q tile, head, batch),
// one thread per query row; Q, K and V tiles are staged in shared memory; the
// k-tile loop visits only the plan's non-empty tiles and computes element
// masks only on partial ones; the online softmax runs per key in registers.
// Linear kinds: one block per (head, batch), one thread per value column,
// the f32 state column in registers, the recurrence over time.
//
// Per-thread vectors are split into chunks of at most 32 lanes so that every
// index is a compile-time constant: the state stays in registers, not in a
// stack frame (the ptxas gate checks this).
//
//===----------------------------------------------------------------------===//

#include "GpuKernelCommon.h"
#include "LinearProblem.h"
#include "LoopBuilder.h"
#include "ScoreEmitter.h"
#include "TileRange.h"
#include "attn/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"

using namespace mlir;

namespace attn {
#define GEN_PASS_DEF_ATTNLOWERTOGPUKERNELS
#include "attn/Transforms/Passes.h.inc"

namespace {

/// Head dims past kMaxGpuHeadDim: an error on the op (the SIMT kernels unroll
/// a row's columns, and 2^31 of them never finish building).
bool headDimsFitGpuKernels(Operation *op, Value query, Value value) {
  for (auto [name, v] : {std::pair<const char *, Value>{"query / key", query}, {"value", value}}) {
    int64_t dim = cast<MemRefType>(v.getType()).getDimSize(3);
    if (ShapedType::isDynamic(dim) || dim > kMaxGpuHeadDim) {
      op->emitOpError() << "has a " << name << " head dim of "
                        << (ShapedType::isDynamic(dim) ? std::string("?") : std::to_string(dim))
                        << "; the GPU kernels take static head dims up to " << kMaxGpuHeadDim;
      return false;
    }
  }
  return true;
}

void buildSoftmaxKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                        func::FuncOp host, AttentionOp op) {
  TilePlanAttr plan = op.getTilePlanAttr();
  int64_t bq = plan.getBlockQ(), bk = plan.getBlockK();
  auto qType = cast<MemRefType>(op.getQuery().getType());
  Type et = qType.getElementType(), f32 = b.getF32Type();
  int64_t d = qType.getDimSize(3);
  int64_t dv = cast<MemRefType>(op.getValue().getType()).getDimSize(3);
  // A thread holds q.k's operands (D lanes) and its part of the accumulator
  // in registers: split the value columns over `split` threads per row until
  // that fits well under the 255-register limit (no spills), and while the
  // block stays within 1024 threads (past that, large head dims spill rather
  // than fail to launch).
  int64_t split = 1;
  while (d + dv / split > 160 && dv % (split * 2) == 0 && bq * split * 2 <= 1024)
    split *= 2;
  int64_t dvPart = dv / split, threads = bq * split;
  int64_t wd = chunkWidth(d), wv = chunkWidth(dvPart);
  MLIRContext *ctx = b.getContext();

  IRMapping map;
  SmallVector<Value> shared;
  gpu::GPUFuncOp kernel = createKernel(
      b, module, host,
      {sharedTile(ctx, bq, d, et), sharedTile(ctx, bk, d, et), sharedTile(ctx, bk, dv, et)},
      map, shared);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(&kernel.getBody().front());
  KernelBuilder kb(b);
  LoopBuilder &lb = kb.lb;
  Value qs = shared[0];
  Value ks = shared[1];
  Value vs = shared[2];
  Value q = map.lookup(op.getQuery()), k = map.lookup(op.getKey());
  Value v = map.lookup(op.getValue()), out = map.lookup(op.getOut());

  Value tile = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value head = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  Value batch = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value rowInTile = arith::RemUIOp::create(b, tid, lb.index(bq));
  Value colOffset = arith::MulIOp::create(
      b, arith::DivUIOp::create(b, tid, lb.index(bq)), lb.index(dvPart));
  Value seqQ = lb.dim(q, 2), seqK = lb.dim(k, 2);
  Value group = arith::DivUIOp::create(b, lb.dim(q, 1), lb.dim(k, 1));
  Value kvHead = arith::DivUIOp::create(b, head, group);
  Value rowBegin = arith::MulIOp::create(b, tile, lb.index(bq));
  Value row = arith::AddIOp::create(b, rowBegin, rowInTile);
  Value valid = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, row, seqQ);
  ScoreEmitter emitter(op, b, seqQ, seqK, map);

  kernel->setAttr("attn.block_threads", b.getI64IntegerAttr(threads));
  kb.stageTileVectorized(q, batch, head, rowBegin, seqQ, qs, bq, d, tid, threads);
  gpu::BarrierOp::create(b);

  KTileRange range = emitKTileRange(b, plan, tile, seqQ, seqK);

  // State: running max, running sum (base 2), accumulator chunks.
  VectorType accChunk = VectorType::get({wv}, f32);
  SmallVector<Value> init = {lb.negInf(), lb.f32(0.0)};
  for (int64_t c = 0; c < dvPart / wv; ++c)
    init.push_back(arith::ConstantOp::create(b, accChunk, DenseElementsAttr::get(accChunk, 0.0f)));
  SmallVector<Type> stateTypes = llvm::to_vector(ValueRange(init).getTypes());

  SmallVector<Value> state = kb.forWithState(
      range.begin, range.end, lb.index(1), init, [&](Value kt, ValueRange st) {
        Value colBegin = arith::MulIOp::create(b, kt, lb.index(bk));
        Value cols = arith::MinSIOp::create(
            b, lb.index(bk), arith::SubIOp::create(b, seqK, colBegin));
        kb.stageTileVectorized(k, batch, kvHead, colBegin, seqK, ks, bk, d, tid, threads);
        kb.stageTileVectorized(v, batch, kvHead, colBegin, seqK, vs, bk, dv, tid, threads);
        gpu::BarrierOp::create(b);
        Value needMask = emitNeedsElementMask(b, op, range, kt);
        SmallVector<Value> next = kb.ifWithResults(
            valid, stateTypes,
            [&] {
              return kb.forWithState(
                  lb.index(0), cols, lb.index(1), st, [&](Value c, ValueRange s) {
                    Value col = arith::AddIOp::create(b, colBegin, c);
                    Value dot = lb.f32(0.0);
                    for (int64_t w = 0; w < d / wd; ++w) {
                      Value qv = kb.loadVectorF32(qs, {rowInTile, lb.index(w * wd)}, wd);
                      Value kv = kb.loadVectorF32(ks, {c, lb.index(w * wd)}, wd);
                      dot = arith::AddFOp::create(
                          b, dot, kb.reduceAdd(arith::MulFOp::create(b, qv, kv)));
                    }
                    Value score = emitter.score(dot, batch, head, row, col);
                    Value visible = kb.ifWithResults(
                        needMask, {b.getI1Type()},
                        [&] { return SmallVector<Value>{emitter.visible(batch, head, row, col)}; },
                        [&] { return SmallVector<Value>{lb.boolean(true)}; })[0];
                    score = arith::SelectOp::create(b, visible, score, lb.negInf());
                    // Online softmax, one key at a time, guarded for -inf.
                    Value m = s[0], l = s[1];
                    Value mNew = arith::MaximumFOp::create(b, m, score);
                    Value noneSeen =
                        arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, mNew, lb.negInf());
                    Value alpha = arith::SelectOp::create(
                        b, noneSeen, lb.f32(1.0),
                        math::Exp2Op::create(b, arith::SubFOp::create(b, m, mNew)));
                    Value masked =
                        arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, score, lb.negInf());
                    Value p = arith::SelectOp::create(
                        b, masked, lb.f32(0.0),
                        math::Exp2Op::create(b, arith::SubFOp::create(b, score, mNew)));
                    SmallVector<Value> result = {
                        mNew, arith::AddFOp::create(b, arith::MulFOp::create(b, l, alpha), p)};
                    Value alphaV = kb.splat(alpha, wv), pV = kb.splat(p, wv);
                    for (int64_t w = 0; w < dvPart / wv; ++w) {
                      Value vcol = arith::AddIOp::create(b, colOffset, lb.index(w * wv));
                      Value vv = kb.loadVectorF32(vs, {c, vcol}, wv);
                      Value scaled = arith::MulFOp::create(b, s[2 + w], alphaV);
                      result.push_back(vector::FMAOp::create(b, pV, vv, scaled));
                    }
                    return result;
                  });
            },
            [&] { return SmallVector<Value>(st); });
        gpu::BarrierOp::create(b);
        return next;
      });

  // Finalize: out = acc / sum (0 for a fully masked row), lse natural log.
  lb.ifThen(valid, [&] {
    Value sum = state[1];
    Value empty = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, sum, lb.f32(0.0));
    Value inv = arith::SelectOp::create(b, empty, lb.f32(0.0),
                                        arith::DivFOp::create(b, lb.f32(1.0), sum));
    Value invV = kb.splat(inv, wv);
    Type outEt = cast<MemRefType>(out.getType()).getElementType();
    for (int64_t w = 0; w < dvPart / wv; ++w) {
      Value o = arith::MulFOp::create(b, state[2 + w], invV);
      if (outEt != f32)
        o = arith::TruncFOp::create(b, VectorType::get({wv}, outEt), o);
      Value ocol = arith::AddIOp::create(b, colOffset, lb.index(w * wv));
      vector::StoreOp::create(b, o, out, ValueRange{batch, head, row, ocol});
    }
    Value firstPart = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, tid, lb.index(bq));
    if (op.getLse()) lb.ifThen(firstPart, [&] {
      Value lse = map.lookup(op.getLse());
      Value natural = arith::MulFOp::create(
          b, arith::AddFOp::create(b, state[0], math::Log2Op::create(b, sum)), lb.f32(kLn2));
      memref::StoreOp::create(b, arith::SelectOp::create(b, empty, lb.negInf(), natural),
                              lse, ValueRange{batch, head, row});
    });
  });
  gpu::ReturnOp::create(b);
}

void buildLinearKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                       func::FuncOp host, LinearProblem p) {
  IRMapping map;
  SmallVector<Value> shared;
  gpu::GPUFuncOp kernel = createKernel(b, module, host, {}, map, shared);
  kernel->setAttr("attn.block_threads",
                  b.getI64IntegerAttr(cast<MemRefType>(p.value.getType()).getDimSize(3)));
  p.remap(map);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(&kernel.getBody().front());
  KernelBuilder kb(b);
  LoopBuilder &lb = kb.lb;
  Type f32 = b.getF32Type();
  int64_t dk = cast<MemRefType>(p.query.getType()).getDimSize(3);
  int64_t w = chunkWidth(dk), chunks = dk / w;
  VectorType chunkType = VectorType::get({w}, f32);

  Value head = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  Value batch = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  Value col = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value seq = lb.dim(p.query, 2);

  auto featureMap = [&](Value x) { return emitFeatureMap(b, p.featureMap, x); };

  // The state column S[:, col] (and the normalizer z) as register chunks.
  SmallVector<Value> init;
  for (int64_t c = 0; c < chunks; ++c) {
    if (p.initial) {
      SmallVector<Value> lanes;
      for (int64_t i = 0; i < w; ++i)
        lanes.push_back(lb.loadF32(p.initial, {batch, head, lb.index(c * w + i), col}));
      init.push_back(vector::FromElementsOp::create(b, chunkType, lanes));
    } else {
      init.push_back(arith::ConstantOp::create(b, chunkType, DenseElementsAttr::get(chunkType, 0.0f)));
    }
  }
  if (p.normalize)
    for (int64_t c = 0; c < chunks; ++c)
      init.push_back(arith::ConstantOp::create(b, chunkType, DenseElementsAttr::get(chunkType, 0.0f)));

  SmallVector<Value> state = kb.forWithState(
      lb.index(0), seq, lb.index(1), init, [&](Value t, ValueRange st) {
        Value vt = lb.loadF32(p.value, {batch, head, t, col});
        Value decayScalar;
        if (p.gate == GateKind::Scalar)
          decayScalar = lb.loadF32(p.gates, {batch, head, t});
        else if (p.gate == GateKind::HeadConstant)
          decayScalar = lb.loadF32(p.gates, {head});
        if (decayScalar)
          decayScalar = math::Exp2Op::create(
              b, arith::MulFOp::create(b, decayScalar, lb.f32(kLog2e)));
        SmallVector<Value> next;
        SmallVector<Value> keys;
        for (int64_t c = 0; c < chunks; ++c) {
          Value kc = featureMap(kb.loadVectorF32(p.key, {batch, head, t, lb.index(c * w)}, w));
          keys.push_back(kc);
          Value s = st[c];
          if (decayScalar)
            s = arith::MulFOp::create(b, s, kb.splat(decayScalar, w));
          if (p.gate == GateKind::Vector) {
            Value g = kb.loadVectorF32(p.gates, {batch, head, t, lb.index(c * w)}, w);
            s = arith::MulFOp::create(
                b, s, math::Exp2Op::create(b, arith::MulFOp::create(b, g, kb.splat(lb.f32(kLog2e), w))));
          }
          next.push_back(vector::FMAOp::create(b, kc, kb.splat(vt, w), s));
        }
        if (p.normalize)
          for (int64_t c = 0; c < chunks; ++c)
            next.push_back(arith::AddFOp::create(b, st[chunks + c], keys[c]));
        Value num = lb.f32(0.0), den = lb.f32(0.0);
        for (int64_t c = 0; c < chunks; ++c) {
          Value qc = featureMap(kb.loadVectorF32(p.query, {batch, head, t, lb.index(c * w)}, w));
          num = arith::AddFOp::create(b, num, kb.reduceAdd(arith::MulFOp::create(b, qc, next[c])));
          if (p.normalize)
            den = arith::AddFOp::create(
                b, den, kb.reduceAdd(arith::MulFOp::create(b, qc, next[chunks + c])));
        }
        Value o;
        if (p.normalize) {
          Value zero = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, den, lb.f32(0.0));
          o = arith::SelectOp::create(b, zero, lb.f32(0.0), arith::DivFOp::create(b, num, den));
        } else {
          o = arith::MulFOp::create(b, num, lb.f32(p.scale));
        }
        lb.storeFromF32(o, p.out, {batch, head, t, col});
        return next;
      });

  if (p.final)
    for (int64_t c = 0; c < chunks; ++c)
      for (int64_t i = 0; i < w; ++i)
        memref::StoreOp::create(b, vector::ExtractOp::create(b, state[c], i), p.final,
                                ValueRange{batch, head, lb.index(c * w + i), col});
  gpu::ReturnOp::create(b);
}

/// Soft-cap's tanh (and any tanh of a score_mod) as `tanh.approx.f32`: one
/// MUFU.TANH per score. libdevice's tanhf, which math.tanh becomes otherwise,
/// is an ex2, an rcp and a polynomial with a select: with the softmax's own
/// ex2 that is three MUFU ops per score, and MUFU is what bounds soft-cap
/// (16 ops per clock and SM against 0.125 clock of tensor-core work per score
/// at head dim 128). The approximation's relative error (2^-10.99) is below
/// the score's own from bf16 inputs (~2^-9 relative).
void replaceTanhByApproximation(gpu::GPUModuleOp module) {
  SmallVector<math::TanhOp> tanhs;
  module.walk([&](math::TanhOp op) {
    if (op.getType().isF32())
      tanhs.push_back(op);
  });
  for (math::TanhOp op : tanhs) {
    OpBuilder b(op);
    // No side effects: LLVM may hoist, sink or CSE it like any pure value.
    auto asmOp = LLVM::InlineAsmOp::create(
        b, op.getLoc(), op.getType(), ValueRange{op.getOperand()}, "tanh.approx.f32 $0, $1;",
        "=f,f", /*has_side_effects=*/false, /*is_align_stack=*/false,
        LLVM::tailcallkind::TailCallKind::None,
        LLVM::AsmDialectAttr::get(b.getContext(), LLVM::AsmDialect::AD_ATT),
        /*operand_attrs=*/ArrayAttr());
    op.replaceAllUsesWith(asmOp.getRes());
    op.erase();
  }
}

struct LowerToGpuKernelsPass
    : public impl::AttnLowerToGpuKernelsBase<LowerToGpuKernelsPass> {
  using AttnLowerToGpuKernelsBase::AttnLowerToGpuKernelsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (polyExp2Eighths < 0 || polyExp2Eighths > 8) {
      module.emitError() << "attn-lower-to-gpu-kernels: poly-exp2=" << polyExp2Eighths.getValue()
                         << " is not in 0..8 (elements in every 8)";
      return signalPassFailure();
    }
    if (kvStages < 2 || kvStages > 4) {
      module.emitError() << "attn-lower-to-gpu-kernels: kv-stages=" << kvStages.getValue()
                         << " is not in 2..4";
      return signalPassFailure();
    }
    // Table capacities in entries: a kernel sizes its shared memory by them.
    for (auto [name, entries] :
         {std::pair<StringRef, int64_t>{"document-tile-summary-entries",
                                        documentTileSummaryEntries},
          {"document-item-order-entries", documentItemOrderEntries}})
      if (entries < 1) {
        module.emitError() << "attn-lower-to-gpu-kernels: " << name << "=" << entries
                           << " is not a positive number of entries";
        return signalPassFailure();
      }
    if (documentItemOrderPhases < 1 || documentItemOrderPhases > 2) {
      module.emitError() << "attn-lower-to-gpu-kernels: document-item-order-phases="
                         << documentItemOrderPhases.getValue() << " is not 1 or 2";
      return signalPassFailure();
    }
    SmallVector<func::FuncOp> hosts;
    for (auto func : module.getOps<func::FuncOp>()) {
      bool hasAttn = false;
      func.walk([&](Operation *op) {
        hasAttn |= isa<AttentionOp, LinearAttentionOp, GatedLinearAttentionOp>(op);
      });
      if (hasAttn)
        hosts.push_back(func);
    }
    if (hosts.empty())
      return;
    ImplicitLocOpBuilder b(module.getLoc(), module.getContext());
    b.setInsertionPointToEnd(module.getBody());
    module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(), b.getUnitAttr());
    auto gpuModule = gpu::GPUModuleOp::create(b, "attn_kernels");

    for (func::FuncOp host : hosts) {
      b.setLoc(host.getLoc());
      bool ok = true;
      host.walk([&](Operation *op) {
        if (auto attention = dyn_cast<AttentionOp>(op)) {
          if (!attention.getTilePlanAttr()) {
            attention.emitOpError() << "has no tile_plan; run attn-plan-tiles first";
            ok = false;
            return;
          }
          if (!headDimsFitGpuKernels(attention, attention.getQuery(), attention.getValue())) {
            ok = false;
            return;
          }
          if (wgmma && buildWgmmaSoftmaxKernel(b, gpuModule, host, attention,
                                                {documentTiles, pingPong, persistent,
                                                 lazyRescale, polyExp2Eighths, kvStages,
                                                 itemOverlap, dynamicScheduler, documentIdsInShared,
                                                 documentTileSummary, documentTileSummaryEntries,
                                                 documentTileSummaryUnroll, stagedOutputStore,
                                                 documentItemOrder, documentItemOrderEntries,
                                                 documentItemOrderPhases, crossHeadTiles,
                                                 uniformWarpgroupIndex, halfDiagonalKeys,
                                                 earlyOutputRelease}))
            return;
          if (!tensorCores || !buildMmaSoftmaxKernel(b, gpuModule, host, attention, cpAsync))
            buildSoftmaxKernel(b, gpuModule, host, attention);
        } else if (std::optional<LinearProblem> p = getLinearProblem(op)) {
          if (!headDimsFitGpuKernels(op, p->query, p->value)) {
            ok = false;
            return;
          }
          if (chunkedLinearWgmma && chunkedLinearSplitState &&
              buildWgmmaSplitStateLinearKernel(b, gpuModule, host, *p,
                                               chunkedLinearProducerKScale))
            return;
          if (chunkedLinearWgmma &&
              buildWgmmaChunkwiseLinearKernel(b, gpuModule, host, *p,
                                              {chunkedLinearWgmmaOverlap, chunkedLinearWgmmaVector,
                                               chunkedLinearProducerDiagonal,
                                               chunkedLinearTwoConsumers}))
            return;
          if (!chunkedLinear || !buildChunkwiseLinearKernel(b, gpuModule, host, *p,
                                                                chunkedLinearPrefetch))
            buildLinearKernel(b, gpuModule, host, *p);
        }
      });
      if (!ok)
        return signalPassFailure();
      host.erase();
    }
    // A block of more than 256 threads cannot give each thread ptxas's
    // default of up to 255 registers (64K per SM): such a kernel states its
    // block size (.maxntid), and ptxas then keeps registers x threads within
    // the SM's (spilling if it must) instead of building a kernel whose launch
    // fails (SIMT kernels of wide head dims or explicit large tiles). The
    // Hopper and wgmma linear kernels set theirs, with a blocks-per-SM hint.
    // Not on smaller blocks: LLVM also reads it as the range of %tid.x and
    // simplifies index arithmetic, which changes every kernel's PTX (left for
    // a GPU-checked change).
    gpuModule.walk([&](gpu::GPUFuncOp kernel) {
      auto threads = kernel->getAttrOfType<IntegerAttr>("attn.block_threads");
      if (threads && threads.getInt() > 256 &&
          !kernel->hasAttr(NVVM::NVVMDialect::getMaxntidAttrName()))
        kernel->setAttr(NVVM::NVVMDialect::getMaxntidAttrName(),
                        b.getDenseI32ArrayAttr({int32_t(threads.getInt()), 1, 1}));
    });
    if (fastTanh)
      replaceTanhByApproximation(gpuModule);
  }
};

} // namespace
} // namespace attn
