//===- NpyTest.cpp - .npy I/O and float conversions ------------------------===//

#include "attn/Runtime/Npy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <unistd.h>

using namespace attn;
using namespace attn::npy;

namespace {

std::vector<uint8_t> bytesOf(const std::string &s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

/// A version 1.0 file with the given header text (padded like NumPy) and
/// `dataBytes` bytes of data.
std::vector<uint8_t> makeFile(const std::string &dict, size_t dataBytes,
                              int major = 1) {
  std::string header = dict;
  size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0)
    header += ' ';
  header += '\n';
  std::vector<uint8_t> out = bytesOf("\x93NUMPY");
  out.push_back(uint8_t(major));
  out.push_back(0);
  size_t len = header.size();
  out.push_back(uint8_t(len & 0xff));
  out.push_back(uint8_t((len >> 8) & 0xff));
  if (major != 1) {
    out.push_back(uint8_t((len >> 16) & 0xff));
    out.push_back(uint8_t((len >> 24) & 0xff));
  }
  out.insert(out.end(), header.begin(), header.end());
  for (size_t i = 0; i < dataBytes; ++i)
    out.push_back(uint8_t(i * 7 + 1));
  return out;
}

bool parse(const std::vector<uint8_t> &f, Array &a, std::string &err) {
  return parseNpy(f.data(), f.size(), a, err);
}

std::string tempPath(const std::string &name) {
  return ::testing::TempDir() + "npytest_" + std::to_string(getpid()) + "_" +
         name;
}

const DType kAllTypes[] = {DType::F64, DType::F32, DType::F16,
                           DType::I64, DType::I32, DType::U16,
                           DType::U8,  DType::I8,  DType::Bool};

} // namespace

//===----------------------------------------------------------------------===//
// Round trips
//===----------------------------------------------------------------------===//

TEST(Npy, RoundTripEveryDtype) {
  for (DType t : kAllTypes) {
    SCOPED_TRACE(dtypeName(t));
    Array a = makeArray(t, {2, 3, 4});
    for (int64_t i = 0; i < a.numElements(); ++i)
      a.setFromDouble(i, t == DType::Bool ? double(i % 2) : double(i % 50) - 7);
    std::vector<uint8_t> buf;
    std::string err;
    ASSERT_TRUE(serializeNpy(a, buf, err)) << err;
    Array b;
    ASSERT_TRUE(parse(buf, b, err)) << err;
    EXPECT_EQ(b.dtype, t);
    EXPECT_EQ(b.shape, a.shape);
    EXPECT_EQ(b.bytes, a.bytes);
    for (int64_t i = 0; i < a.numElements(); ++i) {
      double want = t == DType::Bool ? double(i % 2) : double(i % 50) - 7;
      if (t == DType::U8 || t == DType::U16)
        want = want < 0 ? 0 : want; // saturating cast of negatives
      EXPECT_EQ(b.getAsDouble(i), want) << i;
    }

    // And through a real file.
    std::string path = tempPath(std::string(dtypeName(t)) + ".npy");
    ASSERT_TRUE(writeNpy(path, a, err)) << err;
    Array c;
    ASSERT_TRUE(readNpy(path, c, err)) << err;
    EXPECT_EQ(c.dtype, t);
    EXPECT_EQ(c.shape, a.shape);
    EXPECT_EQ(c.bytes, a.bytes);
    std::remove(path.c_str());
  }
}

TEST(Npy, FloatValuesExact) {
  Array a = makeArray(DType::F32, {3});
  a.setFromDouble(0, 1.5);
  a.setFromDouble(1, -std::numeric_limits<double>::infinity());
  a.setFromDouble(2, std::nan(""));
  std::vector<uint8_t> buf;
  std::string err;
  ASSERT_TRUE(serializeNpy(a, buf, err));
  Array b;
  ASSERT_TRUE(parse(buf, b, err)) << err;
  EXPECT_EQ(b.getAsDouble(0), 1.5);
  EXPECT_TRUE(std::isinf(b.getAsDouble(1)) && b.getAsDouble(1) < 0);
  EXPECT_TRUE(std::isnan(b.getAsDouble(2)));

  Array h = makeArray(DType::F16, {2});
  h.setFromDouble(0, 0.1); // rounds to nearest half
  h.setFromDouble(1, 70000.0);
  EXPECT_EQ(h.getAsDouble(0), double(halfToFloat(0x2e66)));
  EXPECT_TRUE(std::isinf(h.getAsDouble(1)));
}

TEST(Npy, ScalarEmptyAndOneDimensional) {
  std::string err;
  for (auto shape : {std::vector<int64_t>{}, std::vector<int64_t>{0, 3},
                     std::vector<int64_t>{5}, std::vector<int64_t>{1, 1, 1, 1, 1}}) {
    Array a = makeArray(DType::F32, shape);
    std::vector<uint8_t> buf;
    ASSERT_TRUE(serializeNpy(a, buf, err)) << err;
    Array b;
    ASSERT_TRUE(parse(buf, b, err)) << err;
    EXPECT_EQ(b.shape, shape);
    EXPECT_EQ(b.numElements(), a.numElements());
  }
}

TEST(Npy, HeaderLooksLikeNumPys) {
  Array a = makeArray(DType::F32, {5});
  std::vector<uint8_t> buf;
  std::string err;
  ASSERT_TRUE(serializeNpy(a, buf, err));
  ASSERT_GE(buf.size(), 10u);
  EXPECT_EQ(std::memcmp(buf.data(), "\x93NUMPY\x01\x00", 8), 0);
  size_t len = buf[8] | (buf[9] << 8);
  EXPECT_EQ((10 + len) % 64, 0u);
  std::string header(buf.begin() + 10, buf.begin() + 10 + long(len));
  EXPECT_EQ(header.back(), '\n');
  EXPECT_EQ(header.rfind("{'descr': '<f4', 'fortran_order': False, "
                         "'shape': (5,), }",
                         0),
            0u);
  EXPECT_EQ(buf.size(), 10 + len + 20);

  Array m = makeArray(DType::U8, {2, 3});
  ASSERT_TRUE(serializeNpy(m, buf, err));
  header.assign(buf.begin() + 10, buf.end() - 6);
  EXPECT_NE(header.find("'descr': '|u1'"), std::string::npos);
  EXPECT_NE(header.find("'shape': (2, 3)"), std::string::npos);
}

TEST(Npy, Versions2And3AndVariants) {
  std::string err;
  Array a;
  const std::string dict =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  for (int major : {1, 2, 3}) {
    ASSERT_TRUE(parse(makeFile(dict, 24, major), a, err)) << major << err;
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  }
  // Double quotes, no trailing comma, other key order, Python 2 longs, '='.
  ASSERT_TRUE(parse(makeFile("{\"shape\": (2L, 3L), \"fortran_order\": False, "
                             "\"descr\": \"=f4\"}",
                             24),
                    a, err))
      << err;
  EXPECT_EQ(a.dtype, DType::F32);
  // One-byte types with any byte-order mark.
  ASSERT_TRUE(parse(makeFile("{'descr': 'u1', 'fortran_order': False, 'shape': (4,)}", 4),
                    a, err))
      << err;
  EXPECT_EQ(a.dtype, DType::U8);
  ASSERT_TRUE(parse(makeFile("{'descr': '<b1', 'fortran_order': False, 'shape': ()}", 1),
                    a, err))
      << err;
  EXPECT_EQ(a.dtype, DType::Bool);
  EXPECT_TRUE(a.shape.empty());
}

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

TEST(Npy, MalformedHeaders) {
  struct Case {
    std::string dict;
    size_t data;
    const char *message;
  };
  const Case cases[] = {
      {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, "big-endian"},
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, "fortran_order"},
      {"{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16, "unsupported dtype"},
      {"{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", 8, "byte order"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, "structured"},
      {"{'descr': '<f4', 'fortran_order': False}", 8, "lacks key 'shape'"},
      {"{'fortran_order': False, 'shape': (2,)}", 8, "lacks key 'descr'"},
      {"{'descr': '<f4', 'shape': (2,)}", 8, "lacks key 'fortran_order'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, "unexpected key"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8, "duplicate"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, "non-negative"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", 8, "shape"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8, "tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, }", 8, "shape"},
      {"{'descr': '<f4', 'fortran_order': false, 'shape': (2,), }", 8, "True or False"},
      {"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,), }", 8, "True or False"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }", 8, "malformed"},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }", 8, "expected ','"},
      {"{'descr' '<f4', 'fortran_order': False, 'shape': (2,), }", 8, "expected ':'"},
      {"{descr: '<f4', 'fortran_order': False, 'shape': (2,), }", 8, "quoted key"},
      {"'descr': '<f4', 'fortran_order': False, 'shape': (2,)", 8, "dict"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", 8, "after the header"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8, "too large"},
      {"", 8, "dict"},
      {"{", 8, "malformed"},
      {"{'descr': '", 8, "unterminated"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.dict);
    Array a;
    std::string err;
    EXPECT_FALSE(parse(makeFile(c.dict, c.data), a, err));
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
  }
}

TEST(Npy, BadMagicVersionAndLengths) {
  Array a;
  std::string err;
  EXPECT_FALSE(parseNpy(nullptr, 0, a, err));
  EXPECT_FALSE(err.empty());
  EXPECT_FALSE(parse(bytesOf("hello world, not npy"), a, err));
  EXPECT_NE(err.find("magic"), std::string::npos);
  EXPECT_FALSE(parse(bytesOf("\x93NUMPY"), a, err));
  EXPECT_NE(err.find("truncated"), std::string::npos);

  std::vector<uint8_t> f = makeFile(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
  std::vector<uint8_t> g = f;
  g[6] = 4;
  EXPECT_FALSE(parse(g, a, err));
  EXPECT_NE(err.find("version 4.0"), std::string::npos);
  g = f;
  g[7] = 1;
  EXPECT_FALSE(parse(g, a, err));
  EXPECT_NE(err.find("version"), std::string::npos);
  g = f;
  g[8] = 0xff;
  g[9] = 0xff; // header length past the end
  EXPECT_FALSE(parse(g, a, err));
  EXPECT_NE(err.find("truncated"), std::string::npos);
  // Version 2 with a 4-byte length that is huge.
  std::vector<uint8_t> v2 = makeFile(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, 2);
  v2[11] = 0x7f;
  EXPECT_FALSE(parse(v2, a, err));
  EXPECT_NE(err.find("truncated"), std::string::npos);
  // Non-ASCII and NUL bytes in a 1.0 header.
  g = f;
  g[20] = 0xc3;
  EXPECT_FALSE(parse(g, a, err));
  g = f;
  g[20] = 0;
  EXPECT_FALSE(parse(g, a, err));
}

TEST(Npy, TruncatedAndTrailingData) {
  std::vector<uint8_t> f = makeFile(
      "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", 48);
  Array a;
  std::string err;
  ASSERT_TRUE(parse(f, a, err)) << err;
  // Every proper prefix is an error, never a crash.
  for (size_t n = 0; n < f.size(); ++n) {
    std::vector<uint8_t> g(f.begin(), f.begin() + long(n));
    EXPECT_FALSE(parse(g, a, err)) << n;
    EXPECT_FALSE(err.empty());
  }
  std::vector<uint8_t> g(f.begin(), f.end() - 1);
  EXPECT_FALSE(parse(g, a, err));
  EXPECT_NE(err.find("truncated data"), std::string::npos) << err;
  g = f;
  g.push_back(0);
  EXPECT_FALSE(parse(g, a, err));
  EXPECT_NE(err.find("unexpected bytes"), std::string::npos) << err;
}

TEST(Npy, HugeShapesDoNotAllocate) {
  Array a;
  std::string err;
  EXPECT_FALSE(parse(makeFile("{'descr': '<f4', 'fortran_order': False, "
                              "'shape': (4611686018427387904, 4611686018427387904), }",
                              16),
                     a, err));
  EXPECT_NE(err.find("truncated"), std::string::npos) << err;
  EXPECT_FALSE(parse(makeFile("{'descr': '<f8', 'fortran_order': False, "
                              "'shape': (9223372036854775807,), }",
                              16),
                     a, err));
  // A zero dimension makes any other dimension harmless.
  EXPECT_TRUE(parse(makeFile("{'descr': '<f8', 'fortran_order': False, "
                             "'shape': (0, 9223372036854775807), }",
                             0),
                    a, err))
      << err;
  EXPECT_EQ(a.numElements(), 0);
}

TEST(Npy, MutatedHeadersNeverCrash) {
  std::vector<uint8_t> f = makeFile(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
  std::mt19937 rng(1234);
  const uint8_t specials[] = {0, '\'', '"', '(', ')', ',', '{', '}', ':',
                              '9', '-', ' ', 'L', 0x80, 0xff, '\\'};
  for (size_t pos = 0; pos < 74; ++pos)
    for (uint8_t v : specials) {
      std::vector<uint8_t> g = f;
      g[pos] = v;
      Array a;
      std::string err;
      if (!parse(g, a, err)) {
        EXPECT_FALSE(err.empty());
      } else {
        EXPECT_EQ(a.bytes.size(), size_t(a.numElements()) * dtypeSize(a.dtype));
      }
    }
  for (int iter = 0; iter < 2000; ++iter) {
    std::vector<uint8_t> g = f;
    int n = 1 + int(rng() % 4);
    for (int i = 0; i < n; ++i)
      g[rng() % g.size()] = uint8_t(rng());
    if (rng() % 3 == 0)
      g.resize(rng() % g.size());
    Array a;
    std::string err;
    if (!parse(g, a, err)) {
      EXPECT_FALSE(err.empty());
    }
  }
}

TEST(Npy, FileErrorsNameThePath) {
  Array a;
  std::string err;
  std::string missing = tempPath("does_not_exist.npy");
  EXPECT_FALSE(readNpy(missing, a, err));
  EXPECT_NE(err.find(missing), std::string::npos) << err;

  std::string bad = tempPath("bad.npy");
  FILE *f = std::fopen(bad.c_str(), "wb");
  ASSERT_TRUE(f);
  std::fputs("not numpy at all", f);
  std::fclose(f);
  EXPECT_FALSE(readNpy(bad, a, err));
  EXPECT_NE(err.find(bad), std::string::npos) << err;
  EXPECT_NE(err.find("magic"), std::string::npos) << err;
  std::remove(bad.c_str());

  EXPECT_FALSE(writeNpy("/nonexistent_dir_xyz/o.npy", makeArray(DType::F32, {1}), err));
  EXPECT_NE(err.find("/nonexistent_dir_xyz/o.npy"), std::string::npos) << err;
}

TEST(Npy, ShapeToString) {
  EXPECT_EQ(shapeToString({2, 4, 130, 64}), "[2, 4, 130, 64]");
  EXPECT_EQ(shapeToString({}), "[]");
  EXPECT_EQ(shapeToString({7}), "[7]");
}

//===----------------------------------------------------------------------===//
// Conversions
//===----------------------------------------------------------------------===//

static uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
static float floatOf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(Conversions, HalfKnownValues) {
  EXPECT_EQ(floatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(floatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(floatToHalf(0.0f), 0x0000);
  EXPECT_EQ(floatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(floatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(floatToHalf(65519.99f), 0x7bff);
  EXPECT_EQ(floatToHalf(65520.0f), 0x7c00); // tie to even: infinity
  EXPECT_EQ(floatToHalf(1e10f), 0x7c00);
  EXPECT_EQ(floatToHalf(-1e10f), 0xfc00);
  EXPECT_EQ(floatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(floatToHalf(-std::numeric_limits<float>::infinity()), 0xfc00);
  // Ties to even in the normal range: 1 + 2^-11 is halfway 1 and 1 + 2^-10.
  EXPECT_EQ(floatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(floatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(floatToHalf(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);
  // Subnormals: units of 2^-24.
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -25)), 0x0000); // tie -> even 0
  EXPECT_EQ(floatToHalf(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(floatToHalf(std::ldexp(3.0f, -25)), 0x0002); // 1.5 units -> 2
  EXPECT_EQ(floatToHalf(std::ldexp(5.0f, -25)), 0x0002); // 2.5 units -> 2
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -14)), 0x0400); // smallest normal
  EXPECT_EQ(floatToHalf(std::ldexp(1023.5f, -24)), 0x0400); // carry to normal
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -30)), 0x0000);
  EXPECT_EQ(floatToHalf(-std::ldexp(1.0f, -30)), 0x8000);
  // NaN stays a (quiet) NaN.
  uint16_t n = floatToHalf(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(n & 0x7c00, 0x7c00);
  EXPECT_NE(n & 0x03ff, 0);
  n = floatToHalf(floatOf(0x7f800001u)); // signalling NaN, low payload
  EXPECT_EQ(n & 0x7c00, 0x7c00);
  EXPECT_NE(n & 0x03ff, 0);
  EXPECT_TRUE(std::isnan(halfToFloat(n)));

  EXPECT_EQ(halfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(halfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(halfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(halfToFloat(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(bitsOf(halfToFloat(0x8000)), 0x80000000u);
  EXPECT_TRUE(std::isinf(halfToFloat(0x7c00)));
  EXPECT_TRUE(std::isnan(halfToFloat(0x7e00)));
}

TEST(Conversions, HalfRoundTripsExhaustively) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = halfToFloat(uint16_t(h));
    if (std::isnan(f)) {
      EXPECT_EQ(floatToHalf(f) & 0x7c00, 0x7c00);
      continue;
    }
    ASSERT_EQ(floatToHalf(f), h) << std::hex << h;
  }
}

TEST(Conversions, HalfRoundsToNearestEven) {
  // Compare against an exact rounding computed in double: for every float
  // between consecutive halves, the nearest (ties to even) half.
  std::mt19937 rng(7);
  for (int iter = 0; iter < 200000; ++iter) {
    uint32_t u = rng();
    float f = floatOf(u);
    if (std::isnan(f))
      continue;
    uint16_t h = floatToHalf(f);
    double fd = f;
    if (std::fabs(fd) >= 65520.0) {
      ASSERT_EQ(h & 0x7fff, 0x7c00) << f;
      continue;
    }
    double got = halfToFloat(h);
    // Neighbours of the result.
    uint16_t mag = h & 0x7fff;
    double up = mag < 0x7bff ? halfToFloat(uint16_t(mag + 1)) : 65536.0;
    double down = mag > 0 ? halfToFloat(uint16_t(mag - 1)) : -double(halfToFloat(1));
    double a = std::fabs(fd), g = std::fabs(got);
    ASSERT_LE(std::fabs(a - g), std::fabs(a - up)) << f;
    ASSERT_LE(std::fabs(a - g), std::fabs(a - down)) << f;
    if (std::fabs(a - g) == std::fabs(a - up) ||
        (mag > 0 && std::fabs(a - g) == std::fabs(a - down))) {
      ASSERT_EQ(mag & 1, 0) << "tie not to even for " << f;
    }
    if (got != 0) {
      ASSERT_EQ(std::signbit(got), std::signbit(fd));
    }
  }
#if defined(__FLT16_MAX__) && (defined(__x86_64__) || defined(__aarch64__))
  // Cross-check against the compiler's own conversion where there is one.
  for (int iter = 0; iter < 200000; ++iter) {
    float f = floatOf(rng());
    if (std::isnan(f))
      continue;
    _Float16 c = static_cast<_Float16>(f);
    uint16_t cb;
    std::memcpy(&cb, &c, 2);
    ASSERT_EQ(floatToHalf(f), cb) << f;
  }
#endif
}

TEST(Conversions, Bf16) {
  EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(floatToBf16(-2.0f), 0xc000);
  EXPECT_EQ(floatToBf16(floatOf(0x3f808000u)), 0x3f80); // tie -> even
  EXPECT_EQ(floatToBf16(floatOf(0x3f818000u)), 0x3f82); // tie -> even (up)
  EXPECT_EQ(floatToBf16(floatOf(0x3f808001u)), 0x3f81);
  EXPECT_EQ(floatToBf16(floatOf(0x3f807fffu)), 0x3f80);
  EXPECT_EQ(floatToBf16(floatOf(0x7f7fffffu)), 0x7f80); // overflow -> inf
  EXPECT_EQ(floatToBf16(floatOf(0x7f7f7fffu)), 0x7f7f);
  EXPECT_EQ(floatToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(floatToBf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(floatToBf16(-0.0f), 0x8000);
  EXPECT_EQ(floatToBf16(floatOf(0x00018000u)), 0x0002); // subnormal tie
  uint16_t n = floatToBf16(floatOf(0x7f800001u)); // NaN with low payload only
  EXPECT_TRUE(std::isnan(bf16ToFloat(n)));
  n = floatToBf16(floatOf(0xffc00000u));
  EXPECT_TRUE(std::isnan(bf16ToFloat(n)));
  EXPECT_EQ(n & 0x8000, 0x8000);
  EXPECT_EQ(bf16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(bf16ToFloat(0x4049), floatOf(0x40490000u));
  for (uint32_t b = 0; b < 0x10000; ++b) {
    float f = bf16ToFloat(uint16_t(b));
    if (!std::isnan(f)) {
      ASSERT_EQ(floatToBf16(f), b);
    }
  }
  // Round to nearest: the result is never farther than half an ulp.
  std::mt19937 rng(11);
  for (int iter = 0; iter < 100000; ++iter) {
    float f = floatOf(rng());
    if (std::isnan(f) || std::isinf(f) || std::fabs(f) > 3e38f)
      continue;
    double err = std::fabs(double(f) - double(roundToBf16(f)));
    double ulp = std::ldexp(1.0, std::ilogb(f) - 7);
    if (std::fpclassify(f) == FP_SUBNORMAL || f == 0)
      ulp = std::ldexp(1.0, -133);
    ASSERT_LE(err, ulp / 2) << f;
  }
}
