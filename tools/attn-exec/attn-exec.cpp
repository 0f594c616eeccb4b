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
#include "attn/Runtime/Tuning.h"

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
    "       attn-exec --kernel-dir CANDIDATES --inputs DIR --outputs DIR "
    "--device cuda [--retune]\n"
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
    "  --kernel-dir D  tuning candidates of one spec written by attn-compile\n"
    "                  --tune-candidates (D = its -o DIR/<spec name>): takes the\n"
    "                  cached choice for this problem, or times every candidate\n"
    "                  (CUDA events, scratch outputs), prints the table, caches\n"
    "                  the fastest; then runs the chosen kernel\n"
    "  --retune        with --kernel-dir: time again even if a choice is cached\n"
    "  --tuning-cache F  with --kernel-dir: the cache file (default\n"
    "                  $ATTN_TUNING_CACHE, else $XDG_CACHE_HOME/attn/tuning.json,\n"
    "                  else ~/.cache/attn/tuning.json; '-' for none)\n"
    "  --tune-repeat N with --kernel-dir: timed launches per candidate (20)\n"
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
  std::string kernelDir, tuningCache, tuneRepeat;
  bool haveSpec = false, haveInputs = false, haveOutputs = false,
       haveDevice = false, haveKernel = false, haveChip = false, haveRepeat = false;
  bool haveKernelDir = false, haveTuningCache = false, haveTuneRepeat = false, retune = false;

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--retune") {
      retune = true;
      continue;
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
      } else if (flag == "--kernel-dir") {
        dst = &kernelDir;
        seen = &haveKernelDir;
      } else if (flag == "--tuning-cache") {
        dst = &tuningCache;
        seen = &haveTuningCache;
      } else if (flag == "--tune-repeat") {
        dst = &tuneRepeat;
        seen = &haveTuneRepeat;
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
  if (!haveSpec && !haveKernel && !haveKernelDir)
    return usageError("missing the spec file (or --kernel MANIFEST.json, or --kernel-dir DIR)");
  if (int(haveSpec) + int(haveKernel) + int(haveKernelDir) > 1)
    return usageError("give one of a spec file, --kernel and --kernel-dir");
  if (!haveKernelDir && (retune || haveTuningCache || haveTuneRepeat))
    return usageError("--retune, --tuning-cache and --tune-repeat go with --kernel-dir");
  int tuneRepeats = 20;
  if (haveTuneRepeat) {
    char *end = nullptr;
    long n = std::strtol(tuneRepeat.c_str(), &end, 10);
    if (!end || *end || n < 1 || n > 10000)
      return usageError("--tune-repeat expects a count between 1 and 10000, got '" +
                        tuneRepeat + "'");
    tuneRepeats = int(n);
  }
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
  if ((haveKernel || haveKernelDir) && device != "cuda")
    return usageError(std::string(haveKernel ? "--kernel" : "--kernel-dir") +
                      " runs a GPU kernel: use --device cuda");

  Spec specStorage;
  const Spec *specPtr = &specStorage;
  KernelManifest manifest;
  std::string error;
  TuningCandidateSet candidates;
  if (haveKernelDir) {
    if (loadTuningCandidates(kernelDir, "", candidates, error) != ATTN_OK)
      return fail(error);
    specPtr = candidates.manifests.front().spec.get();
  } else if (haveKernel) {
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
  if (device == "cuda" && !haveKernel && !haveKernelDir)
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
    if (!haveKernel && !haveKernelDir) {
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
    if (haveKernelDir) {
      CudaTuneParams params;
      params.repeats = tuneRepeats;
      params.retune = retune;
      params.cachePath = tuningCache;
      TuningOutcome outcome;
      std::string deviceName;
      if (tuneCudaCandidates(candidates, in, params, outcome, deviceName, error) != ATTN_OK)
        return fail(error);
      const KernelManifest &chosen = candidates.manifests[outcome.chosen];
      std::printf("tuning group %s (%s, %zu candidates) on %s\n", candidates.group.c_str(),
                  chosen.name.c_str(), candidates.manifests.size(), deviceName.c_str());
      std::printf("key %s\n", outcome.key.c_str());
      std::printf("  %-20s %12s\n", "candidate", "median_ms");
      for (auto &[tag, ms] : outcome.timings) {
        if (ms < 0)
          std::printf("  %-20s %12s\n", tag.c_str(), "failed");
        else
          std::printf("  %-20s %12.4f%s\n", tag.c_str(), ms,
                      tag == chosen.tuningCandidate ? "  <- chosen" : "");
      }
      for (const std::string &f : outcome.failures)
        std::printf("  failed: %s\n", f.c_str());
      std::printf("tuned: candidate=%s source=%s manifest=%s\n",
                  chosen.tuningCandidate.c_str(), outcome.fromCache ? "cache" : "timed",
                  candidates.manifestPaths[outcome.chosen].c_str());
      if (!outcome.warning.empty())
        std::fprintf(stderr, "attn-exec: warning: %s\n", outcome.warning.c_str());
      std::fflush(stdout);
      if (!readManifest(candidates.manifestPaths[outcome.chosen], manifest, error))
        return fail(error);
    }
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
