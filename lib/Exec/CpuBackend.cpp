//===- CpuBackend.cpp - the compiled CPU path -----------------------------===//
//
// Buffers are laid out exactly as the spec's memref types say (bshd strides
// included) and passed as MLIR memref descriptors through the C interface
// (_mlir_ciface_<name>), so the run exercises the same strided access the
// kernels will see.
//
//===----------------------------------------------------------------------===//

#include "attn/Runtime/CpuBackend.h"
#include "attn/Runtime/KernelArgs.h"
#include "attn/Spec/SpecToIR.h"
#include "attn/Transforms/CompilerContext.h"
#include "attn/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"


using namespace mlir;

namespace attn {
bool runCompiledCpu(const Spec &spec, const std::string &specPath,
                    const ExecInputs &in, ExecOutputs &out, std::string &error) {
  CompilerContext compiler;
  MLIRContext &context = compiler.get();

  OwningOpRef<ModuleOp> module =
      buildSpecModule(context, spec, specPath, /*forceLse=*/true);
  module->walk([&](func::FuncOp f) {
    f->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(), UnitAttr::get(&context));
  });
  PassManager pm(&context);
  if (failed(buildCpuPipeline(pm)) || failed(pm.run(*module))) {
    error = "compiling " + specPath + " for the CPU failed: " + compiler.diagnostics();
    return false;
  }

  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  ExecutionEngineOptions options;
  auto transformer = makeOptimizingTransformer(/*optLevel=*/2, /*sizeLevel=*/0,
                                               /*targetMachine=*/nullptr);
  options.transformer = transformer;
  auto engine = ExecutionEngine::create(*module, options);
  if (!engine) {
    error = "creating the CPU execution engine failed: " +
            llvm::toString(engine.takeError());
    return false;
  }

  // Arguments in the ABI order of buildSpecModule, passed as memref
  // descriptors {allocated, aligned, offset, sizes..., strides...}.
  std::vector<HostBuffer> buffers = bindArguments(spec, in, /*withLse=*/true);
  std::vector<std::vector<int64_t>> descriptors;
  for (HostBuffer &buf : buffers) {
    int64_t ptr = reinterpret_cast<int64_t>(buf.bytes.data());
    std::vector<int64_t> desc = {ptr, ptr, 0};
    desc.insert(desc.end(), buf.shape.begin(), buf.shape.end());
    desc.insert(desc.end(), buf.strides.begin(), buf.strides.end());
    descriptors.push_back(std::move(desc));
  }
  std::vector<void *> descriptorPtrs;
  for (auto &desc : descriptors)
    descriptorPtrs.push_back(desc.data());
  std::vector<void *> args;
  for (void *&p : descriptorPtrs)
    args.push_back(&p);
  if (llvm::Error err = (*engine)->invokePacked("_mlir_ciface_" + spec.name, args)) {
    error = "running " + spec.name + " on the CPU failed: " + llvm::toString(std::move(err));
    return false;
  }

  readOutputs(spec, buffers, out);
  return true;
}

} // namespace attn
