//===- GpuCompiler.cpp - spec -> PTX (+ cubin) + manifest -----------------===//
//
// Stages: attn IR (from the spec) -> normalize masks -> plan tiles (GPU tile
// sizes) -> SIMT kernels in a gpu.module -> gpu-lower-to-nvvm-pipeline (NVVM
// -> LLVM NVPTX -> PTX text) -> optionally ptxas -> cubin. The manifest
// records what the runtime needs to launch the kernel without the compiler.
//
//===----------------------------------------------------------------------===//

#include "attn/Target/GpuCompiler.h"
#include "CompilerFingerprint.h"
#include "attn/Runtime/KernelArgs.h"
#include "attn/Spec/SpecToIR.h"
#include "attn/Transforms/CompilerContext.h"
#include "attn/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/CompilationInterfaces.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVM/NVVM/Utils.h"
#include "llvm/IR/Module.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/ThreadPool.h"
#include "llvm/Support/Threading.h"
#include "llvm/Support/raw_ostream.h"

#include "mlir/Support/Timing.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <functional>
#include <cstdlib>
#include <ctime>
#include <regex>

#ifndef ATTN_DEFAULT_CUDA_HOME
#define ATTN_DEFAULT_CUDA_HOME "/usr/local/cuda"
#endif

using namespace mlir;

namespace attn {

// The fingerprint hashes the compiler's sources (lib/Target/CMakeLists.txt):
// any change to code generation changes the version, hence the JIT cache key.
const char *compilerVersion() { return "attn 0.1 (MLIR 22, " ATTN_COMPILER_FINGERPRINT ")"; }

namespace {

int64_t elementBytes(ElementType t) { return t == ElementType::F32 ? 4 : 2; }

/// Whether the Hopper kernel is known to spill with 128-key tiles, so that it
/// is built with 64-key tiles from the start instead of compiled twice (the
/// ptxas-driven retry below stays the safety net for whatever this misses).
/// With 128-key tiles and Dv = 128 a consumer thread holds 64 S accumulators,
/// 64 O accumulators and 32 packed P registers of the previous tile; a score
/// function that reads a tensor at the key index adds one load per distinct
/// key the thread holds (32 per tile, each with a 64-bit address), and ptxas
/// then spills under the consumers' 240-register budget. Measured
/// (2026-11-29, ptxas 13.0): `score + bias[h, k]`, `score * kb[k]` and
/// `score + kb[b, k]` (i32) spill 96-128 B with or without masks (examples/
/// custom.json, test/Target/Inputs/heavy_scores.json); a tensor read at q or h
/// only, a tensor read in the mask alone, custom masks, soft-cap and Dv = 64
/// (32 O accumulators) with `score + bias[h, k]` do not. Since session 14's
/// lighter epilogue heavy_scores.json fits 128-key tiles, and with the i32
/// key offsets of FragmentSoftmax::scores custom.json does too (124 B of
/// spills before); the rule still gives both 64-key tiles until an H200 call
/// says which is faster.
bool hopperKeyTileSpills(const Spec &spec) {
  return spec.headDimV == 128 && spec.scoreExpr &&
         exprReadsTensorAt(*spec.scoreExpr, ExprVar::K);
}

/// Whether the Hopper kernel runs persistent blocks unless asked: for a
/// plain causal mask at D = Dv = 64. There, in two H200 calls, the persistent
/// kernel ran +6-7% at S = 4k (391 vs 367 TFLOP/s; 0.684 vs 0.735 ms in the
/// tuning table) and equal at 16k; at D = 128 it lost causal 16k by 8% and
/// won nothing on the masked rows (bench/results/2026-12-02-persistent-l2/).
/// Also for block-sparse layouts of whole 128 x 128 tiles at D = Dv = 128
/// (the tile list's case): in two H200 calls of session 6 (bench/results/
/// 2026-12-03-v14-walk-poly/, 2026-12-03-v15-persistent-q2/) the persistent
/// kernel ran block-sparse 90% at 4k +12-13% (287 / 289 vs 258 / 256 TFLOP/s:
/// ~3 live tiles per q tile, where the one-item grid pays a block's start
/// and end per item), at 16k -2% / +4%, and 50% within 1%. Session 15 (bench/
/// results/2026-12-04-v27-session15/ c2): the grid with three K/V stages (which
/// only the one-item grid has room for at D = 128) won 90% at 16k by 3% (521.6
/// vs 506.8) and lost 4k by 12% (354.6 vs 402.3); window lost 3-5% there.
/// And at D = Dv = 128 for unmasked (dense) attention and sliding windows,
/// the other short-item shapes: in session 7's call (bench/results/
/// 2026-12-03-v17-item-overlap/) dense ran S = 1k / 4k / 16k 449 / 588 / 629
/// vs 418 / 577 / 608 TFLOP/s (v15: 4k / 16k 594 / 621 vs 602 / 615), the
/// window of 1024 keys 313 / 384 / 399 vs 303 / 374 / 391; causal D = 128
/// stays a one-item grid (16k 571 vs 618, 553 vs 607 in v15).
/// And for dense attention at D = Dv = 64, with 192-row tiles: in session 13's
/// call (bench/results/2026-12-03-v25-session13/ d1, twice each, interleaved)
/// 416.8 / 411.6, 496.1 / 489.5, 520.3 / 520.5 TFLOP/s at S = 1k / 4k / 16k
/// against the one-item grid's 372.2 / 367.9, 488.3 / 488.4, 515.7 / 516.0
/// (cuDNN 446.5 / 433.7 at 1k); with 128-row tiles persistence had won 1k and
/// lost 4k / 16k by 5-10% (session 12).
/// No score modifier and no mask beyond the diagonal, windows and block layouts.
bool hasPlainScores(const Spec &spec) {
  return !spec.documents && !spec.softcap && spec.alibi == AlibiShape::None && !spec.maskExpr &&
         !spec.scoreExpr;
}

bool hopperPersistent(const Spec &spec) {
  bool plainScores = hasPlainScores(spec);
  bool plain = plainScores && !spec.window;
  if (plain && !spec.blockSparse && spec.headDim == 64 && spec.headDimV == 64)
    return true; // causal and dense at D = 64
  if (spec.headDim != 128 || spec.headDimV != 128)
    return false;
  if (plain && !spec.causal && !spec.blockSparse)
    return true; // dense
  if (plainScores && spec.window && !spec.blockSparse)
    return true;
  return plain && !spec.causal && spec.blockSparse && spec.blockSparse->first % 128 == 0 &&
         spec.blockSparse->second % 128 == 0;
}

/// Whether the Hopper kernel takes its work items from a global counter
/// (persistent blocks; --dynamic-scheduler) unless asked: for plain causal
/// masks and documents at D = Dv = 128, whose items differ in length. In
/// session 9's H200 call (bench/results/2026-12-03-v21-softcap-dynsched/,
/// the three kernels in one call) causal ran S = 1k / 4k / 16k 412 / 567 / 633
/// TFLOP/s against 363 / 547 / 633 on the one-item grid and 395 / 520 / 566
/// with the static persistent order; documents 135 / 344 / 434 against
/// 116 / 324 / 433 and 134 / 324 / 388. ALiBi (causal) lost 15% at 4k and
/// 12% at 16k (420 / 500 vs 496 / 566) and stays on the grid.
bool hopperDynamicScheduler(const Spec &spec) {
  if (spec.headDim != 128 || spec.headDimV != 128 || spec.blockSparse || spec.window ||
      spec.softcap || spec.alibi != AlibiShape::None || spec.maskExpr || spec.scoreExpr)
    return false;
  return spec.documents || spec.causal;
}

/// Whether the persistent Hopper kernel runs cross-head tiles unless asked:
/// for dense attention at D = Dv = 64 (192-row tiles, 5 1/3 a head at
/// S = 1k). Session 20's same-round A/Bs on the H200 (bench/results/
/// 2026-12-04-v32-session20/ c3), 192-row tiles with them at every length
/// against the per-length default (128-row tiles below Sk = 2048): S = 1k /
/// 4k / 16k 445.0 / 490.3 / 502.5 TFLOP/s against 401.7 / 480.1 / 501.3 (+11 /
/// +2 / +0.2%; cuDNN 420.7 / 451.6 / 453.8). Elsewhere the k tiles depend on
/// the q tile (causal, windows), or D = 128's two K / V slots would not fit
/// the shared memory.
bool hopperCrossHeadTiles(const Spec &spec) {
  return hasPlainScores(spec) && !spec.causal && !spec.window && !spec.blockSparse &&
         spec.headDim == 64 && spec.headDimV == 64;
}

/// Whether the Hopper kernel takes half diagonal keys unless asked: for
/// plain causal attention. Session 21's same-round A/Bs on the H200
/// (bench/results/2026-12-04-v33-session21/ c1), with against without:
/// causal D = 64 1k / 4k / 16k 338.9 / 437.1 / 462.9 TFLOP/s against 326.6 /
/// 418.2 / 451.9 (+3.8 / +4.5 / +2.4%), D = 128 0.997 / 1.000 / 1.023. ALiBi
/// and soft-cap (causal) ran +2.4 / +0.1% at 4k but -0.9 / -2.6% at 16k, and
/// the persistent window kernel spills with them: off there.
bool hopperHalfDiagonalKeys(const Spec &spec) {
  return hasPlainScores(spec) && spec.causal && !spec.window && !spec.blockSparse &&
         !spec.documents;
}

/// Weights per 8 elements the Hopper kernel takes with the FMA-pipe
/// polynomial instead of MUFU.EX2 unless asked: none. In one H200 call
/// (bench/results/2026-12-03-v14-walk-poly/) 2 in 8 lost 8-13% on dense /
/// causal D = 64 and ALiBi and won 1-3% on soft-cap; 4 in 8 lost more
/// everywhere (dense D = 64 4k 458 -> 358 TFLOP/s): our softmax is bound by
/// issue slots, not by MUFU, so trading one MUFU for ten FMA-pipe
/// instructions does not pay. With soft-cap's tanh on one MUFU op (v21),
/// 2 in 8 still lost there (4k / 16k 446 / 506 vs 488 / 530 TFLOP/s).
/// `attn-compile --poly-exp2=N` keeps it available.
int64_t hopperPolyExp2(const Spec &) { return 0; }

/// The Hopper kernel's query rows: 192 (three consumer warpgroups, FA3's
/// head-dim-64 shape) at D = Dv = 64, where the softmax per FLOP doubles and a
/// third warpgroup's softmax keeps the tensor cores busy; 128 otherwise, and
/// for block-sparse layouts whose 128-row blocks a 192-row tile would straddle
/// (the kernel skips empty blocks only when its tile lies in one block row).
/// Persistent blocks keep 192 rows: with 128-key tiles their three consumer
/// warpgroups get 160 registers (32 for the producer; 40 / 152 with 64-key
/// tiles), and where that spills the compiler falls back to 128 rows.
int64_t hopperQueryTile(const Spec &spec) {
  bool narrow = spec.headDim == 64 && spec.headDimV == 64;
  // Causal and window masks: a 192-row tile's diagonal crosses two 128-key
  // tiles more often; on the H200 causal D = 64 ran 0.80x cuDNN at 4k with 192
  // rows, 0.87x with 128 (bench/results/2026-12-02-d64-shapes/).
  narrow = narrow && !spec.causal && !spec.window;
  bool layoutFits = !spec.blockSparse || spec.blockSparse->first % 192 == 0;
  return narrow && layoutFits ? 192 : 128;
}

/// The device module to PTX: MLIR's NVPTX serialization (gpu::CompilationTarget
/// ::Assembly of `#nvvm.target`: translate, link libdevice, optimize, NVPTX
/// codegen), except that the LLVM pipeline leaves out the SLP vectorizer.
/// MLIR's makeOptimizingTransformer forces SLPVectorization on; on these
/// kernels (long straight-line f32 code, which NVPTX has no vector registers
/// for before sm_100) it vectorizes nothing: with it disabled all 13 examples'
/// PTX is byte-identical on sm_80 and sm_90a (checked with `cmp`, 2026-11-29,
/// and by test/Target/nvvm-pipeline.test against the upstream pipeline),
/// while it took 20 ms (causal) to 280 ms (softcap: 128 inlined tanhf) of
/// LLVM opt.
class PtxSerializer : public NVVM::SerializeGPUModuleBase {
public:
  using SerializeGPUModuleBase::SerializeGPUModuleBase;

  /// Asks for which parameters of the kernel `entry` the optimized LLVM IR
  /// still uses (one flag per parameter, in order), read just before NVPTX
  /// codegen: a parameter without a use is never loaded by the PTX.
  void recordUsedParameters(std::string entry, std::vector<bool> *used) {
    usedEntry = std::move(entry);
    usedParameters = used;
  }

protected:
  LogicalResult optimizeModule(llvm::Module &module, int optLevel) override {
    FailureOr<llvm::TargetMachine *> targetMachine = getOrCreateTargetMachine();
    if (failed(targetMachine))
      return getOperation().emitError() << "no LLVM target machine for " << triple;
    if (optLevel < 0 || optLevel > 3)
      return getOperation().emitError() << "invalid optimization level " << optLevel;
    (*targetMachine)->setOptLevel(static_cast<llvm::CodeGenOptLevel>(optLevel));
    // makeOptimizingTransformer(optLevel, 0, targetMachine) but for SLP.
    llvm::LoopAnalysisManager lam;
    llvm::FunctionAnalysisManager fam;
    llvm::CGSCCAnalysisManager cgam;
    llvm::ModuleAnalysisManager mam;
    llvm::PipelineTuningOptions tuning;
    tuning.LoopUnrolling = true;
    tuning.LoopInterleaving = true;
    tuning.LoopVectorization = true;
    tuning.SLPVectorization = false;
    llvm::PassBuilder pb(*targetMachine, tuning);
    pb.registerModuleAnalyses(mam);
    pb.registerCGSCCAnalyses(cgam);
    pb.registerFunctionAnalyses(fam);
    pb.registerLoopAnalyses(lam);
    pb.crossRegisterProxies(lam, fam, cgam, mam);
    const llvm::OptimizationLevel levels[] = {
        llvm::OptimizationLevel::O0, llvm::OptimizationLevel::O1,
        llvm::OptimizationLevel::O2, llvm::OptimizationLevel::O3};
    llvm::ModulePassManager mpm;
    mpm.addPass(pb.buildPerModuleDefaultPipeline(levels[optLevel]));
    mpm.run(module, mam);
    return success();
  }

  FailureOr<SmallVector<char, 0>> moduleToObject(llvm::Module &llvmModule) override {
    FailureOr<llvm::TargetMachine *> targetMachine = getOrCreateTargetMachine();
    if (failed(targetMachine))
      return getOperation().emitError() << "no LLVM target machine for " << triple;
    if (usedParameters)
      if (llvm::Function *kernel = llvmModule.getFunction(usedEntry))
        for (llvm::Argument &parameter : kernel->args())
          usedParameters->push_back(!parameter.use_empty());
    FailureOr<SmallString<0>> ptx = translateModuleToISA(
        llvmModule, **targetMachine, [&] { return getOperation().emitError(); });
    if (failed(ptx))
      return failure();
    if (isaCallback)
      isaCallback(*ptx);
    return SmallVector<char, 0>(ptx->begin(), ptx->end());
  }

private:
  std::string usedEntry;
  std::vector<bool> *usedParameters = nullptr;
};

/// Tile sizes of the SIMT kernel: Q, K and V tiles must fit the 48 KiB of
/// static shared memory a block gets without opting in.
std::pair<int64_t, int64_t> chooseGpuTiles(const Spec &spec) {
  int64_t es = elementBytes(spec.dtype), budget = 48 * 1024;
  int64_t bq = 64, bk = 32;
  while (bq > 16 && bq * spec.headDim * es > budget / 2)
    bq /= 2;
  while (bk > 1 && bq * spec.headDim * es + bk * (spec.headDim + spec.headDimV) * es > budget)
    bk /= 2;
  return {bq, bk};
}

bool usesTensorCores(const Spec &spec, const GpuCompileOptions &options) {
  return options.tensorCores && spec.kind == VariantKind::Attention &&
         spec.dtype != ElementType::F32 && mmaSyncSoftmaxSupports(spec.headDim, spec.headDimV);
}

// The Hopper kernel (sm_90a: wgmma + TMA) covers head dims 64 and 128 with
// 128 x 128 tiles; elsewhere the mma.sync kernel's fixed tile: 4 warps x 16
// rows, 32 keys. Kernels outside either fall back inside the pass.
bool usesHopperKernel(const Spec &spec, const GpuCompileOptions &options) {
  return usesTensorCores(spec, options) && options.chip == "sm_90a" &&
         (spec.headDim == 64 || spec.headDim == 128) &&
         (spec.headDimV == 64 || spec.headDimV == 128);
}

double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

/// Records one stage into CompileTimings when timing is on (no-op otherwise).
class StageTimer {
public:
  explicit StageTimer(CompileTimings *timings) : timings(timings) { restart(); }
  void restart() {
    wall = std::chrono::steady_clock::now();
    cpu = threadCpuSeconds();
  }
  /// Ends the current stage under `name` and starts the next one.
  void lap(const std::string &name, double childCpuSeconds = 0) {
    if (!timings)
      return;
    auto now = std::chrono::steady_clock::now();
    double nowCpu = threadCpuSeconds();
    timings->stages.push_back({name, std::chrono::duration<double>(now - wall).count(),
                               nowCpu - cpu + childCpuSeconds});
    wall = now;
    cpu = nowCpu;
  }

private:
  CompileTimings *timings;
  std::chrono::steady_clock::time_point wall;
  double cpu = 0;
};

/// Runs `pm` on `module`, with MLIR's pass timing appended to the report
/// when timing is on.
LogicalResult runTimed(PassManager &pm, ModuleOp module, CompileTimings *timings) {
  if (!timings)
    return pm.run(module);
  std::string text;
  LogicalResult result = success();
  {
    llvm::raw_string_ostream os(text);
    DefaultTimingManager manager;
    manager.setEnabled(true);
    manager.setDisplayMode(DefaultTimingManager::DisplayMode::Tree);
    manager.setOutput(createOutputStrategy(DefaultTimingManager::OutputFormat::Text, os));
    TimingScope root = manager.getRootScope();
    pm.enableTiming(root);
    result = pm.run(module);
    root.stop();
    manager.print();
    manager.setEnabled(false); // printed; the destructor would print an empty report

  }
  timings->passReport += text;
  return result;
}

bool writeAtomically(const std::string &path, llvm::StringRef contents, std::string &error) {
  std::string tmp = path + ".tmp";
  std::error_code ec;
  {
    llvm::raw_fd_ostream os(tmp, ec);
    if (ec) {
      error = tmp + ": " + ec.message();
      return false;
    }
    os << contents;
    os.close();
    if (os.has_error()) {
      error = tmp + ": write failed";
      llvm::sys::fs::remove(tmp);
      return false;
    }
  }
  if ((ec = llvm::sys::fs::rename(tmp, path))) {
    error = path + ": " + ec.message();
    llvm::sys::fs::remove(tmp);
    return false;
  }
  return true;
}

bool runPtxas(const std::string &cudaHome, const std::string &chip, const std::string &ptx,
              const std::string &cubin, PtxasReport &report, std::string &error,
              double *childCpuSeconds = nullptr) {
  auto ptxas = llvm::sys::findProgramByName("ptxas", {cudaHome + "/bin"});
  if (!ptxas) {
    error = "ptxas not found in " + cudaHome + "/bin (set CUDA_HOME)";
    return false;
  }
  llvm::SmallString<128> logPath;
  llvm::sys::fs::createTemporaryFile("attn-ptxas", "log", logPath);
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, llvm::StringRef(logPath),
                                                llvm::StringRef(logPath)};
  std::string arch = "-arch=" + chip;
  llvm::SmallVector<llvm::StringRef> args = {*ptxas, arch, "-v", ptx, "-o", cubin};
  std::string message;
  std::optional<llvm::sys::ProcessStatistics> stats;
  int rc = llvm::sys::ExecuteAndWait(*ptxas, args, std::nullopt, redirects, 0, 0, &message,
                                     nullptr, &stats);
  if (childCpuSeconds && stats)
    *childCpuSeconds = std::chrono::duration<double>(stats->TotalTime).count();
  auto log = llvm::MemoryBuffer::getFile(logPath);
  report.log = log ? (*log)->getBuffer().str() : "";
  llvm::sys::fs::remove(logPath);
  report.ran = true;
  if (rc != 0) {
    error = "ptxas failed (" + std::to_string(rc) + "): " + message + report.log;
    return false;
  }
  std::smatch m;
  std::regex frame(R"((\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads)");
  std::regex regs(R"(Used (\d+) registers)"), smem(R"((\d+) bytes smem)");
  if (std::regex_search(report.log, m, frame)) {
    report.stackFrameBytes = std::stoi(m[1]);
    report.spillStoreBytes = std::stoi(m[2]);
    report.spillLoadBytes = std::stoi(m[3]);
  }
  if (std::regex_search(report.log, m, regs))
    report.registers = std::stoi(m[1]);
  if (std::regex_search(report.log, m, smem))
    report.sharedMemoryBytes = std::stoi(m[1]);
  std::regex serialized(R"(\((C75\d\d)\) Potential Performance Loss: (wgmma[^\n]*serialized[^\n]*?)(?: in the function '[^']*')?\s*\n)");
  if (std::regex_search(report.log, m, serialized)) {
    report.wgmmaSerialized = true;
    report.wgmmaSerializedWhy = m[1].str() + ": " + m[2].str();
  }
  return true;
}

} // namespace

namespace {
bool compileKernel(const Spec &spec, const std::string &specPath,
                   const GpuCompileOptions &options, const std::string &outDir,
                   const std::vector<KernelManifest::SeqVariant> &dispatch,
                   KernelManifest &manifest, PtxasReport &report, std::string &error);

} // namespace

std::optional<SeqDispatchPlan> seqDispatchPlan(const Spec &spec, const std::string &chip) {
  if (chip != "sm_90a" || spec.kind != VariantKind::Attention ||
      (spec.dtype != ElementType::BF16 && spec.dtype != ElementType::F16))
    return std::nullopt;
  // Block-sparse layouts of whole 128 x 128 tiles at D = 128 (persistent by
  // default): at S = 16k the one-item grid with three K/V stages (room for
  // which only the grid has) ran block-sparse 90% +2.1% / +2.9% (session 15)
  // and +2.0% (session 16: 522.0 / 517.0 against 507.0 / 513.3 TFLOP/s
  // through this dispatch), block-sparse 50% +0.7-0.8%, and lost 4k by 12%;
  // 8k is unmeasured, hence 16k (bench/results/2026-12-04-v27-session15/,
  // 2026-12-04-v28-session16/).
  if (hopperPersistent(spec) && spec.blockSparse && !spec.causal && !spec.window &&
      spec.headDim == 128)
    return SeqDispatchPlan{nullptr,
                           {{16384, [](GpuCompileOptions &o) {
                               o.persistent = false;
                               o.dynamicScheduler = false;
                               o.kvStages = 3;
                             }}}};
  // (Dense at D = Dv = 64 had 128-row tiles below Sk = 2048, where the last
  // 192-row q tile of a head was a third full, until session 20's cross-head
  // tiles, which beat them at 1k by 11%: one kernel since; hopperCrossHeadTiles.)
  // Documents (persistent at D = 128): the per-block tile summary and walk
  // starts for Sk >= 16384. Session 17, two interleaved runs each
  // (bench/results/2026-12-04-v29-session17/): at 16k 485.6 / 494.8 TFLOP/s
  // against 466.0 / 488.7 without (+2.6% on the means; walks started at the
  // known document starts, the ceiling, ran +6.7%), at 4k 378.7 / 375.9
  // against 389.2 / 389.9 (-3%: the block-start work, ~1 us a round, is a
  // larger share of a 0.55 ms launch than the dead rounds it saves).
  // The item order (longer half of every pair's q tiles first) likewise from
  // Sk = 16384 unless asked either way. Session 19, same-round A/Bs
  // (bench.py --ab-kernels, bench/results/2026-12-04-v31-session19/): at 16k
  // +3.5 / +5.9 / +5.8 / +1.4% against the q-tile-descending order or its
  // one-phase form, at 4k 1.000 / 0.990 / 0.987 / 0.992 (the model's 4k tail
  // did not show; each pair's K / V read in both phases).
  if (spec.documents && hopperDynamicScheduler(spec))
    return SeqDispatchPlan{[](GpuCompileOptions &o) {
                             o.documentTileSummary = false;
                             if (!o.documentItemOrder.has_value())
                               o.documentItemOrder = false;
                           },
                           {{16384, [](GpuCompileOptions &o) {
                               o.documentTileSummary = true;
                               if (!o.documentItemOrder.has_value())
                                 o.documentItemOrder = true;
                             }}}};
  // Plain causal at D = Dv = 64 (persistent, static order): from Sk = 4096
  // the dynamic scheduler's global counter, as causal at D = 128. Session 18
  // (bench/results/2026-12-04-v30-session18/c4, two interleaved runs each):
  // 4k 417.0 / 424.4 TFLOP/s against 411.5 / 411.3 (+2.3%), 1k 326.2 / 325.8
  // against 328.2 / 327.8 (-0.6%, so not below 4k); through this dispatch
  // (c5) 4k 427.4 / 421.1 against 421.4 / 414.6 (+1.5%), 16k 454.3 / 452.8
  // against 450.0 / 451.1 (+0.4%).
  if (hasPlainScores(spec) && spec.causal && !spec.window && !spec.blockSparse &&
      spec.headDim == 64 && spec.headDimV == 64)
    return SeqDispatchPlan{nullptr,
                           {{4096, [](GpuCompileOptions &o) { o.dynamicScheduler = true; }}}};
  return std::nullopt;
}

namespace {
/// A tile option of the spec ("options": {"block_q": ...}), 0 if absent.
int64_t specTileOption(const Spec &spec, const char *key) {
  auto it = spec.options.find(key);
  return it != spec.options.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}
} // namespace

bool compileSpecForGpu(const Spec &spec, const std::string &specPath,
                       const GpuCompileOptions &requested, const std::string &outDir,
                       KernelManifest &manifest, PtxasReport &report,
                       std::string &error) {
  // The spec's tile options stand where --block-q / --block-k are not given
  // (as in attn-plan-tiles): tiles fixed either way, no per-length kernels.
  GpuCompileOptions options = requested;
  if (options.blockQ <= 0)
    options.blockQ = specTileOption(spec, "block_q");
  if (options.blockK <= 0)
    options.blockK = specTileOption(spec, "block_k");
  std::vector<KernelManifest::SeqVariant> dispatch;
  std::optional<SeqDispatchPlan> plan;
  if (options.seqDispatch && options.tuningGroup.empty() && options.blockQ == 0 &&
      options.blockK == 0 && !options.persistent.has_value() &&
      !options.dynamicScheduler.has_value() && !options.kvStages.has_value() &&
      !options.documentTileSummary.has_value() &&
      usesHopperKernel(spec, options))
    plan = seqDispatchPlan(spec, options.chip);
  GpuCompileOptions baseOptions = options;
  if (!plan)
    return compileKernel(spec, specPath, baseOptions, outDir, dispatch, manifest, report, error);

  nlohmann::ordered_json renamed =
      nlohmann::ordered_json::parse(spec.canonicalJson, nullptr, false);
  if (!renamed.is_object()) {
    error = "internal error: the canonical spec is not a JSON object";
    return false;
  }
  // Each variant: the same spec under its own name (its files and entry),
  // compiled with the plan's options. Their names are known before any is
  // built, so the base kernel's manifest can list them up front.
  struct VariantBuild {
    Spec spec;
    GpuCompileOptions options;
    int64_t minSeqK = 0;
    KernelManifest manifest;
    PtxasReport report;
    std::string error;
    bool ok = false;
  };
  std::vector<VariantBuild> variants(plan->variants.size());
  for (size_t i = 0; i < plan->variants.size(); ++i) {
    const SeqDispatchPlan::Variant &v = plan->variants[i];
    VariantBuild &b = variants[i];
    std::string variantName = spec.name + "_sk" + std::to_string(v.minSeqK);
    renamed["name"] = variantName;
    if (!parseSpec(renamed.dump(), b.spec, error)) {
      error = "internal error: the renamed spec does not parse: " + error;
      return false;
    }
    b.options = options;
    v.apply(b.options);
    b.options.timings = nullptr;
    b.minSeqK = v.minSeqK;
    dispatch.push_back({v.minSeqK, variantName + ".json"});
  }
  if (plan->base)
    plan->base(baseOptions);
  // The variants build on the pool's threads while this one builds the base
  // kernel: each build has its own MLIRContext and output files, and most of
  // a build's time is ptxas (a child process), so a spec with one variant
  // compiles in about the time of its slower kernel instead of the sum (the
  // JIT's first-use latency; attn-compile's specs already run in parallel).
  {
    llvm::DefaultThreadPool pool(llvm::hardware_concurrency(unsigned(variants.size())));
    for (VariantBuild &b : variants)
      pool.async([&b, &specPath, &outDir] {
        b.ok = compileKernel(b.spec, specPath, b.options, outDir, {}, b.manifest, b.report,
                             b.error);
      });
    bool baseOk =
        compileKernel(spec, specPath, baseOptions, outDir, dispatch, manifest, report, error);
    pool.wait();
    for (const VariantBuild &b : variants)
      if (!b.ok) {
        error = spec.name + ": its kernel for Sk >= " + std::to_string(b.minSeqK) +
                " (--seq-dispatch): " + b.error;
        return false;
      }
    return baseOk;
  }
}

namespace {
bool compileKernel(const Spec &spec, const std::string &specPath,
                   const GpuCompileOptions &options, const std::string &outDir,
                   const std::vector<KernelManifest::SeqVariant> &dispatch,
                   KernelManifest &manifest, PtxasReport &report, std::string &error) {
  if (options.chip != "sm_80" && options.chip != "sm_90a" && options.chip != "sm_90") {
    error = "unsupported chip '" + options.chip + "' (expected sm_80, sm_90 or sm_90a)";
    return false;
  }
  // Past this the SIMT kernels' unrolled rows would take minutes to build
  // and spill everything (a spec's head dims are otherwise unbounded: the
  // CPU path takes any).
  for (auto [key, dim] : {std::pair<const char *, int64_t>{"head_dim", spec.headDim},
                          {"head_dim_v", spec.headDimV}})
    if (dim > kMaxGpuHeadDim) {
      error = specPath + ": shape." + key + " = " + std::to_string(dim) +
              ": the GPU kernels take head dims up to " + std::to_string(kMaxGpuHeadDim) +
              " (tensor cores up to 256)";
      return false;
    }
  std::string cudaHome = options.cudaHome;
  if (cudaHome.empty())
    cudaHome = std::getenv("CUDA_HOME") ? std::getenv("CUDA_HOME") : ATTN_DEFAULT_CUDA_HOME;

  CompileTimings *timings = options.timings;
  StageTimer timer(timings);
  CompilerContext compiler;
  MLIRContext &context = compiler.get();
  timer.lap("context");
  std::string pipelineErrors;
  llvm::raw_string_ostream diagStream(pipelineErrors);

  auto [heuristicQ, heuristicK] = chooseGpuTiles(spec);
  // The dynamic scheduler (asked for, or by its heuristic) brings persistent
  // blocks with it; --dynamic-scheduler=false or --persistent=false give the
  // one-item grid (unless the spec's default is static persistent blocks),
  // --persistent alone the static order.
  bool dynamicByDefault = hopperDynamicScheduler(spec);
  bool persistent = options.persistent.value_or(
      hopperPersistent(spec) || options.dynamicScheduler.value_or(dynamicByDefault));
  bool dynamicScheduler =
      persistent && options.dynamicScheduler.value_or(dynamicByDefault &&
                                                       !options.persistent.has_value());
  bool tensorCores = usesTensorCores(spec, options);
  bool hopper = usesHopperKernel(spec, options);
  bool crossHeadTiles = persistent && options.crossHeadTiles.value_or(hopperCrossHeadTiles(spec));
  // Cleared (and the kernel rebuilt) where the uniform warpgroup index spills.
  bool uniformWarpgroupIndex = options.uniformWarpgroupIndex;
  // Cleared (and the kernel rebuilt) where the half diagonal keys spill.
  bool halfDiagonalKeys = options.halfDiagonalKeys.value_or(hopperHalfDiagonalKeys(spec));
  if (hopper)
    std::tie(heuristicQ, heuristicK) =
        std::make_pair(hopperQueryTile(spec), hopperKeyTileSpills(spec) ? int64_t(64) : int64_t(128));
  else if (tensorCores)
    std::tie(heuristicQ, heuristicK) = std::make_pair(int64_t(64), int64_t(32));
  int64_t bq = options.blockQ > 0 ? options.blockQ : heuristicQ;
  int64_t bk = options.blockK > 0 ? options.blockK : heuristicK;
  // One attempt: the spec's kernel with (bq, bk) tiles, lowered to PTX.
  bool linearKind = spec.kind != VariantKind::Attention;
  struct Generated {
    std::string ptx, kind = "simt";
    int64_t threads = 0, dynamicShared = 0, gridX = 1;
    bool persistent = false;
    bool tileCounter = false; // the dynamic scheduler's counter argument
    bool crossHeadTiles = false;
    bool halfDiagonalKeys = false;
    std::vector<TensorMapArgument> tensorMaps;
    // Per kernel argument, the number of PTX parameters it takes (a memref
    // descriptor: 3 + 2 * rank), and per parameter whether the optimized
    // kernel uses it (empty where not recorded: the upstream pipeline).
    std::vector<int64_t> argumentParameters;
    std::vector<bool> usedParameters;
  };
  // Item overlap (experimental, off unless asked) carries an item's O and P
  // into the next item. Measured on the H200 at D = 64 (bench/results/
  // 2026-12-03-v17-item-overlap/): 2-5% slower than draining at every item
  // (dense 1k / 4k / 16k 343 / 427 / 446 vs 360 / 439 / 461 TFLOP/s); at
  // D = 128 (64 O registers) it spills under the persistent consumers' 232
  // registers (causal 152 B, window 172, ALiBi 164, dense 20, block-sparse 4).
  bool itemOverlap = persistent && options.itemOverlap.value_or(false);
  // Ping-pong unless asked otherwise: on for 128-row tiles; off for 192-row
  // ones, where three groups taking turns ran slower on the H200 (dense D = 64
  // 1.07x cuDNN at 16k with, 1.12x without; bench/results/2026-12-02-d64-shapes/).
  auto hopperOptions = [&](int64_t bq) {
    bool pingPong = options.pingPong.value_or(bq != 192);
    return std::string("{tensor-cores=1 wgmma=1") +
           (options.documentTiles ? " document-tiles=1" : "") +
           (options.documentTiles && options.documentIdsInShared ? " document-ids-in-shared=1"
                                                                  : "") +
           (options.documentTiles && options.documentTileSummary.value_or(false)
                ? " document-tile-summary=1 document-tile-summary-entries=" +
                      std::to_string(options.documentTileSummaryEntries) +
                      " document-tile-summary-unroll=" +
                      std::to_string(options.documentTileSummaryUnroll)
                : "") +
           (options.stagedOutputStore ? " staged-output-store=1" : "") +
           (options.stagedOutputStore && options.earlyOutputRelease ? " early-output-release=1"
                                                                     : "") +
           (options.documentTiles && options.documentItemOrder.value_or(true)
                ? " document-item-order=1 document-item-order-entries=" +
                      std::to_string(options.documentItemOrderEntries) +
                      " document-item-order-phases=" +
                      std::to_string(options.documentItemOrderPhases)
                : "") +
           (pingPong ? " ping-pong=1" : "") +
           (persistent ? " persistent=1" : "") +
           (crossHeadTiles ? " cross-head-tiles=1" : "") +
           (uniformWarpgroupIndex ? " uniform-warpgroup-index=1" : "") +
           (halfDiagonalKeys ? " half-diagonal-keys=1" : "") +
           (itemOverlap ? " item-overlap=1" : "") +
           (dynamicScheduler ? " dynamic-scheduler=1" : "") +
           (options.lazyRescale ? " lazy-rescale=1" : "") + " poly-exp2=" +
           std::to_string(options.polyExp2Eighths.value_or(hopperPolyExp2(spec))) +
           " kv-stages=" + std::to_string(options.kvStages.value_or(2)) + "}";
  };
  // The Hopper chunkwise linear kernel (experimental): sm_90a only; the pass
  // falls back to the mma.sync kernel for what it does not cover.
  std::string linearWgmma =
      options.chunkedLinearWgmma && options.chip == "sm_90a"
          ? std::string(" chunked-linear-wgmma=1") +
                (options.chunkedLinearWgmmaOverlap ? " chunked-linear-wgmma-overlap=1" : "") +
                (options.chunkedLinearWgmmaVector ? " chunked-linear-wgmma-vector=1" : "") +
                (options.chunkedLinearProducerDiagonal ? " chunked-linear-producer-diagonal=1"
                                                       : "") +
                (options.chunkedLinearTwoConsumers ? " chunked-linear-two-consumers=1" : "") +
                (options.chunkedLinearSplitState ? " chunked-linear-split-state=1" : "") +
                (options.chunkedLinearProducerKScale ? " chunked-linear-producer-k-scale=1" : "")
          : "";
  auto generate = [&](int64_t bq, int64_t bk, Generated &g) {
    std::string suffix = " (" + std::to_string(bq) + "x" + std::to_string(bk) + ")";
    timer.restart();
    OwningOpRef<ModuleOp> module = buildSpecModule(context, spec, specPath, /*forceLse=*/true);
    timer.lap("build attn IR" + suffix);
    // Parses and runs one textual pipeline on the module; on failure, `error`
    // says which step failed and why.
    auto runPipeline = [&](const std::string &pipeline, const std::string &step) {
      PassManager pm(&context);
      if (succeeded(parsePassPipeline(pipeline, pm, diagStream)) &&
          succeeded(runTimed(pm, *module, timings)))
        return true;
      error = step + " failed: " + compiler.diagnostics() + pipelineErrors;
      return false;
    };
    std::string lowerOptions =
        hopper ? hopperOptions(bq)
        : tensorCores ? (options.cpAsync ? "{tensor-cores=1 cp-async=1}" : "{tensor-cores=1}")
        : linearKind && options.chunkedLinear
            ? (options.chunkedLinearPrefetch
                   ? "{chunked-linear=1 chunked-linear-prefetch=1" + linearWgmma + "}"
                   : "{chunked-linear=1" + linearWgmma + "}")
            : "";
    if (options.fastTanh)
      lowerOptions = lowerOptions.empty()
                         ? "{fast-tanh=1}"
                         : lowerOptions.substr(0, lowerOptions.size() - 1) + " fast-tanh=1}";
    std::string stage1 = "attn-normalize-masks,attn-plan-tiles{block-q=" + std::to_string(bq) +
                         " block-k=" + std::to_string(bk) + "},attn-lower-to-gpu-kernels" +
                         lowerOptions;
    if (!runPipeline(stage1, "generating the GPU kernel for " + specPath))
      return false;
    module->walk([&](gpu::GPUFuncOp f) {
      if (auto t = f->getAttrOfType<IntegerAttr>("attn.block_threads"))
        g.threads = t.getInt();
      if (auto t = f->getAttrOfType<IntegerAttr>("attn.dynamic_shared_memory"))
        g.dynamicShared = t.getInt();
      g.persistent |= f->hasAttr("attn.persistent");
      g.tileCounter |= f->hasAttr("attn.tile_counter");
      g.crossHeadTiles |= f->hasAttr("attn.cross_head_tiles");
      g.halfDiagonalKeys |= f->hasAttr("attn.half_diagonal_keys");
      if (auto t = f->getAttrOfType<IntegerAttr>("attn.grid_x"))
        g.gridX = t.getInt();
      if (auto kind = f->getAttrOfType<StringAttr>("attn.tensor_cores"))
        g.kind = kind.getValue().str();
      else if (f->hasAttr("attn.tensor_cores"))
        g.kind = "mma.sync";
      if (f.isKernel())
        for (Type t : f.getArgumentTypes())
          g.argumentParameters.push_back(
              isa<MemRefType>(t) ? 3 + 2 * cast<MemRefType>(t).getRank() : 1);
      if (auto maps = f->getAttrOfType<ArrayAttr>("attn.tensor_maps"))
        for (auto entry : maps.getAsRange<DictionaryAttr>()) {
          auto get = [&](StringRef key) { return cast<IntegerAttr>(entry.get(key)).getInt(); };
          g.tensorMaps.push_back(
              {get("argument"), get("box_cols"), get("box_rows"), get("swizzle")});
        }
    });
    timer.lap("attn passes -> gpu kernel" + suffix);
    if (g.threads <= 0 || g.threads > 1024) {
      error = "internal error: the kernel's block size (" + std::to_string(g.threads) +
              ") is not in [1, 1024]";
      return false;
    }
    // gpu-lower-to-nvvm-pipeline{cubin-chip=<chip> cubin-features=+ptx80
    // cubin-format=isa opt-level=3}, spelled out (MLIR 22.1's expansion, the
    // same passes with the same options) up to the device module's lowering;
    // its host passes (gpu-to-llvm and the clean-up after serialization) are
    // left out: the module holds only the gpu.module. Also left out, the PTX
    // staying byte-identical (all examples and test/gpu/specs, sm_80 and
    // sm_90a, 2026-11-29): gpu-kernel-outlining (the kernels are gpu.funcs
    // already; there is no gpu.launch) and the canonicalize,cse after
    // convert-gpu-to-nvvm (~8-10 ms; the ones before it are load-bearing:
    // without them alibi's and block_sparse's PTX changes). The device module
    // is then serialized directly (PtxSerializer), which lets the stages inside
    // (translation, libdevice linking, LLVM opt, NVPTX codegen) be timed.
    timer.restart();
    if (options.upstreamNvvmPipeline) {
      // The reference: upstream's pipeline as one textual pass (host passes
      // included); the lit test test/Target/nvvm-pipeline.test checks that the
      // PTX is byte-identical to the spelled-out version below.
      std::string pipeline = "gpu-lower-to-nvvm-pipeline{cubin-chip=" + options.chip +
                             " cubin-features=+ptx80 cubin-format=isa opt-level=3}";
      if (!runPipeline(pipeline, "lowering the kernel of " + specPath + " to PTX"))
        return false;
      timer.lap("gpu-lower-to-nvvm-pipeline (upstream)" + suffix);
    } else {
      std::string stage2 =
          "convert-nvgpu-to-nvvm,convert-vector-to-scf,convert-scf-to-cf,"
          "convert-nvvm-to-llvm,convert-func-to-llvm,expand-strided-metadata,"
          "nvvm-attach-target{O=3 chip=" + options.chip + " features=+ptx80},lower-affine,"
          "convert-arith-to-llvm,convert-index-to-llvm{index-bitwidth=64},canonicalize,cse,"
          "gpu.module(convert-gpu-to-nvvm{index-bitwidth=64},reconcile-unrealized-casts)";
      if (!runPipeline(stage2, "lowering the kernel of " + specPath + " to NVVM"))
        return false;
      timer.lap("lower to NVVM (MLIR passes)" + suffix);
      auto lap = [&](const char *what) {
        return [&timer, what, suffix](auto &&...) { timer.lap(what + suffix); };
      };
      auto afterTranslate = lap("translate to LLVM IR");
      auto afterLink = lap("link libdevice");
      auto afterOpt = lap("LLVM opt (O3)");
      auto afterCodegen = lap("NVPTX codegen");
      std::function<void(llvm::Module &)> initialCb = afterTranslate, linkedCb = afterLink,
                                           optimizedCb = afterOpt;
      std::function<void(StringRef)> isaCb = afterCodegen;
      gpu::TargetOptions targetOptions(
          /*toolkitPath=*/{}, /*librariesToLink=*/{}, /*cmdOptions=*/{}, /*elfSection=*/{},
          gpu::CompilationTarget::Assembly, /*getSymbolTableCallback=*/{},
          timings ? function_ref<void(llvm::Module &)>(initialCb) : nullptr,
          timings ? function_ref<void(llvm::Module &)>(linkedCb) : nullptr,
          timings ? function_ref<void(llvm::Module &)>(optimizedCb) : nullptr,
          timings ? function_ref<void(StringRef)>(isaCb) : nullptr);
      // The gpu.module and its #nvvm.target (nvvm-attach-target's).
      std::optional<SmallVector<char, 0>> ptx;
      module->walk([&](gpu::GPUModuleOp gpuModule) {
        ArrayAttr targets = gpuModule.getTargetsAttr();
        auto target = targets && targets.size() == 1
                          ? dyn_cast<NVVM::NVVMTargetAttr>(targets[0])
                          : NVVM::NVVMTargetAttr();
        if (!target || ptx)
          return;
        PtxSerializer serializer(*gpuModule, target, targetOptions);
        serializer.recordUsedParameters(spec.name, &g.usedParameters);
        serializer.init();
        ptx = serializer.run();
      });
      if (!ptx) {
        error = "lowering the kernel of " + specPath + " to PTX failed: " +
                compiler.diagnostics() + pipelineErrors;
        return false;
      }
      g.ptx.assign(ptx->begin(), ptx->end());
    }
    module->walk([&](gpu::BinaryOp binary) {
      for (Attribute object : binary.getObjects())
        if (auto obj = dyn_cast<gpu::ObjectAttr>(object))
          g.ptx = obj.getObject().str();
    });
    timer.lap("create gpu.binary" + suffix);
    if (g.ptx.empty()) {
      error = "internal error: no PTX was produced for " + specPath;
      return false;
    }
    return true;
  };

  std::error_code ec = llvm::sys::fs::create_directories(outDir);
  if (ec) {
    error = outDir + ": " + ec.message();
    return false;
  }
  std::string ptxName = spec.name + ".ptx", cubinName = spec.name + ".cubin";
  std::string ptxPath = outDir + "/" + ptxName, cubinTmp = outDir + "/" + cubinName + ".tmp";
  auto spills = [&] {
    return report.stackFrameBytes || report.spillStoreBytes || report.spillLoadBytes;
  };
  // Hopper kernels always go through ptxas: where 128-key tiles spill (the
  // per-element code of score modifiers and run-time masks on 64 S values
  // per thread), the kernel is rebuilt with 64-key tiles.
  bool assemble = options.cubin || hopper || options.alwaysAssemble;
  Generated gen;
  auto writeAndAssemble = [&](bool run) {
    std::string suffix = " (" + std::to_string(bq) + "x" + std::to_string(bk) + ")";
    timer.restart();
    if (!writeAtomically(ptxPath, gen.ptx, error))
      return false;
    timer.lap("write .ptx" + suffix);
    if (!run)
      return true;
    double childCpu = 0;
    if (!runPtxas(cudaHome, options.chip, ptxPath, cubinTmp, report, error, &childCpu))
      return false;
    timer.lap("ptxas" + suffix, childCpu);
    return true;
  };
  if (!generate(bq, bk, gen) || !writeAndAssemble(assemble))
    return false;
  // The heuristic's shape spills: fewer query rows first (192-row tiles run
  // their consumers on 160 registers, 152 when persistent), then 64-key tiles.
  auto regenerate = [&] {
    gen = Generated();
    report = PtxasReport();
    return generate(bq, bk, gen) && writeAndAssemble(true);
  };
  if (hopper && options.blockQ <= 0 && bq == 192 && spills()) {
    bq = 128;
    if (!regenerate())
      return false;
  }
  // The uniform warpgroup index moves the descriptors into uniform
  // registers, which mostly saves registers (the heavy-score test specs fit
  // 64-key tiles only with it) but can cost a few (the persistent window
  // kernel spilled 32 B with 128-key tiles): each tile shape is tried with
  // it, then without.
  auto withoutUniformIndexIfSpilling = [&] {
    if (!hopper || !uniformWarpgroupIndex || !spills())
      return true;
    uniformWarpgroupIndex = false;
    return regenerate();
  };
  // The half diagonal keys add a copy of the softmax and of both products
  // for one tile: dropped first where they spill (they only apply to
  // 128-key tiles).
  auto withoutHalfDiagonalIfSpilling = [&] {
    if (!hopper || !gen.halfDiagonalKeys || !spills())
      return true;
    halfDiagonalKeys = false;
    return regenerate();
  };
  if (!withoutHalfDiagonalIfSpilling() || !withoutUniformIndexIfSpilling())
    return false;
  if (hopper && options.blockK <= 0 && bk == 128 && spills()) {
    bk = 64;
    uniformWarpgroupIndex = options.uniformWarpgroupIndex;
    if (!regenerate() || !withoutUniformIndexIfSpilling())
      return false;
  }
  timer.restart();
  if (!options.cubin) {
    llvm::sys::fs::remove(cubinTmp);
    cubinName.clear();
  } else {
    if ((ec = llvm::sys::fs::rename(cubinTmp, outDir + "/" + cubinName))) {
      error = outDir + "/" + cubinName + ": " + ec.message();
      return false;
    }
    if (options.failOnSpills && spills()) {
      error = spec.name + " (" + options.chip + "): ptxas reports " +
              std::to_string(report.stackFrameBytes) + " bytes stack frame, " +
              std::to_string(report.spillStoreBytes) + " bytes spill stores, " +
              std::to_string(report.spillLoadBytes) + " bytes spill loads";
      return false;
    }
  }
  const std::string &ptx = gen.ptx;
  int64_t threads = gen.threads;

  manifest.name = manifest.entry = spec.name;
  manifest.chip = options.chip;
  manifest.ptxFile = ptxName;
  manifest.cubinFile = cubinName;
  manifest.block = {threads, 1, 1};
  if (spec.kind == VariantKind::Attention)
    manifest.grid = {GridTerm{"Sq", bq, 1}, GridTerm{"Hq", 1, 1}, GridTerm{"B", 1, 1}};
  else
    // Linear kinds: one block per (value-column block, head, batch); the
    // recurrent kernel has one column block, the chunkwise one Dv / 64.
    manifest.grid = {GridTerm{"", 1, gen.gridX}, GridTerm{"Hq", 1, 1}, GridTerm{"B", 1, 1}};
  manifest.dynamicSharedMemory = gen.dynamicShared;
  // The Hopper kernel's shared memory holds one block per SM.
  manifest.persistentBlocksPerSm = gen.persistent ? 1 : 0;
  report.kernel = gen.kind;
  report.blockQ = bq;
  report.blockK = bk;
  report.crossHeadTiles = gen.crossHeadTiles;
  report.halfDiagonalKeys = gen.halfDiagonalKeys;
  report.uniformWarpgroupIndex = hopper && uniformWarpgroupIndex;
  manifest.tensorMaps = gen.tensorMaps;
  markAnyStrides(gen.argumentParameters, gen.usedParameters, manifest.tensorMaps);
  manifest.argumentRoles = argumentRoles(spec, /*withLse=*/true);
  // The dynamic scheduler's counter: the kernel's argument after the spec's
  // tensors (an int32 tensor of one element, zeroed before every launch).
  if (gen.tileCounter)
    manifest.argumentRoles.push_back("tile_counter");
  auto hash = llvm::SHA256::hash(llvm::arrayRefFromStringRef(ptx));
  manifest.sha256 = llvm::toHex(hash, /*LowerCase=*/true);
  manifest.directory = outDir;
  manifest.tuningGroup = options.tuningGroup;
  manifest.tuningCandidate = options.tuningCandidate;
  manifest.tuningOptions = options.tuningOptionsJson;
  manifest.dispatch = dispatch;
  // Self-contained, like a manifest read from disk: the spec it was built from.
  manifest.spec = std::make_unique<Spec>();
  if (!parseSpec(spec.canonicalJson, *manifest.spec, error)) {
    error = "internal error: the canonical spec does not parse: " + error;
    return false;
  }

  std::string extra = "{\"compiler\": \"" + std::string(compilerVersion()) +
                      "\", \"kernel\": \"" + gen.kind +
                      "\", \"tiles\": {\"block_q\": " + std::to_string(bq) +
                      ", \"block_k\": " + std::to_string(bk) + "}";
  // The Hopper kernel's techniques that the spec or a fallback decides.
  if (gen.kind == "wgmma")
    extra += std::string(", \"wgmma\": {\"cross_head_tiles\": ") +
             (report.crossHeadTiles ? "true" : "false") + ", \"uniform_warpgroup_index\": " +
             (report.uniformWarpgroupIndex ? "true" : "false") + ", \"half_diagonal_keys\": " +
             (report.halfDiagonalKeys ? "true" : "false") + "}";
  if (report.ran)
    extra += ", \"ptxas\": {\"registers\": " + std::to_string(report.registers) +
             ", \"stack_frame_bytes\": " + std::to_string(report.stackFrameBytes) +
             ", \"spill_store_bytes\": " + std::to_string(report.spillStoreBytes) +
             ", \"spill_load_bytes\": " + std::to_string(report.spillLoadBytes) +
             ", \"shared_memory_bytes\": " + std::to_string(report.sharedMemoryBytes) +
             ", \"wgmma_serialized\": " + (report.wgmmaSerialized ? "true" : "false") + "}";
  extra += "}";
  bool written = writeAtomically(outDir + "/" + spec.name + ".json",
                                 manifest.toJson(spec.canonicalJson, extra), error);
  timer.lap("cubin rename + manifest");
  return written;
}
} // namespace

//===----------------------------------------------------------------------===//
// Tuning candidates
//===----------------------------------------------------------------------===//

std::string tuningGroupId(const Spec &spec, const std::string &chip) {
  std::string text = spec.canonicalJson + "\n" + compilerVersion() + "\n" + chip + "\n";
  return llvm::toHex(llvm::SHA256::hash(llvm::arrayRefFromStringRef(text)), true).substr(0, 16);
}

std::vector<TuningCandidateOptions> tuningCandidates(const Spec &spec,
                                                     const GpuCompileOptions &base) {
  std::vector<TuningCandidateOptions> out;
  auto add = [&](std::string tag, GpuCompileOptions o, std::string json) {
    o.blockQ = o.blockQ > 0 ? o.blockQ : 0;
    out.push_back({std::move(tag), std::move(o), std::move(json)});
  };
  auto flag = [](bool b) { return b ? "true" : "false"; };
  if (usesHopperKernel(spec, base)) {
    // 128-key tiles halve the barriers per key, 64-key tiles halve the S
    // registers; ping-pong trades tensor-core overlap against softmax
    // overlap; persistent blocks trade launch tails against scheduling; at
    // D = 64, 192-row tiles (three consumer warpgroups) against 128 (with
    // 128-key tiles only: 64-key tiles lost every group by 25-40% on the H200).
    std::vector<std::pair<int64_t, int64_t>> tiles = {{128, 128}, {128, 64}};
    if (hopperQueryTile(spec) == 192)
      tiles.insert(tiles.begin(), {192, 128});
    // Where the heuristic takes the dynamic scheduler (causal, documents),
    // persistent blocks come in both orders: static and from the counter.
    std::vector<std::pair<bool, bool>> schedules = {{false, false}, {true, false}};
    if (hopperDynamicScheduler(spec))
      schedules.push_back({true, true});
    // Under a causal or window bound (no tile list), 128-key tiles also come
    // with the half diagonal keys the other way round from the heuristic
    // (tag suffix _hd1 / _hd0): they won 2-5% on plain causal D = 64 but were
    // mixed on ALiBi and soft-cap (session 21).
    bool halfEligible = (spec.causal || spec.window) && !spec.documents && !spec.blockSparse;
    bool halfDefault = base.halfDiagonalKeys.value_or(hopperHalfDiagonalKeys(spec));
    for (auto [bq, bk] : tiles)
      for (bool pp : {true, false})
        for (auto [pers, dyn] : schedules)
          for (bool half : {halfDefault, !halfDefault}) {
            bool halfApplies = halfEligible && bk == 128;
            if (half != halfDefault && !halfApplies)
              continue;
            GpuCompileOptions o = base;
            o.blockQ = bq;
            o.blockK = bk;
            o.pingPong = pp;
            o.persistent = pers;
            o.dynamicScheduler = dyn;
            o.halfDiagonalKeys = half;
            add(std::string(bq == 128 ? "" : "bq" + std::to_string(bq) + "_") + "bk" +
                    std::to_string(bk) + "_pp" + (pp ? "1" : "0") +
                    (dyn ? "_dyn" : pers ? "_pers1" : "_pers0") +
                    (half == halfDefault ? "" : half ? "_hd1" : "_hd0"),
                o,
                "{\"kernel\": \"wgmma\", \"block_q\": " + std::to_string(bq) +
                    ", \"block_k\": " + std::to_string(bk) + ", \"ping_pong\": " + flag(pp) +
                    ", \"persistent\": " + flag(pers) +
                    (dyn ? ", \"dynamic_scheduler\": true" : "") +
                    (halfApplies ? std::string(", \"half_diagonal_keys\": ") + flag(half) : "") +
                    "}");
          }
  } else if (usesTensorCores(spec, base)) {
    // The mma.sync kernel's tile is fixed (64 x 32); what varies is whether
    // K/V are double-buffered with cp.async.
    for (bool cp : {true, false}) {
      GpuCompileOptions o = base;
      o.blockQ = 64;
      o.blockK = 32;
      o.cpAsync = cp;
      add(std::string("cpasync") + (cp ? "1" : "0"), o,
          std::string("{\"kernel\": \"mma.sync\", \"block_q\": 64, \"block_k\": 32, "
                      "\"cp_async\": ") + flag(cp) + "}");
    }
  } else if (spec.kind != VariantKind::Attention) {
    if (base.chunkedLinear && spec.dtype != ElementType::F32) {
      for (bool pf : {false, true}) {
        GpuCompileOptions o = base;
        o.chunkedLinearPrefetch = pf;
        add(std::string("prefetch") + (pf ? "1" : "0"), o,
            std::string("{\"kernel\": \"chunked-linear\", \"prefetch\": ") + flag(pf) + "}");
      }
    } else {
      add("default", base, "{}");
    }
  } else {
    // The SIMT kernel: the heuristic tiles, half as many query rows (more
    // blocks for short or few sequences), twice as many keys where Q, K and
    // V tiles still fit 48 KiB of static shared memory.
    auto [bq, bk] = chooseGpuTiles(spec);
    int64_t es = elementBytes(spec.dtype);
    std::vector<std::pair<int64_t, int64_t>> tiles = {{bq, bk}};
    if (bq / 2 >= 16)
      tiles.push_back({bq / 2, bk});
    if ((bq * spec.headDim + 2 * bk * (spec.headDim + spec.headDimV)) * es <= 48 * 1024)
      tiles.push_back({bq, 2 * bk});
    for (auto [q, k] : tiles) {
      GpuCompileOptions o = base;
      o.blockQ = q;
      o.blockK = k;
      add("bq" + std::to_string(q) + "_bk" + std::to_string(k), o,
          "{\"kernel\": \"simt\", \"block_q\": " + std::to_string(q) +
              ", \"block_k\": " + std::to_string(k) + "}");
    }
  }
  return out;
}

bool compileTuningCandidates(const Spec &spec, const std::string &specPath,
                             const GpuCompileOptions &base, const std::string &outDir,
                             std::vector<TuningCandidateResult> &results, std::string &error) {
  results.clear();
  if (specTileOption(spec, "block_q") > 0 || specTileOption(spec, "block_k") > 0) {
    error = specPath + ": options.block_q / block_k fix the tiles that tuning chooses: "
                       "drop them from the spec to tune it";
    return false;
  }
  std::string group = tuningGroupId(spec, base.chip);
  std::string specDir = outDir + "/" + spec.name;
  // Candidates of an earlier compile (another compiler, other options) would
  // mix groups in one directory.
  if (llvm::sys::fs::exists(specDir))
    if (std::error_code ec = llvm::sys::fs::remove_directories(specDir)) {
      error = specDir + ": " + ec.message();
      return false;
    }
  std::map<std::string, std::string> bySha; // PTX hash -> first tag with it
  for (const TuningCandidateOptions &c : tuningCandidates(spec, base)) {
    TuningCandidateResult r;
    r.tag = c.tag;
    GpuCompileOptions o = c.options;
    o.alwaysAssemble = true;
    o.failOnSpills = false; // judged here, to skip rather than fail
    o.tuningGroup = group;
    o.tuningCandidate = c.tag;
    o.tuningOptionsJson = c.optionsJson;
    std::string dir = specDir + "/" + c.tag;
    KernelManifest manifest;
    std::string candidateError;
    bool ok = compileSpecForGpu(spec, specPath, o, dir, manifest, r.report, candidateError);
    bool spills = r.report.stackFrameBytes || r.report.spillStoreBytes || r.report.spillLoadBytes;
    if (!ok) {
      r.skipped = "does not compile: " + candidateError;
    } else if (!r.report.ran) {
      r.skipped = "ptxas did not run";
    } else if (spills) {
      r.skipped = "spills (" + std::to_string(r.report.stackFrameBytes) + " B stack, " +
                  std::to_string(r.report.spillStoreBytes) + " B spill stores, " +
                  std::to_string(r.report.spillLoadBytes) + " B spill loads)";
    } else if (auto [it, fresh] = bySha.emplace(manifest.sha256, c.tag); !fresh) {
      r.skipped = "same PTX as " + it->second;
    } else {
      r.manifestPath = dir + "/" + spec.name + ".json";
    }
    if (!r.skipped.empty())
      llvm::sys::fs::remove_directories(dir);
    results.push_back(std::move(r));
  }
  for (const TuningCandidateResult &r : results)
    if (!r.manifestPath.empty())
      return true;
  error = spec.name + ": no tuning candidate survived:";
  for (const TuningCandidateResult &r : results)
    error += "\n  " + r.tag + ": " + r.skipped;
  return false;
}

} // namespace attn
