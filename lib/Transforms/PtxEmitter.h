//===- PtxEmitter.h - Hopper instructions as inline PTX --------------------===//
//
// The asynchronous sm_90a instructions the Hopper kernel needs (mbarrier,
// TMA, wgmma, setmaxnreg), each one `llvm.inline_asm` with LLVM constraint
// strings.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_LIB_TRANSFORMS_PTXEMITTER_H
#define ATTN_LIB_TRANSFORMS_PTXEMITTER_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <string>

namespace attn {
using namespace mlir;

/// Inline PTX with LLVM constraint strings; every op has side effects so the
/// asynchronous instructions keep their program order.
class PtxEmitter {
public:
  explicit PtxEmitter(ImplicitLocOpBuilder &b) : b(b) {}

  Value emit(TypeRange results, ValueRange operands, StringRef ptx, StringRef constraints) {
    Type resultType;
    if (results.size() == 1)
      resultType = results[0];
    else if (results.size() > 1)
      resultType = LLVM::LLVMStructType::getLiteral(b.getContext(), SmallVector<Type>(results));
    auto op = LLVM::InlineAsmOp::create(
        b, resultType, operands, ptx, constraints, /*has_side_effects=*/true,
        /*is_align_stack=*/false, LLVM::tailcallkind::TailCallKind::None,
        LLVM::AsmDialectAttr::get(b.getContext(), LLVM::AsmDialect::AD_ATT),
        /*operand_attrs=*/ArrayAttr());
    return results.empty() ? Value() : op.getRes();
  }

  void mbarrierInit(Value bar, int32_t count) {
    emit({}, {bar, i32(count)}, "mbarrier.init.shared::cta.b64 [$0], $1;", "r,r");
  }
  void mbarrierInitFence() { emit({}, {}, "fence.mbarrier_init.release.cluster;", ""); }
  void arriveExpectTx(Value bar, int64_t bytes) {
    emit({}, {bar, i32(bytes)}, "mbarrier.arrive.expect_tx.shared::cta.b64 _, [$0], $1;",
         "r,r");
  }
  /// Raises the current phase's expected transaction bytes without arriving
  /// (the arrival comes later, once other writes it must cover are done).
  void expectTx(Value bar, int64_t bytes) {
    emit({}, {bar, i32(bytes)}, "mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [$0], $1;",
         "r,r");
  }
  /// Blocks until the phase with parity `parity` of `bar` has completed.
  /// Waits for the phase with `parity` to complete. The suspend-time hint
  /// (10 ms, as CUTLASS) lets the hardware park the thread until the phase
  /// completes instead of returning at once: a spinning producer otherwise
  /// takes issue slots from the consumer warps on its scheduler.
  void wait(Value bar, Value parity) {
    emit({}, {bar, parity},
         "{\n.reg .pred done;\nwait_again:\n"
         "mbarrier.try_wait.parity.shared::cta.b64 done, [$0], $1, 10000000;\n"
         "@!done bra wait_again;\n}",
         "r,r");
  }
  /// One 4-d TMA box (coordinates innermost first) into shared `dst`.
  void tmaLoad(Value dst, Value map, ArrayRef<Value> coords, Value bar) {
    SmallVector<Value> operands = {dst, map};
    operands.append(coords.begin(), coords.end());
    operands.push_back(bar);
    emit({}, operands,
         "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes "
         "[$0], [$1, {$2, $3, $4, $5}], [$6];",
         "r,l,r,r,r,r,r");
  }

  void arrive(Value bar) {
    emit({}, {bar}, "mbarrier.arrive.shared::cta.b64 _, [$0];", "r");
  }
  /// Named barrier `id` (an i32, 1..15; 0 is the block barrier) over
  /// `threads` threads: wait for it, or only arrive on it.
  void namedBarrierSync(Value id, int64_t threads) {
    emit({}, {id}, "bar.sync $0, " + std::to_string(threads) + ";", "r");
  }
  /// The same without `.aligned`: for threads of a warp that may reach it
  /// from different places (LLVM may duplicate an inline-asm barrier into
  /// both sides of a divergent branch; `bar.sync`, which is
  /// `barrier.sync.aligned`, is then undefined and hung on the H200).
  void namedBarrierSyncDivergent(Value id, int64_t threads) {
    emit({}, {id}, "barrier.sync $0, " + std::to_string(threads) + ";", "r");
  }
  void namedBarrierArrive(Value id, int64_t threads) {
    emit({}, {id}, "bar.arrive $0, " + std::to_string(threads) + ";", "r");
  }
  /// setmaxnreg: hands registers back to (or takes them from) the SM's pool
  /// for this warpgroup; the kernel must have a register cap at entry.
  void setMaxRegisters(int64_t count, bool increase) {
    emit({}, {},
         std::string("setmaxnreg.") + (increase ? "inc" : "dec") + ".sync.aligned.u32 " +
             std::to_string(count) + ";",
         "");
  }

  /// Orders this thread's generic-proxy shared-memory accesses before later
  /// async-proxy ones (wgmma operand reads, TMA) and vice versa.
  void fenceProxyAsync() { emit({}, {}, "fence.proxy.async.shared::cta;", ""); }
  /// Every lane of the warp; orders their shared-memory accesses too.
  void warpSync() { emit({}, {}, "bar.warp.sync -1;", ""); }
  /// A warp-uniform i32 `v32` from lane 0 (CUTLASS's canonical warp index):
  /// the same value, but ptxas can now prove it warp-uniform and keeps what
  /// derives from it (wgmma descriptors among it) in uniform registers, where
  /// one from %tid.x costs an R2UR before every use. Opaque to LLVM too (it
  /// is not hoisted out of loops).
  Value broadcastFromLaneZero(Value v32) {
    return emit({b.getI32Type()}, {v32}, "shfl.sync.idx.b32 $0, $1, 0, 0x1f, 0xffffffff;",
                "=r,r");
  }

  /// A `tag` (a PTX comment) keeps LLVM from hoisting the fences of two
  /// branches' wgmma sequences above the branch: ptxas wants the fence in
  /// the products' own block (else C7519 / C7513).
  void wgmmaFence(StringRef tag = "") {
    emit({}, {}, "wgmma.fence.sync.aligned;" + (tag.empty() ? "" : " // " + tag.str()), "");
  }
  void wgmmaCommit() { emit({}, {}, "wgmma.commit_group.sync.aligned;", ""); }
  /// Waits until at most `pending` committed wgmma groups are in flight.
  void wgmmaWait(int pending) {
    emit({}, {}, "wgmma.wait_group.sync.aligned " + std::to_string(pending) + ";", "");
  }

  /// acc += A B for one m64nNk16 step. A is a shared-memory descriptor
  /// (`aDesc`, MN-major when `transposeA`) or 4 registers (`aRegs`); B is a
  /// descriptor, MN-major when `transposeB`. With `accumulate` false the
  /// product overwrites the accumulators (scale-d = 0), whose inputs are then
  /// never read: `acc` only gives their count.
  SmallVector<Value> wgmma(ArrayRef<Value> acc, Value aDesc, ArrayRef<Value> aRegs,
                           Value bDesc, int64_t n, Type elem, bool transposeB,
                           bool transposeA = false, bool accumulate = true) {
    int64_t m = acc.size();
    std::string type = elem.isBF16() ? "bf16" : "f16";
    std::string ptx = "{\n.reg .pred p;\nsetp.ne.b32 p, $SCALE, 0;\n"
                      "wgmma.mma_async.sync.aligned.m64n" +
                      std::to_string(n) + "k16.f32." + type + "." + type + " {";
    std::string constraints;
    for (int64_t i = 0; i < m; ++i) {
      ptx += (i ? ", $" : "$") + std::to_string(i);
      constraints += "=f,";
    }
    for (int64_t i = 0; i < m; ++i)
      constraints += std::to_string(i) + ",";
    SmallVector<Value> operands(acc.begin(), acc.end());
    // Undefined inputs need no register moves between the wgmma fence and
    // the product (ptxas otherwise injects a warpgroup.arrive: C7519).
    if (!accumulate)
      for (Value &v : operands)
        v = LLVM::UndefOp::create(b, b.getF32Type());
    int64_t next = 2 * m;
    if (aDesc) {
      ptx += "}, $" + std::to_string(next++);
      operands.push_back(aDesc);
      constraints += "l,";
    } else {
      ptx += "}, {";
      for (int64_t i = 0; i < 4; ++i) {
        ptx += (i ? ", $" : "$") + std::to_string(next++);
        operands.push_back(aRegs[i]);
        constraints += "r,";
      }
      ptx += "}";
    }
    ptx += ", $" + std::to_string(next++);
    operands.push_back(bDesc);
    constraints += "l";
    // scale-d from an immediate: a register operand is a move LLVM may place
    // between the wgmma fence and the product (C7519).
    ptx.replace(ptx.find("$SCALE"), 6, accumulate ? "1" : "0");
    // scale-d = p (accumulate), scale-a = scale-b = 1, then the transposes
    // (A from registers has no transpose immediate).
    ptx += std::string(", p, 1, 1") + (aDesc ? (transposeA ? ", 1" : ", 0") : "") +
           (transposeB ? ", 1" : ", 0") +
           ";\n}";
    Value result = emit(SmallVector<Type>(m, b.getF32Type()), operands, ptx, constraints);
    return unpack(result, m);
  }

  /// Makes the accumulators' later uses depend on the preceding wgmma wait:
  /// an empty asm that "redefines" them (CUTLASS's warpgroup_fence_operand).
  SmallVector<Value> fenceOperands(ArrayRef<Value> values) {
    int64_t m = values.size();
    std::string constraints;
    for (int64_t i = 0; i < m; ++i)
      constraints += "=f,";
    for (int64_t i = 0; i < m; ++i)
      constraints += std::to_string(i) + (i + 1 < m ? "," : "");
    Value result = emit(SmallVector<Type>(m, b.getF32Type()), values, "", constraints);
    return unpack(result, m);
  }

  Value i32(int64_t v) { return arith::ConstantIntOp::create(b, v, 32); }

private:
  SmallVector<Value> unpack(Value result, int64_t m) {
    SmallVector<Value> values;
    for (int64_t i = 0; i < m; ++i)
      values.push_back(LLVM::ExtractValueOp::create(b, result, {i}));
    return values;
  }

  ImplicitLocOpBuilder &b;
};

} // namespace attn

#endif // ATTN_LIB_TRANSFORMS_PTXEMITTER_H
