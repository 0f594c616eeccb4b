//===- attn-exec.cpp - run one attention variant on .npy inputs -----------===//
//
//   attn-exec SPEC.json --inputs DIR --outputs DIR --device cpu|reference
//
// Reads the inputs the spec needs from the input directory (see ExecIO.h),
// runs the chosen device and writes o.npy, lse.npy (attention) and ht.npy
// (linear kinds with a final state) to the output directory, all or nothing.
// Any problem: a message on stderr naming the file, exit status 1.
//
//===----------------------------------------------------------------------===//

#include "attn/Reference/Reference.h"
#include "attn/Runtime/ExecIO.h"
#include "attn/Runtime/HostTensors.h"
#include "attn/Spec/Spec.h"

#include "attn/Runtime/Manifest.h"

#ifdef ATTN_HAVE_COMPILER
#include "attn/Runtime/CpuBackend.h"
#include "attn/Target/GpuCompiler.h"
#endif
#ifdef ATTN_HAVE_CUDA
#include "attn/Runtime/CudaRuntime.h"
#endif

#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

using namespace attn;

static const char kUsage[] =
    "usage: attn-exec SPEC.json --inputs DIR --outputs DIR "
    "--device cpu|reference|cuda\n"
    "       attn-exec --kernel MANIFEST.json --inputs DIR --outputs DIR "
    "--device cuda\n"
    "\n"
    "Runs the attention variant described by SPEC.json on the .npy inputs in\n"
    "the --inputs directory and writes the outputs to the --outputs directory.\n"
    "\n"
    "options (also accepted as --flag=value):\n"
    "  --inputs DIR    q.npy, k.npy, v.npy and, where the variant needs them,\n"
    "                  g.npy, block_mask.npy, q_doc_ids.npy, kv_doc_ids.npy,\n"
    "                  alibi_slopes.npy, h0.npy, <tensor>.npy\n"
    "  --outputs DIR   receives o.npy, lse.npy (attention), ht.npy (linear\n"
    "                  kinds with a final state), all float32; created if\n"
    "                  missing; on failure no output file is written\n"
    "  --device NAME   reference (float64 reference), cpu (compiled CPU path),\n"
    "                  cuda (the GPU kernel: compiled from the spec where the\n"
    "                  compiler is built, or an attn-compile output given by\n"
    "                  --kernel)\n"
    "  --kernel FILE   a kernel manifest written by attn-compile (instead of\n"
    "                  the spec; works in runtime-only builds)\n"
    "  --chip NAME     with --device cuda and a spec: sm_80 (default) or sm_90a\n"
    "  --repeat N      with --device cuda: also time N launches (after 3\n"
    "                  warm-ups) and print the median as 'median_ms=<t>'\n"
    "  --help          print this message\n";

static int usageError(const std::string &msg) {
  std::fprintf(stderr, "attn-exec: %s\n%s", msg.c_str(), kUsage);
  return 1;
}

static int fail(const std::string &msg) {
  std::fprintf(stderr, "attn-exec: %s\n", msg.c_str());
  return 1;
}

int main(int argc, char **argv) {
  std::string specPath, inputs, outputs, device, kernelPath, chip = "sm_80", repeat;
  bool haveSpec = false, haveInputs = false, haveOutputs = false,
       haveDevice = false, haveKernel = false, haveChip = false, haveRepeat = false;

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg.size() > 1 && arg[0] == '-') {
      std::string flag = arg, value;
      bool inlineValue = false;
      size_t eq = arg.find('=');
      if (arg.compare(0, 2, "--") == 0 && eq != std::string::npos) {
        flag = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        inlineValue = true;
      }
      std::string *dst = nullptr;
      bool *seen = nullptr;
      if (flag == "--inputs") {
        dst = &inputs;
        seen = &haveInputs;
      } else if (flag == "--outputs") {
        dst = &outputs;
        seen = &haveOutputs;
      } else if (flag == "--device") {
        dst = &device;
        seen = &haveDevice;
      } else if (flag == "--kernel") {
        dst = &kernelPath;
        seen = &haveKernel;
      } else if (flag == "--chip") {
        dst = &chip;
        seen = &haveChip;
      } else if (flag == "--repeat") {
        dst = &repeat;
        seen = &haveRepeat;
      } else {
        return usageError("unknown option '" + arg + "'");
      }
      if (!inlineValue) {
        if (i + 1 >= argc)
          return usageError("option '" + flag + "' needs a value");
        value = argv[++i];
      }
      if (*seen)
        return usageError("option '" + flag + "' given twice");
      if (value.empty())
        return usageError("option '" + flag + "' needs a non-empty value");
      *dst = value;
      *seen = true;
      continue;
    }
    if (haveSpec)
      return usageError("unexpected argument '" + arg +
                        "' (only one spec file)");
    specPath = arg;
    haveSpec = true;
  }
  if (!haveSpec && !haveKernel)
    return usageError("missing the spec file (or --kernel MANIFEST.json)");
  if (haveSpec && haveKernel)
    return usageError("give either a spec file or --kernel, not both");
  if (!haveInputs)
    return usageError("missing --inputs DIR");
  if (!haveOutputs)
    return usageError("missing --outputs DIR");
  if (!haveDevice)
    return usageError("missing --device cpu|reference");
  if (device != "cpu" && device != "reference" && device != "cuda")
    return usageError("unknown device '" + device +
                      "' (expected cpu, reference or cuda)");
  int repeats = 0;
  if (haveRepeat) {
    char *end = nullptr;
    long n = std::strtol(repeat.c_str(), &end, 10);
    if (!end || *end || n < 1 || n > 100000)
      return usageError("--repeat expects a count between 1 and 100000, got '" + repeat + "'");
    if (device != "cuda")
      return usageError("--repeat times GPU launches: use --device cuda");
    repeats = int(n);
  }
  if (haveKernel && device != "cuda")
    return usageError("--kernel runs a GPU kernel: use --device cuda");

  Spec specStorage;
  const Spec *specPtr = &specStorage;
  KernelManifest manifest;
  std::string error;
  if (haveKernel) {
    if (!readManifest(kernelPath, manifest, error))
      return fail(error);
    specPtr = manifest.spec.get();
  } else if (!parseSpecFile(specPath, specStorage, error)) {
    // parseSpecFile prefixes the file name; make sure it is there.
    if (error.find(specPath) == std::string::npos)
      error = specPath + ": " + error;
    return fail(error);
  }
  const Spec &spec = *specPtr;

#ifndef ATTN_HAVE_CUDA
  if (device == "cuda")
    return fail("--device cuda needs the CUDA runtime; this build found no CUDA headers");
#endif
#ifndef ATTN_HAVE_COMPILER
  if (device == "cuda" && !haveKernel)
    return fail("--device cuda with a spec needs the compiler; this is a runtime-only "
                "build (ATTN_RUNTIME_ONLY): compile with attn-compile elsewhere and pass "
                "--kernel MANIFEST.json");
#endif
#ifndef ATTN_HAVE_COMPILER
  if (device == "cpu")
    return fail("--device cpu needs the compiler; this is a runtime-only "
                "build (ATTN_RUNTIME_ONLY)");
#endif

  ExecInputs in;
  if (!loadInputs(spec, inputs, in, error))
    return fail(error);

  ExecOutputs out;
  bool ok = false;
  if (device == "reference") {
    ok = runReference(spec, in, out, error);
  } else if (device == "cpu") {
#ifdef ATTN_HAVE_COMPILER
    ok = runCompiledCpu(spec, specPath, in, out, error);
#endif
  } else {
#ifdef ATTN_HAVE_CUDA
    std::string tmpDir;
#ifdef ATTN_HAVE_COMPILER
    if (!haveKernel) {
      // Compile into a private temporary directory, run, clean up.
      char pattern[] = "/tmp/attn-exec-XXXXXX";
      if (!mkdtemp(pattern))
        return fail("cannot create a temporary directory for the kernel");
      tmpDir = pattern;
      GpuCompileOptions options;
      options.chip = chip;
      PtxasReport report;
      if (!compileSpecForGpu(spec, specPath, options, tmpDir, manifest, report, error)) {
        std::error_code ec;
        std::filesystem::remove_all(tmpDir, ec);
        return fail(error);
      }
    }
#endif
    CudaRunOptions runOptions;
    double medianMs = 0;
    runOptions.timingRepeats = repeats;
    runOptions.medianMilliseconds = &medianMs;
    ok = runCudaKernel(manifest, in, out, error, runOptions);
    if (ok && repeats > 0)
      std::printf("median_ms=%.6f\n", medianMs);
    if (!tmpDir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(tmpDir, ec);
    }
#endif
  }
  if (!ok)
    return fail(error.empty() ? "--device " + device + " failed" : error);

  if (!writeOutputs(spec, outputs, out, error))
    return fail(error);
  return 0;
}
