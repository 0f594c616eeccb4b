//===- attn-opt.cpp - the attn compiler driver ----------------------------===//
//
// mlir-opt with the attn dialect and passes, the upstream dialects, passes and
// LLVM/NVVM translations the GPU pipeline needs, plus `--spec FILE.json`,
// which reads a JSON spec instead of IR (passes on the same command line run
// on the IR it produces).
//
//===----------------------------------------------------------------------===//

#include "attn/IR/AttnOps.h"
#include "attn/Spec/Spec.h"
#include "attn/Spec/SpecToIR.h"
#include "attn/Transforms/Passes.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/ToolOutputFile.h"
#include "mlir/Support/FileUtilities.h"

using namespace mlir;

static llvm::cl::opt<std::string>
    specFile("spec", llvm::cl::desc("Read a JSON spec (README: Spec format) "
                                    "instead of MLIR input"),
             llvm::cl::value_desc("file.json"), llvm::cl::init(""));

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  DialectRegistry registry;
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerAllToLLVMIRTranslations(registry);
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  attn::registerSpecDialects(registry);
  registerAllPasses();
  attn::registerAttnPipelines();

  auto [inputFilename, outputFilename] =
      registerAndParseCLIOptions(argc, argv, "attn compiler driver\n", registry);
  MlirOptMainConfig config = MlirOptMainConfig::createFromCLOptions();

  std::unique_ptr<llvm::MemoryBuffer> input;
  if (specFile.empty()) {
    std::string error;
    input = openInputFile(inputFilename, &error);
    if (!input) {
      llvm::errs() << "attn-opt: " << error << "\n";
      return 1;
    }
  } else {
    // Translate the spec to IR text, then hand it to the normal driver: the
    // output is exactly what parsing and printing that IR gives.
    attn::Spec spec;
    std::string error;
    if (!attn::parseSpecFile(specFile, spec, error)) {
      llvm::errs() << "attn-opt: error: " << error << "\n";
      return 1;
    }
    MLIRContext context(registry);
    OwningOpRef<ModuleOp> module = attn::buildSpecModule(context, spec, specFile);
    if (failed(verify(*module))) {
      llvm::errs() << "attn-opt: internal error: the IR built from " << specFile
                   << " does not verify\n";
      return 1;
    }
    std::string text;
    llvm::raw_string_ostream os(text);
    module->print(os, OpPrintingFlags().enableDebugInfo(false));
    input = llvm::MemoryBuffer::getMemBufferCopy(text, specFile);
  }

  std::string error;
  auto output = openOutputFile(outputFilename, &error);
  if (!output) {
    llvm::errs() << "attn-opt: " << error << "\n";
    return 1;
  }
  if (failed(MlirOptMain(output->os(), std::move(input), registry, config)))
    return 1;
  output->keep();
  return 0;
}
