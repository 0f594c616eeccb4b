//===- Manifest.h - the JSON manifest next to each kernel -------*- C++ -*-===//
//
// A manifest is everything the runtime needs to launch a kernel without the
// compiler: the entry name, the chip, the PTX/cubin files, the launch shape as
// functions of the problem sizes, the argument ABI and the spec it came from.
// Plain C++ (nlohmann/json); never throws on a malformed file.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_RUNTIME_MANIFEST_H
#define ATTN_RUNTIME_MANIFEST_H

#include "attn/Runtime/HostTensors.h"
#include "attn/Spec/Spec.h"

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace attn {

/// One grid dimension: ceil(symbol / divisor), or a constant when symbol is "".
struct GridTerm {
  std::string symbol; ///< "B", "Hq", "Sq" or "" for a constant
  int64_t divisor = 1;
  int64_t value = 1;
};

/// A TMA tensor map the runtime builds for one tensor argument and passes,
/// in device memory, as an extra pointer argument after the spec's arguments
/// (in manifest order). The box is `boxCols` x `boxRows` elements of the
/// tensor's last two dimensions, one (head, batch) at a time.
struct TensorMapArgument {
  int64_t argument = 0; ///< index into the argument list (ABI order)
  int64_t boxCols = 0, boxRows = 0;
  int64_t swizzle = 0; ///< bytes: 0 (none), 32, 64 or 128
  /// The kernel reads the argument only through this map: its data pointer
  /// and descriptor strides are never loaded (found by the compiler in the
  /// kernel's optimized LLVM IR). The map is encoded at launch from the
  /// tensor's own strides, so the launch takes any strides a tensor map can
  /// describe (unit last stride, the others positive multiples of 16 bytes,
  /// 16-byte aligned data), not only those of the spec's layout: e.g. the
  /// query of a packed [B, S, 3, H, D] projection, without a copy.
  bool anyStrides = false;
};

/// Marks the tensor maps whose argument the kernel reads only through the
/// map (TensorMapArgument::anyStrides): of the argument's descriptor the
/// optimized kernel uses only the sizes (never the allocated or aligned
/// pointer, the offset or a stride). `usedParameters` has
/// one flag per PTX parameter of the kernel; `argumentParameters` says how
/// many parameters each argument takes (3 + 2 * rank for a memref
/// descriptor, 1 for a pointer). Where they do not add up (nothing was
/// recorded), nothing is marked.
void markAnyStrides(const std::vector<int64_t> &argumentParameters,
                    const std::vector<bool> &usedParameters,
                    std::vector<TensorMapArgument> &tensorMaps);

/// The dynamic tile scheduler's counter (attn-compile --dynamic-scheduler):
/// an int32 tensor of one element, zero at every launch, the kernel's last
/// argument. The runtime's launch paths allocate and zero it themselves
/// (cuMemsetD32Async on the launch stream) unless the caller passes one.
inline constexpr const char *kTileCounterRole = "tile_counter";

struct KernelManifest {
  static constexpr const char *kFormat = "attn.kernel/1";
  std::string name, entry, chip, ptxFile, cubinFile;
  std::array<int64_t, 3> block = {1, 1, 1};
  std::array<GridTerm, 3> grid;
  int64_t dynamicSharedMemory = 0;
  /// A persistent kernel: the grid terms count its work items; the launch
  /// runs min(items, SMs x this) blocks in x (y = z = 1), each looping over
  /// items. 0: one block per grid cell.
  int64_t persistentBlocksPerSm = 0;
  std::vector<std::string> argumentRoles;
  /// Whether the last argument is the dynamic scheduler's tile counter.
  bool hasTileCounter() const {
    return !argumentRoles.empty() && argumentRoles.back() == kTileCounterRole;
  }
  std::vector<TensorMapArgument> tensorMaps;
  std::string sha256;
  /// A tuning candidate (attn-compile --tune-candidates): the group it belongs
  /// to (every candidate of one spec, chip and compiler shares it), its tag
  /// ("bk128_pp1_pers0") and the options it was compiled with (JSON object
  /// text). All empty for an ordinary kernel. toJson writes them under the
  /// "tuning" key.
  std::string tuningGroup, tuningCandidate, tuningOptions;
  /// Kernels for longer sequences (attn-compile --seq-dispatch): a launch
  /// whose Sk is at least `minSeqK` runs the kernel of `manifest` (a file
  /// beside this one, the same spec and argument roles) instead of this one;
  /// the largest matching minSeqK wins. Written under "dispatch", sorted by
  /// minSeqK; empty for an ordinary kernel.
  struct SeqVariant {
    int64_t minSeqK = 0;
    std::string manifest;
  };
  std::vector<SeqVariant> dispatch;
  /// The index into `dispatch` of the variant a launch with key length `sk`
  /// runs, or -1 for this manifest's own kernel.
  int selectVariant(int64_t sk) const;
  std::unique_ptr<Spec> spec;
  std::string directory; ///< where the manifest was read from (for relative paths)

  /// Grid size for the bound problem sizes (the work items).
  std::array<int64_t, 3> gridFor(const ExecInputs &in) const;
  /// The grid to launch on a device with `multiprocessors` SMs: gridFor, or
  /// for a persistent kernel at most SMs x persistentBlocksPerSm blocks.
  std::array<int64_t, 3> launchGridFor(const ExecInputs &in, int64_t multiprocessors) const;
  /// Serializes to the manifest JSON (ordered, pretty-printed).
  std::string toJson(const std::string &specJson,
                     const std::string &extraJson = "{}") const;
};

/// The whole file at `path` (binary); false when it cannot be opened or read.
bool readWholeFile(const std::string &path, std::string &out);

/// Reads a manifest; errors name the file and the key path.
bool readManifest(const std::string &path, KernelManifest &manifest, std::string &error);

/// Reads `manifest.dispatch[index]`'s manifest into `variant` and checks that
/// it can stand in for `manifest`: the same chip and argument roles (the
/// dynamic scheduler's counter aside), no dispatch of its own. Errors start
/// with "dispatch variant <path>: ".
bool readDispatchVariant(const KernelManifest &manifest, size_t index, KernelManifest &variant,
                         std::string &error);

} // namespace attn

#endif // ATTN_RUNTIME_MANIFEST_H
