//===- TileLinear.cpp - chunkwise linear and gated linear attention -------===//
//
// Per (batch, head), with C the chunk length and the f32 state S [Dk, Dv]:
//
//   for each chunk [t0, t0 + C):
//     G[t] = log2(e) * sum_{s <= t in chunk} g_s          (in-chunk cumulative)
//     out_t = scale * ( sum_{s <= t} (q_t . k_s)_G v_s      intra-chunk, causal
//                      + (q_t * exp2(G_t)) S )              inter-chunk
//     S     = exp2(G_last) S + sum_s (k_s * exp2(G_last - G_s)) v_s^T
//
// where (q . k)_G = sum_d q_d k_d exp2(G_t,d - G_s,d) (vector gates; one
// factor for scalar gates). Every exponent is a difference G_t - G_s with
// s <= t, or G_t itself, so decaying gates (g <= 0) never overflow however
// long the sequence or strong the decay; only the state crosses chunks.
//
//===----------------------------------------------------------------------===//

#include "LinearProblem.h"
#include "LoopBuilder.h"
#include "attn/Spec/Limits.h"
#include "attn/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"

using namespace mlir;

namespace attn {
#define GEN_PASS_DEF_ATTNTILELINEAR
#include "attn/Transforms/Passes.h.inc"

namespace {

constexpr double kLog2e = 1.4426950408889634;

class LinearTiler {
public:
  LinearTiler(const LinearProblem &p, ImplicitLocOpBuilder &b, int64_t chunk)
      : p(p), b(b), lb(b), chunk(chunk) {}

  void build() {
    dk = cast<MemRefType>(p.query.getType()).getDimSize(3);
    dv = cast<MemRefType>(p.value.getType()).getDimSize(3);
    gateWidth = p.gate == GateKind::Vector ? dk : 1;
    Value batches = lb.dim(p.query, 0), heads = lb.dim(p.query, 1);
    seq = lb.dim(p.query, 2);
    Value zero = lb.index(0), one = lb.index(1);
    scf::ParallelOp::create(b, ValueRange{zero, zero}, ValueRange{batches, heads},
                            ValueRange{one, one},
                            [&](OpBuilder &, Location, ValueRange ivs) {
                              buildHead(ivs[0], ivs[1]);
                            });
  }

private:
  Value featureMap(Value x) { return emitFeatureMap(b, p.featureMap, x); }

  /// log-space gate of step `t` and channel `d`, times log2(e).
  Value gateLog2(Value batch, Value head, Value t, Value d) {
    Value g;
    switch (*p.gate) {
    case GateKind::Scalar:
      g = lb.loadF32(p.gates, {batch, head, t});
      break;
    case GateKind::Vector:
      g = lb.loadF32(p.gates, {batch, head, t, d});
      break;
    case GateKind::HeadConstant:
      g = lb.loadF32(p.gates, {head});
      break;
    }
    return arith::MulFOp::create(b, g, lb.f32(kLog2e));
  }

  Value exp2(Value x) { return math::Exp2Op::create(b, x); }
  Value mul(Value x, Value y) { return arith::MulFOp::create(b, x, y); }
  Value add(Value x, Value y) { return arith::AddFOp::create(b, x, y); }

  void buildHead(Value batch, Value head) {
    Type f32 = b.getF32Type();
    Value zero = lb.index(0), one = lb.index(1);
    Value dkV = lb.index(dk), dvV = lb.index(dv);
    Value state = memref::AllocaOp::create(b, MemRefType::get({dk, dv}, f32));
    if (p.initial) {
      lb.forLoop(zero, dkV, [&](Value d) {
        lb.forLoop(zero, dvV, [&](Value e) {
          memref::StoreOp::create(b, lb.loadF32(p.initial, {batch, head, d, e}),
                                  state, ValueRange{d, e});
        });
      });
    } else {
      linalg::FillOp::create(b, ValueRange{lb.f32(0.0)}, ValueRange{state});
    }
    Value normalizer;
    if (p.normalize) {
      normalizer = memref::AllocaOp::create(b, MemRefType::get({dk}, f32));
      linalg::FillOp::create(b, ValueRange{lb.f32(0.0)}, ValueRange{normalizer});
    }
    Value qc = memref::AllocaOp::create(b, MemRefType::get({chunk, dk}, f32));
    Value kc = memref::AllocaOp::create(b, MemRefType::get({chunk, dk}, f32));
    Value cumGates;
    if (p.gate)
      cumGates = memref::AllocaOp::create(b, MemRefType::get({chunk, gateWidth}, f32));
    Value outRow = memref::AllocaOp::create(b, MemRefType::get({dv}, f32));

    AffineExpr s0 = b.getAffineSymbolExpr(0), d0 = b.getAffineDimExpr(0);
    Value chunks = affine::AffineApplyOp::create(
        b, AffineMap::get(0, 1, s0.ceilDiv(chunk)), ValueRange{seq});
    lb.forLoop(zero, chunks, [&](Value c) {
      Value t0 = arith::MulIOp::create(b, c, lb.index(chunk));
      Value len = affine::AffineMinOp::create(
          b, AffineMap::get(1, 1, {b.getAffineConstantExpr(chunk), s0 - d0 * chunk},
                            b.getContext()),
          ValueRange{c, seq});
      // Stage the chunk's (feature-mapped) queries and keys in f32.
      lb.forLoop(zero, len, [&](Value t) {
        Value pos = arith::AddIOp::create(b, t0, t);
        lb.forLoop(zero, dkV, [&](Value d) {
          memref::StoreOp::create(b, featureMap(lb.loadF32(p.query, {batch, head, pos, d})),
                                  qc, ValueRange{t, d});
          memref::StoreOp::create(b, featureMap(lb.loadF32(p.key, {batch, head, pos, d})),
                                  kc, ValueRange{t, d});
        });
      });
      // In-chunk cumulative gates, restarted at every chunk.
      if (p.gate) {
        lb.forLoop(zero, lb.index(gateWidth), [&](Value d) {
          lb.reduceLoop(zero, len, lb.f32(0.0), [&](Value t, Value running) {
            Value pos = arith::AddIOp::create(b, t0, t);
            Value next = add(running, gateLog2(batch, head, pos, d));
            memref::StoreOp::create(b, next, cumGates, ValueRange{t, d});
            return next;
          });
        });
      }
      auto gateAt = [&](Value t, Value d) -> Value {
        Value col = gateWidth == 1 ? zero : d;
        return memref::LoadOp::create(b, cumGates, ValueRange{t, col});
      };

      lb.forLoop(zero, len, [&](Value t) {
        Value pos = arith::AddIOp::create(b, t0, t);
        linalg::FillOp::create(b, ValueRange{lb.f32(0.0)}, ValueRange{outRow});
        Value tPlus1 = arith::AddIOp::create(b, t, one);
        // Intra-chunk: causal products with decay.
        Value den = lb.reduceLoop(zero, tPlus1, lb.f32(0.0), [&](Value s, Value den) {
          Value score = lb.reduceLoop(zero, dkV, lb.f32(0.0), [&](Value d, Value acc) {
            Value qk = mul(memref::LoadOp::create(b, qc, ValueRange{t, d}),
                           memref::LoadOp::create(b, kc, ValueRange{s, d}));
            if (p.gate == GateKind::Vector)
              qk = mul(qk, exp2(arith::SubFOp::create(b, gateAt(t, d), gateAt(s, d))));
            return add(acc, qk);
          });
          if (p.gate && p.gate != GateKind::Vector)
            score = mul(score, exp2(arith::SubFOp::create(b, gateAt(t, zero), gateAt(s, zero))));
          Value vpos = arith::AddIOp::create(b, t0, s);
          lb.forLoop(zero, dvV, [&](Value e) {
            Value o = memref::LoadOp::create(b, outRow, ValueRange{e});
            memref::StoreOp::create(
                b, add(o, mul(score, lb.loadF32(p.value, {batch, head, vpos, e}))),
                outRow, ValueRange{e});
          });
          return add(den, score);
        });
        // Inter-chunk: the state carried in from earlier chunks.
        lb.forLoop(zero, dkV, [&](Value d) {
          Value q = memref::LoadOp::create(b, qc, ValueRange{t, d});
          if (p.gate)
            q = mul(q, exp2(gateAt(t, d)));
          lb.forLoop(zero, dvV, [&](Value e) {
            Value o = memref::LoadOp::create(b, outRow, ValueRange{e});
            Value s = memref::LoadOp::create(b, state, ValueRange{d, e});
            memref::StoreOp::create(b, add(o, mul(q, s)), outRow, ValueRange{e});
          });
        });
        Value factor = lb.f32(p.scale);
        if (p.normalize) {
          den = lb.reduceLoop(zero, dkV, den, [&](Value d, Value acc) {
            return add(acc, mul(memref::LoadOp::create(b, qc, ValueRange{t, d}),
                                memref::LoadOp::create(b, normalizer, ValueRange{d})));
          });
          Value isZero = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, den, lb.f32(0.0));
          factor = arith::SelectOp::create(b, isZero, lb.f32(0.0),
                                           arith::DivFOp::create(b, lb.f32(1.0), den));
        }
        lb.forLoop(zero, dvV, [&](Value e) {
          Value o = memref::LoadOp::create(b, outRow, ValueRange{e});
          lb.storeFromF32(mul(o, factor), p.out, {batch, head, pos, e});
        });
      });

      // State update with the decay to the end of the chunk.
      Value last = arith::SubIOp::create(b, len, one);
      lb.forLoop(zero, dkV, [&](Value d) {
        Value decayAll = p.gate ? exp2(gateAt(last, d)) : Value();
        lb.forLoop(zero, dvV, [&](Value e) {
          Value s = memref::LoadOp::create(b, state, ValueRange{d, e});
          if (decayAll)
            s = mul(s, decayAll);
          Value update = lb.reduceLoop(zero, len, lb.f32(0.0), [&](Value t, Value acc) {
            Value k = memref::LoadOp::create(b, kc, ValueRange{t, d});
            if (p.gate)
              k = mul(k, exp2(arith::SubFOp::create(b, gateAt(last, d), gateAt(t, d))));
            Value vpos = arith::AddIOp::create(b, t0, t);
            return add(acc, mul(k, lb.loadF32(p.value, {batch, head, vpos, e})));
          });
          memref::StoreOp::create(b, add(s, update), state, ValueRange{d, e});
        });
        if (p.normalize) {
          Value z = lb.reduceLoop(zero, len, memref::LoadOp::create(b, normalizer, ValueRange{d}),
                                  [&](Value t, Value acc) {
                                    return add(acc, memref::LoadOp::create(b, kc, ValueRange{t, d}));
                                  });
          memref::StoreOp::create(b, z, normalizer, ValueRange{d});
        }
      });
    });

    if (p.final) {
      lb.forLoop(zero, dkV, [&](Value d) {
        lb.forLoop(zero, dvV, [&](Value e) {
          memref::StoreOp::create(b, memref::LoadOp::create(b, state, ValueRange{d, e}),
                                  p.final, ValueRange{batch, head, d, e});
        });
      });
    }
  }

  const LinearProblem &p;
  ImplicitLocOpBuilder &b;
  LoopBuilder lb;
  int64_t chunk;
  int64_t dk = 0, dv = 0, gateWidth = 1;
  Value seq;
};

/// The chunk length: the pass option, else attn.options.chunk, else 64. The
/// chunk's staging buffers live on the stack, hence the upper bound.
FailureOr<int64_t> chooseChunk(Operation *op, int64_t option) {
  if (option < 0 || option > kMaxSpecChunk)
    return op->emitOpError() << "attn-tile-linear option chunk must be between 1 and "
                             << kMaxSpecChunk << " (0: default), got " << option;
  if (option > 0)
    return option;
  if (auto func = op->getParentOfType<func::FuncOp>())
    if (auto opts = func->getAttrOfType<DictionaryAttr>("attn.options"))
      if (auto v = opts.getAs<IntegerAttr>("chunk")) {
        if (v.getInt() < 1 || v.getInt() > kMaxSpecChunk)
          return op->emitOpError() << "attn.options.chunk must be between 1 and "
                                   << kMaxSpecChunk << ", got " << v.getInt();
        return v.getInt();
      }
  return 64;
}

struct TileLinearPass : public impl::AttnTileLinearBase<TileLinearPass> {
  using AttnTileLinearBase::AttnTileLinearBase;

  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation()->walk([&](Operation *op) {
      if (isa<LinearAttentionOp, GatedLinearAttentionOp>(op))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      LinearProblem p = *getLinearProblem(op);
      FailureOr<int64_t> chunkLength = chooseChunk(op, chunk);
      if (failed(chunkLength))
        return signalPassFailure();
      ImplicitLocOpBuilder b(op->getLoc(), op);
      LinearTiler(p, b, *chunkLength).build();
      op->erase();
    }
  }
};

} // namespace
} // namespace attn
