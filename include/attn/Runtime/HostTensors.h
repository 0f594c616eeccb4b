//===- HostTensors.h - host-side inputs and outputs of one run --*- C++ -*-===//
//
// The arrays every execution path (the float64 reference, the compiled CPU
// path, the CUDA path) consumes and produces. Plain C++: no LLVM/MLIR.
//
// All arrays are row-major in LOGICAL order: q [B, Hq, Sq, Dqk] etc., whatever
// the spec's memory layout (ExecIO transposes bshd files on load and store).
// Values are doubles; q, k and v already hold values of the spec's element
// type (rounded on load), so every device computes on exactly the same
// numbers.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_RUNTIME_HOSTTENSORS_H
#define ATTN_RUNTIME_HOSTTENSORS_H

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace attn {

/// A dense row-major array of doubles.
struct HostArray {
  std::vector<int64_t> shape;
  std::vector<double> data;

  HostArray() = default;
  explicit HostArray(std::vector<int64_t> s, double fill = 0.0)
      : shape(std::move(s)), data(size_t(numElementsOf(shape)), fill) {}

  int64_t numElements() const { return numElementsOf(shape); }
  int64_t rank() const { return int64_t(shape.size()); }

  static int64_t numElementsOf(const std::vector<int64_t> &shape) {
    for (int64_t d : shape)
      if (d == 0)
        return 0;
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }

  /// Row-major linear offset of a full index (no bounds checks).
  int64_t offset(std::initializer_list<int64_t> idx) const {
    int64_t off = 0;
    size_t i = 0;
    for (int64_t v : idx)
      off = off * shape[i++] + v;
    return off;
  }
  double &at(std::initializer_list<int64_t> idx) { return data[size_t(offset(idx))]; }
  double at(std::initializer_list<int64_t> idx) const { return data[size_t(offset(idx))]; }
};

/// The inputs of one run, with the sizes bound from the files. For the
/// linear kinds Hq == Hkv == H and Sq == Sk == S.
struct ExecInputs {
  HostArray q; ///< [B, Hq, Sq, Dqk]
  HostArray k; ///< [B, Hkv, Sk, Dqk]
  HostArray v; ///< [B, Hkv, Sk, Dv]

  /// Gated linear attention: log-space gates, [B, H, S] (scalar),
  /// [B, H, S, Dqk] (vector) or [H] (head_constant).
  std::optional<HostArray> gates;
  /// Block-sparse attention: [B or 1, Hq or 1, ceil(Sq/bq), ceil(Sk/bk)],
  /// nonzero = the block is visible.
  std::optional<HostArray> blockMask;
  /// Document masking: [B, Sq] and [B, Sk] integer ids.
  std::optional<HostArray> qDocIds, kvDocIds;
  /// ALiBi: [Hq] or [B, Hq].
  std::optional<HostArray> alibiSlopes;
  /// Linear kinds with an initial state: [B, H, Dqk, Dv].
  std::optional<HostArray> initialState;
  /// Tensors read by custom expressions, in the order of Spec::tensors
  /// (i32 tensors hold exact integers).
  std::vector<std::pair<std::string, HostArray>> tensors;

  int64_t B = 0, Hq = 0, Hkv = 0, Sq = 0, Sk = 0, Dqk = 0, Dv = 0;
};

/// The outputs of one run.
struct ExecOutputs {
  HostArray out;                   ///< [B, Hq, Sq, Dv]
  std::optional<HostArray> lse;    ///< attention: [B, Hq, Sq], natural log
  std::optional<HostArray> finalState; ///< linear kinds: [B, H, Dqk, Dv]
};

} // namespace attn

#endif // ATTN_RUNTIME_HOSTTENSORS_H
