//===- Npy.cpp - NumPy .npy files and float conversions -------------------===//
//
// The header is a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// and is parsed with a small hand-written scanner that rejects anything it
// does not understand with a message (never undefined behaviour): every read
// is bounds-checked, the shape product is overflow-checked and compared with
// the file size before any allocation.
//
//===----------------------------------------------------------------------===//

#include "attn/Runtime/Npy.h"
#include "attn/Runtime/HostTensors.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace attn {

//===----------------------------------------------------------------------===//
// Float conversions
//===----------------------------------------------------------------------===//

static uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
static float bitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24, exact in float.
    float v = std::ldexp(float(mant), -24);
    return sign ? -v : v;
  }
  if (exp == 31)
    return bitsFloat(sign | 0x7f800000u | (mant << 13));
  return bitsFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

uint16_t floatToHalf(float f) {
  uint32_t x = floatBits(f);
  uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) {
    if (a > 0x7f800000u) // NaN: quiet it, keep the top payload bits.
      return uint16_t(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    return uint16_t(sign | 0x7c00u);
  }
  if (a >= 0x477ff000u) // >= 65520: rounds (ties to even) to infinity.
    return uint16_t(sign | 0x7c00u);
  if (a >= 0x38800000u) { // normal half
    uint32_t e = (a >> 23) - 127 + 15;
    uint32_t mant = a & 0x7fffffu;
    uint32_t h = (e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
      ++h; // a carry into the exponent is the right result
    return uint16_t(sign | h);
  }
  if (a <= 0x33000000u) // <= 2^-25: rounds to zero (2^-25 is a tie -> even 0)
    return sign;
  // Subnormal half: value in units of 2^-24.
  uint32_t e = a >> 23;
  uint32_t mant = (a & 0x7fffffu) | 0x800000u;
  uint32_t shift = 126 - e; // in [14, 24]
  uint32_t h = mant >> shift;
  uint32_t rem = mant & ((1u << shift) - 1);
  uint32_t halfway = 1u << (shift - 1);
  if (rem > halfway || (rem == halfway && (h & 1u)))
    ++h;
  return uint16_t(sign | h);
}

float bf16ToFloat(uint16_t bits) { return bitsFloat(uint32_t(bits) << 16); }

uint16_t floatToBf16(float f) {
  uint32_t x = floatBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return uint16_t((x >> 16) | 0x40u); // quiet NaN
  uint32_t lsb = (x >> 16) & 1u;
  x += 0x7fffu + lsb;
  return uint16_t(x >> 16);
}

namespace npy {

//===----------------------------------------------------------------------===//
// Element types
//===----------------------------------------------------------------------===//

const char *dtypeDescr(DType t) {
  switch (t) {
  case DType::F64: return "<f8";
  case DType::F32: return "<f4";
  case DType::F16: return "<f2";
  case DType::I64: return "<i8";
  case DType::I32: return "<i4";
  case DType::U16: return "<u2";
  case DType::U8: return "|u1";
  case DType::I8: return "|i1";
  case DType::Bool: return "|b1";
  }
  return "?";
}

const char *dtypeName(DType t) {
  switch (t) {
  case DType::F64: return "float64";
  case DType::F32: return "float32";
  case DType::F16: return "float16";
  case DType::I64: return "int64";
  case DType::I32: return "int32";
  case DType::U16: return "uint16";
  case DType::U8: return "uint8";
  case DType::I8: return "int8";
  case DType::Bool: return "bool";
  }
  return "?";
}

size_t dtypeSize(DType t) {
  switch (t) {
  case DType::F64:
  case DType::I64: return 8;
  case DType::F32:
  case DType::I32: return 4;
  case DType::F16:
  case DType::U16: return 2;
  case DType::U8:
  case DType::I8:
  case DType::Bool: return 1;
  }
  return 1;
}

static bool hostIsLittleEndian() {
  uint16_t v = 1;
  uint8_t b;
  std::memcpy(&b, &v, 1);
  return b == 1;
}

/// Maps a descr string to a DType; explains what is wrong otherwise.
static bool parseDescr(const std::string &d, DType &t, std::string &error) {
  if (d.size() < 2) {
    error = "unsupported dtype '" + d + "'";
    return false;
  }
  char order = 0;
  std::string rest = d;
  if (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=') {
    order = d[0];
    rest = d.substr(1);
  }
  struct Entry { const char *code; DType type; };
  static const Entry entries[] = {
      {"f8", DType::F64}, {"f4", DType::F32}, {"f2", DType::F16},
      {"i8", DType::I64}, {"i4", DType::I32}, {"u2", DType::U16},
      {"u1", DType::U8},  {"i1", DType::I8},  {"b1", DType::Bool},
  };
  for (const Entry &e : entries) {
    if (rest != e.code)
      continue;
    if (dtypeSize(e.type) > 1) {
      if (order == '>') {
        error = "big-endian dtype '" + d + "' is not supported";
        return false;
      }
      if (order == '|') {
        error = "dtype '" + d + "' has no byte order";
        return false;
      }
      if (order == '=' && !hostIsLittleEndian()) {
        error = "native-order dtype '" + d + "' on a big-endian host";
        return false;
      }
    }
    t = e.type;
    return true;
  }
  error = "unsupported dtype '" + d +
          "' (supported: <f8 <f4 <f2 <i8 <i4 <u2 |u1 |i1 |b1)";
  return false;
}

//===----------------------------------------------------------------------===//
// Array
//===----------------------------------------------------------------------===//

int64_t Array::numElements() const { return HostArray::numElementsOf(shape); }

template <typename T> static T loadAs(const uint8_t *p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <typename T> static void storeAs(uint8_t *p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

double Array::getAsDouble(int64_t i) const {
  const uint8_t *p = bytes.data() + size_t(i) * dtypeSize(dtype);
  switch (dtype) {
  case DType::F64: return loadAs<double>(p);
  case DType::F32: return loadAs<float>(p);
  case DType::F16: return halfToFloat(loadAs<uint16_t>(p));
  case DType::I64: return double(loadAs<int64_t>(p));
  case DType::I32: return loadAs<int32_t>(p);
  case DType::U16: return loadAs<uint16_t>(p);
  case DType::U8: return *p;
  case DType::I8: return int8_t(*p);
  case DType::Bool: return *p ? 1.0 : 0.0;
  }
  return 0;
}

template <typename T> static T saturatingCast(double v) {
  if (std::isnan(v))
    return 0;
  if (v <= double(std::numeric_limits<T>::min()))
    return std::numeric_limits<T>::min();
  if (v >= double(std::numeric_limits<T>::max()))
    return std::numeric_limits<T>::max();
  return T(v);
}

void Array::setFromDouble(int64_t i, double v) {
  uint8_t *p = bytes.data() + size_t(i) * dtypeSize(dtype);
  switch (dtype) {
  case DType::F64: storeAs<double>(p, v); return;
  case DType::F32: storeAs<float>(p, float(v)); return;
  case DType::F16: storeAs<uint16_t>(p, floatToHalf(float(v))); return;
  case DType::I64: storeAs<int64_t>(p, saturatingCast<int64_t>(v)); return;
  case DType::I32: storeAs<int32_t>(p, saturatingCast<int32_t>(v)); return;
  case DType::U16: storeAs<uint16_t>(p, saturatingCast<uint16_t>(v)); return;
  case DType::U8: *p = saturatingCast<uint8_t>(v); return;
  case DType::I8: *p = uint8_t(saturatingCast<int8_t>(v)); return;
  case DType::Bool: *p = v != 0 ? 1 : 0; return;
  }
}

Array makeArray(DType dtype, std::vector<int64_t> shape) {
  Array a;
  a.dtype = dtype;
  a.shape = std::move(shape);
  a.bytes.assign(size_t(a.numElements()) * dtypeSize(dtype), 0);
  return a;
}

std::string shapeToString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

//===----------------------------------------------------------------------===//
// Header parsing
//===----------------------------------------------------------------------===//

namespace {
/// A scanner over the header text; every access is bounds-checked.
class HeaderParser {
public:
  HeaderParser(const char *text, size_t size) : s(text), n(size) {}

  bool parse(std::string &descr, bool &fortran, std::vector<int64_t> &shape,
             std::string &error) {
    bool haveDescr = false, haveFortran = false, haveShape = false;
    skipSpace();
    if (!consume('{'))
      return fail("header is not a Python dict (expected '{')", error);
    for (;;) {
      skipSpace();
      if (consume('}'))
        break;
      std::string key;
      if (!parseString(key, error))
        return fail("expected a quoted key in the header dict", error);
      skipSpace();
      if (!consume(':'))
        return fail("expected ':' after key '" + key + "'", error);
      skipSpace();
      if (key == "descr") {
        if (haveDescr)
          return fail("duplicate key 'descr'", error);
        haveDescr = true;
        if (peek() == '[')
          return fail("structured dtypes are not supported", error);
        if (!parseString(descr, error))
          return fail("'descr' must be a string", error);
      } else if (key == "fortran_order") {
        if (haveFortran)
          return fail("duplicate key 'fortran_order'", error);
        haveFortran = true;
        if (consumeWord("True"))
          fortran = true;
        else if (consumeWord("False"))
          fortran = false;
        else
          return fail("'fortran_order' must be True or False", error);
      } else if (key == "shape") {
        if (haveShape)
          return fail("duplicate key 'shape'", error);
        haveShape = true;
        if (!parseShape(shape, error))
          return false;
      } else {
        return fail("unexpected key '" + key + "' in the header", error);
      }
      skipSpace();
      if (consume(','))
        continue;
      skipSpace();
      if (consume('}'))
        break;
      return fail("expected ',' or '}' in the header dict", error);
    }
    skipSpace();
    if (pos != n)
      return fail("unexpected text after the header dict", error);
    if (!haveDescr || !haveFortran || !haveShape)
      return fail(std::string("header lacks key '") +
                      (!haveDescr ? "descr" : !haveFortran ? "fortran_order"
                                                            : "shape") +
                      "'",
                  error);
    return true;
  }

private:
  const char *s;
  size_t n;
  size_t pos = 0;

  static bool fail(const std::string &msg, std::string &error) {
    if (error.empty())
      error = msg;
    return false;
  }
  char peek() const { return pos < n ? s[pos] : '\0'; }
  bool consume(char c) {
    if (pos < n && s[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  void skipSpace() {
    while (pos < n && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' ||
                       s[pos] == '\r'))
      ++pos;
  }
  bool consumeWord(const char *w) {
    size_t len = std::strlen(w);
    if (n - pos < len || std::memcmp(s + pos, w, len) != 0)
      return false;
    size_t end = pos + len;
    if (end < n && (std::isalnum((unsigned char)s[end]) || s[end] == '_'))
      return false;
    pos = end;
    return true;
  }
  bool parseString(std::string &out, std::string &error) {
    char q = peek();
    if (q != '\'' && q != '"')
      return false;
    ++pos;
    out.clear();
    while (pos < n && s[pos] != q) {
      if (s[pos] == '\\') {
        if (pos + 1 >= n)
          return fail("unterminated string in the header", error);
        ++pos;
      }
      out += s[pos++];
    }
    if (pos >= n)
      return fail("unterminated string in the header", error);
    ++pos;
    return true;
  }
  bool parseShape(std::vector<int64_t> &shape, std::string &error) {
    shape.clear();
    if (!consume('('))
      return fail("'shape' must be a tuple", error);
    for (;;) {
      skipSpace();
      if (consume(')'))
        break;
      if (!std::isdigit((unsigned char)peek()))
        return fail("'shape' must be a tuple of non-negative integers", error);
      int64_t v = 0;
      while (std::isdigit((unsigned char)peek())) {
        int d = s[pos++] - '0';
        if (v > (std::numeric_limits<int64_t>::max() - d) / 10)
          return fail("a 'shape' dimension is too large", error);
        v = v * 10 + d;
      }
      consume('L'); // Python 2 long suffix
      shape.push_back(v);
      if (shape.size() > 64)
        return fail("'shape' has too many dimensions", error);
      skipSpace();
      if (consume(','))
        continue;
      skipSpace();
      if (consume(')'))
        break;
      return fail("expected ',' or ')' in 'shape'", error);
    }
    // Python needs a trailing comma in a one-tuple; "(5)" is the integer 5.
    return true;
  }
};
} // namespace

static const char kMagic[] = "\x93NUMPY";

bool parseNpy(const uint8_t *data, size_t size, Array &out,
              std::string &error) {
  error.clear();
  if (size < 6 || std::memcmp(data, kMagic, 6) != 0) {
    error = size == 0 ? "empty file, not a .npy file"
                      : "not a .npy file (bad magic string)";
    return false;
  }
  if (size < 10) {
    error = "truncated .npy header";
    return false;
  }
  unsigned major = data[6], minor = data[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    error = "unsupported .npy format version " + std::to_string(major) + "." +
            std::to_string(minor);
    return false;
  }
  size_t prefix, headerLen;
  if (major == 1) {
    prefix = 10;
    headerLen = size_t(data[8]) | (size_t(data[9]) << 8);
  } else {
    prefix = 12;
    if (size < 12) {
      error = "truncated .npy header";
      return false;
    }
    headerLen = size_t(data[8]) | (size_t(data[9]) << 8) |
                (size_t(data[10]) << 16) | (size_t(data[11]) << 24);
  }
  if (headerLen > size - prefix) {
    error = "truncated .npy header (header length " +
            std::to_string(headerLen) + " exceeds the file)";
    return false;
  }
  const char *text = reinterpret_cast<const char *>(data + prefix);
  for (size_t i = 0; i < headerLen; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == 0 || (major < 3 && c >= 0x80)) {
      error = "malformed .npy header (invalid character)";
      return false;
    }
  }
  std::string descr;
  bool fortran = false;
  std::vector<int64_t> shape;
  HeaderParser parser(text, headerLen);
  std::string perr;
  if (!parser.parse(descr, fortran, shape, perr)) {
    error = "malformed .npy header: " + perr;
    return false;
  }
  DType dtype;
  if (!parseDescr(descr, dtype, error))
    return false;
  if (fortran) {
    error = "fortran_order arrays are not supported (save in C order)";
    return false;
  }
  size_t available = size - prefix - headerLen;
  size_t elemSize = dtypeSize(dtype);
  // Overflow-safe element count, bounded by what the file can hold.
  uint64_t count = 1;
  bool zero = false;
  for (int64_t d : shape)
    if (d == 0)
      zero = true;
  if (!zero) {
    for (int64_t d : shape) {
      if (uint64_t(d) > (uint64_t(available) / elemSize) / count) {
        error = "truncated data: shape " + shapeToString(shape) + " of " +
                dtypeName(dtype) + " needs more than the " +
                std::to_string(available) + " bytes present";
        return false;
      }
      count *= uint64_t(d);
    }
  } else {
    count = 0;
  }
  uint64_t nbytes = count * elemSize;
  if (nbytes != available) {
    if (nbytes > available)
      error = "truncated data: shape " + shapeToString(shape) + " of " +
              dtypeName(dtype) + " needs " + std::to_string(nbytes) +
              " bytes, the file has " + std::to_string(available);
    else
      error = "file has " + std::to_string(available - nbytes) +
              " unexpected bytes after the data";
    return false;
  }
  out.dtype = dtype;
  out.shape = std::move(shape);
  out.bytes.assign(data + prefix + headerLen, data + size);
  return true;
}

bool readNpy(const std::string &path, Array &out, std::string &error) {
  error.clear();
  FILE *f = std::fopen(path.c_str(), "rb");
  if (!f) {
    error = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  std::vector<uint8_t> buf;
  uint8_t chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof(chunk), f)) > 0)
    buf.insert(buf.end(), chunk, chunk + got);
  bool readError = std::ferror(f) != 0;
  std::fclose(f);
  if (readError) {
    error = path + ": read error";
    return false;
  }
  if (!parseNpy(buf.data(), buf.size(), out, error)) {
    error = path + ": " + error;
    return false;
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

bool serializeNpy(const Array &a, std::vector<uint8_t> &out,
                  std::string &error) {
  for (int64_t d : a.shape)
    if (d < 0) {
      error = "negative dimension in shape " + shapeToString(a.shape);
      return false;
    }
  if (a.bytes.size() != size_t(a.numElements()) * dtypeSize(a.dtype)) {
    error = "array data size does not match its shape " +
            shapeToString(a.shape);
    return false;
  }
  std::string dict = "{'descr': '";
  dict += dtypeDescr(a.dtype);
  dict += "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < a.shape.size(); ++i) {
    dict += std::to_string(a.shape[i]);
    if (a.shape.size() == 1 || i + 1 < a.shape.size())
      dict += a.shape.size() == 1 ? "," : ", ";
  }
  dict += "), }";
  // Pad with spaces so that magic + version + length + header is a multiple
  // of 64 bytes, ending in '\n' (as NumPy does).
  size_t prefix = 10;
  size_t total = prefix + dict.size() + 1;
  if (((total + 63) / 64) * 64 - prefix > 0xffff) {
    prefix = 12;
    total = prefix + dict.size() + 1;
  }
  total = ((total + 63) / 64) * 64;
  size_t headerLen = total - prefix;
  dict.append(headerLen - dict.size() - 1, ' ');
  dict += '\n';

  out.clear();
  out.reserve(total + a.bytes.size());
  out.insert(out.end(), kMagic, kMagic + 6);
  out.push_back(prefix == 10 ? 1 : 2);
  out.push_back(0);
  out.push_back(uint8_t(headerLen & 0xff));
  out.push_back(uint8_t((headerLen >> 8) & 0xff));
  if (prefix == 12) {
    out.push_back(uint8_t((headerLen >> 16) & 0xff));
    out.push_back(uint8_t((headerLen >> 24) & 0xff));
  }
  out.insert(out.end(), dict.begin(), dict.end());
  out.insert(out.end(), a.bytes.begin(), a.bytes.end());
  return true;
}

bool writeNpy(const std::string &path, const Array &a, std::string &error) {
  error.clear();
  std::vector<uint8_t> buf;
  if (!serializeNpy(a, buf, error)) {
    error = path + ": " + error;
    return false;
  }
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f) {
    error = path + ": cannot create: " + std::strerror(errno);
    return false;
  }
  size_t put = buf.empty() ? 0 : std::fwrite(buf.data(), 1, buf.size(), f);
  bool ok = put == buf.size();
  if (std::fclose(f) != 0)
    ok = false;
  if (!ok) {
    error = path + ": write error";
    std::remove(path.c_str());
    return false;
  }
  return true;
}

} // namespace npy
} // namespace attn
