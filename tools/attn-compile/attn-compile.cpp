//===- attn-compile.cpp - specs -> GPU kernels with manifests -------------===//
//
//   attn-compile SPEC.json... -o DIR [--chip sm_90a|sm_80] [--cubin]
//                [--fail-on-spills] [--block-q N] [--block-k N] [--tensor-cores=false]
//
// Writes DIR/<name>.ptx, DIR/<name>.cubin (--cubin, through ptxas) and the
// manifest DIR/<name>.json for each spec. Exit status 1 on any failure.
//
//===----------------------------------------------------------------------===//

#include "attn/Target/GpuCompiler.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>

using namespace llvm;

static cl::list<std::string> specs(cl::Positional, cl::OneOrMore,
                                   cl::desc("<spec.json>..."));
static cl::opt<std::string> outDir("o", cl::Required, cl::desc("Output directory"),
                                   cl::value_desc("dir"));
static cl::opt<std::string> chip("chip", cl::init("sm_90a"),
                                 cl::desc("Target chip: sm_80 or sm_90a"));
static cl::opt<bool> cubin("cubin", cl::desc("Also assemble a cubin with ptxas"));
static cl::opt<bool> failOnSpills(
    "fail-on-spills", cl::desc("With --cubin: fail on any spill or stack frame"));
static cl::opt<int64_t> blockQ("block-q", cl::init(0), cl::desc("Query tile rows (0: heuristic)"));
static cl::opt<int64_t> blockK("block-k", cl::init(0), cl::desc("Key tile length (0: heuristic)"));
static cl::opt<bool> quiet("q", cl::desc("Print nothing on success"));
static cl::opt<bool> tensorCores(
    "tensor-cores", cl::init(true),
    cl::desc("Use the mma.sync kernel for f16/bf16 softmax attention (default; "
             "--tensor-cores=false for the SIMT kernel)"));

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(argc, argv, "attn GPU kernel compiler\n");
  attn::GpuCompileOptions options;
  options.chip = chip;
  options.cubin = cubin;
  options.failOnSpills = failOnSpills;
  options.blockQ = blockQ;
  options.blockK = blockK;
  options.tensorCores = tensorCores;
  int failures = 0;
  for (const std::string &path : specs) {
    attn::Spec spec;
    std::string error;
    if (!attn::parseSpecFile(path, spec, error)) {
      errs() << "attn-compile: error: " << error << "\n";
      ++failures;
      continue;
    }
    auto start = std::chrono::steady_clock::now();
    attn::KernelManifest manifest;
    attn::PtxasReport report;
    if (!attn::compileSpecForGpu(spec, path, options, outDir, manifest, report, error)) {
      errs() << "attn-compile: error: " << error << "\n";
      ++failures;
      continue;
    }
    double ms = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - start).count();
    if (!quiet) {
      outs() << spec.name << ": " << options.chip << ", block " << manifest.block[0];
      if (report.ran)
        outs() << ", " << report.registers << " registers, "
               << report.stackFrameBytes << " B stack, " << report.spillStoreBytes
               << " B spills, " << report.sharedMemoryBytes << " B smem";
      outs() << ", " << llvm::format("%.0f", ms) << " ms\n";
    }
  }
  return failures ? 1 : 0;
}
