//===- Npy.h - NumPy .npy files and float conversions -----------*- C++ -*-===//
//
// Reads and writes NumPy .npy files (format versions 1.0, 2.0 and 3.0) in C
// order with little-endian element types, plus the f16 / bf16 <-> float
// conversions the runtime needs. Plain C++17: no LLVM/MLIR, no exceptions
// thrown to the caller; every malformed or truncated file is an error message.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_RUNTIME_NPY_H
#define ATTN_RUNTIME_NPY_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace attn {
namespace npy {

/// Element types of .npy files this reader understands.
enum class DType {
  F64,  ///< '<f8'
  F32,  ///< '<f4'
  F16,  ///< '<f2'
  I64,  ///< '<i8'
  I32,  ///< '<i4'
  U16,  ///< '<u2' (bf16 bit patterns in this project)
  U8,   ///< '|u1'
  I8,   ///< '|i1'
  Bool, ///< '|b1'
};

/// NumPy's descr string for `t`, e.g. "<f4" or "|u1".
const char *dtypeDescr(DType t);
/// NumPy's name for `t`, e.g. "float32" or "uint8".
const char *dtypeName(DType t);
/// Bytes per element.
size_t dtypeSize(DType t);

/// An n-d array as stored in a .npy file: raw little-endian element bytes in
/// C (row-major) order.
struct Array {
  DType dtype = DType::F32;
  std::vector<int64_t> shape; ///< empty for a 0-d (scalar) array
  std::vector<uint8_t> bytes;

  /// Product of the shape (1 for a 0-d array).
  int64_t numElements() const;
  /// Element `i` converted to double (f16 via halfToFloat, u16 as an integer).
  double getAsDouble(int64_t i) const;
  /// Sets element `i` from a double (casts; float types round to nearest).
  void setFromDouble(int64_t i, double v);
};

/// Makes a zero-filled array.
Array makeArray(DType dtype, std::vector<int64_t> shape);

/// Parses the contents of a .npy file held in memory. On failure returns
/// false and sets `error` (no file name prefix).
bool parseNpy(const uint8_t *data, size_t size, Array &out, std::string &error);
/// Reads a .npy file. Errors are "<path>: <problem>".
bool readNpy(const std::string &path, Array &out, std::string &error);

/// Serializes `a` as a version 1.0 file (2.0 if the header needs it).
bool serializeNpy(const Array &a, std::vector<uint8_t> &out, std::string &error);
/// Writes `a` to `path`. Errors are "<path>: <problem>".
bool writeNpy(const std::string &path, const Array &a, std::string &error);

/// "[2, 4, 130, 64]"; "[]" for a 0-d array.
std::string shapeToString(const std::vector<int64_t> &shape);

} // namespace npy

//===----------------------------------------------------------------------===//
// Float conversions (IEEE binary16 and bfloat16). All narrowing conversions
// round to nearest, ties to even; NaN stays NaN (quiet), infinities stay
// infinite, overflow goes to infinity.
//===----------------------------------------------------------------------===//

float halfToFloat(uint16_t bits);
uint16_t floatToHalf(float f);
float bf16ToFloat(uint16_t bits);
uint16_t floatToBf16(float f);

/// `f` rounded to the nearest binary16 / bfloat16 value, back as float.
inline float roundToHalf(float f) { return halfToFloat(floatToHalf(f)); }
inline float roundToBf16(float f) { return bf16ToFloat(floatToBf16(f)); }

} // namespace attn

#endif // ATTN_RUNTIME_NPY_H
