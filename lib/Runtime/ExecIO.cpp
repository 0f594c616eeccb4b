//===- ExecIO.cpp - attn-exec's input and output directories --------------===//

#include "attn/Runtime/ExecIO.h"
#include "attn/Runtime/Npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <unistd.h>

namespace attn {
namespace {

namespace fs = std::filesystem;

/// The named sizes of a run; -1 while unbound.
enum Slot { SB, SHq, SHkv, SSq, SSk, SDqk, SDv, NumSlots };

/// One expected dimension: a size slot, a fixed number, or "slot or 1".
struct Dim {
  int slot = -1;
  int64_t fixed = -1;
  bool orOne = false;
  std::string name; ///< as shown in messages, e.g. "Hkv" or "ceil(Sq/block_q)"
};

class Loader {
public:
  Loader(const Spec &s, const std::string &d) : spec(s), dir(d) {
    linear = spec.kind != VariantKind::Attention;
    for (int64_t &v : size)
      v = -1;
    auto bindStatic = [&](int slot, int64_t v) {
      if (v != kDynamic && v > 0)
        size[slot] = v;
    };
    bindStatic(SB, spec.batch);
    bindStatic(SHq, spec.headsQ);
    bindStatic(SHkv, linear ? spec.headsQ : spec.headsKV);
    bindStatic(SSq, spec.seqQ);
    bindStatic(SSk, linear ? spec.seqQ : spec.seqK);
    bindStatic(SDqk, spec.headDim);
    bindStatic(SDv, spec.headDimV);
  }

  bool load(ExecInputs &in, std::string &error);

private:
  const Spec &spec;
  std::string dir;
  bool linear;
  int64_t size[NumSlots];

  // In linear kinds Hq/Hkv are one size H and Sq/Sk one size S.
  int canon(int slot) const {
    if (linear && slot == SHkv)
      return SHq;
    if (linear && slot == SSk)
      return SSq;
    return slot;
  }
  const char *slotName(int slot) const {
    static const char *attnNames[] = {"B", "Hq", "Hkv", "Sq", "Sk", "Dqk", "Dv"};
    static const char *linNames[] = {"B", "H", "H", "S", "S", "Dqk", "Dv"};
    return (linear ? linNames : attnNames)[slot];
  }
  Dim dim(int slot) const {
    Dim d;
    d.slot = canon(slot);
    d.name = slotName(slot);
    return d;
  }
  Dim fixedDim(int64_t v, std::string name) const {
    Dim d;
    d.fixed = v;
    d.name = std::move(name);
    return d;
  }
  int64_t expectedOf(const Dim &d) const {
    return d.slot >= 0 ? size[d.slot] : d.fixed;
  }

  std::string path(const std::string &file) const {
    return (fs::path(dir) / file).string();
  }

  bool read(const std::string &file, npy::Array &a, std::string &error);
  bool checkDtype(const std::string &file, const npy::Array &a,
                  std::initializer_list<npy::DType> allowed,
                  const std::string &what, std::string &error);
  bool checkShape(const std::string &file, const npy::Array &a,
                  const std::vector<Dim> &want, std::string &error);
  bool loadQKV(const std::string &file, int hSlot, int sSlot, int dSlot,
               HostArray &out, std::string &error);
  bool loadF32(const std::string &file, const std::vector<Dim> &want,
               HostArray &out, std::string &error);
};

bool Loader::read(const std::string &file, npy::Array &a, std::string &error) {
  std::string p = path(file);
  std::error_code ec;
  if (!fs::exists(p, ec)) {
    error = file + ": missing: " + p + " does not exist";
    return false;
  }
  std::string err;
  if (!npy::readNpy(p, a, err)) {
    // readNpy prefixes the full path; name the file first.
    error = file + ": " + (err.compare(0, p.size() + 2, p + ": ") == 0
                               ? err.substr(p.size() + 2)
                               : err) +
            " (" + p + ")";
    return false;
  }
  return true;
}

bool Loader::checkDtype(const std::string &file, const npy::Array &a,
                        std::initializer_list<npy::DType> allowed,
                        const std::string &what, std::string &error) {
  for (npy::DType t : allowed)
    if (a.dtype == t)
      return true;
  error = file + ": dtype " + npy::dtypeName(a.dtype) + " ('" +
          npy::dtypeDescr(a.dtype) + "') is not accepted; expected " + what;
  return false;
}

bool Loader::checkShape(const std::string &file, const npy::Array &a,
                        const std::vector<Dim> &want, std::string &error) {
  bool ok = a.shape.size() == want.size();
  for (size_t i = 0; ok && i < want.size(); ++i) {
    int64_t e = expectedOf(want[i]);
    int64_t got = a.shape[i];
    if (want[i].orOne && got == 1)
      continue;
    if (e >= 0 && got != e)
      ok = false;
  }
  if (ok) {
    // Every size must be at least 1.
    for (size_t i = 0; i < want.size(); ++i)
      if (a.shape[i] < 1) {
        error = file + ": dimension " + want[i].name + " is " +
                std::to_string(a.shape[i]) + " in shape " +
                npy::shapeToString(a.shape) + "; all sizes must be >= 1";
        return false;
      }
    // Bind the free sizes.
    for (size_t i = 0; i < want.size(); ++i)
      if (want[i].slot >= 0 && size[want[i].slot] < 0)
        size[want[i].slot] = a.shape[i];
    return true;
  }
  std::string exp = "[", names = "[";
  for (size_t i = 0; i < want.size(); ++i) {
    if (i) {
      exp += ", ";
      names += ", ";
    }
    int64_t e = expectedOf(want[i]);
    if (e < 0 && a.shape.size() == want.size())
      e = a.shape[i]; // free: any size is accepted, show the one given
    exp += e >= 0 ? std::to_string(e) : want[i].name;
    if (want[i].orOne)
      exp += " or 1";
    names += want[i].name;
    if (want[i].orOne)
      names += " or 1";
  }
  exp += "]";
  names += "]";
  error = file + ": expected shape " + exp + " (" + names + "), got " +
          npy::shapeToString(a.shape);
  return false;
}

static double toElementType(ElementType t, double v) {
  switch (t) {
  case ElementType::F32: return double(float(v));
  case ElementType::F16: return double(roundToHalf(float(v)));
  case ElementType::BF16: return double(roundToBf16(float(v)));
  }
  return v;
}

bool Loader::loadQKV(const std::string &file, int hSlot, int sSlot, int dSlot,
                     HostArray &out, std::string &error) {
  npy::Array a;
  if (!read(file, a, error))
    return false;
  std::string what = "float32";
  if (spec.dtype == ElementType::F16)
    what = "float32 or float16 (the spec's element type is f16)";
  else if (spec.dtype == ElementType::BF16)
    what = "float32 or uint16 bf16 bit patterns (the spec's element type is "
           "bf16)";
  std::vector<npy::DType> allowed = {npy::DType::F32};
  if (spec.dtype == ElementType::F16)
    allowed.push_back(npy::DType::F16);
  if (spec.dtype == ElementType::BF16)
    allowed.push_back(npy::DType::U16);
  bool dtOk = false;
  for (npy::DType t : allowed)
    dtOk = dtOk || a.dtype == t;
  if (!dtOk)
    return checkDtype(file, a, {}, what, error);

  bool bshd = spec.layout == Layout::BSHD;
  std::vector<Dim> want = {dim(SB), bshd ? dim(sSlot) : dim(hSlot),
                           bshd ? dim(hSlot) : dim(sSlot), dim(dSlot)};
  if (!checkShape(file, a, want, error))
    return false;
  int64_t B = a.shape[0], H = a.shape[bshd ? 2 : 1], S = a.shape[bshd ? 1 : 2],
          D = a.shape[3];
  out = HostArray({B, H, S, D});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t d = 0; d < D; ++d) {
          int64_t src = bshd ? ((b * S + s) * H + h) * D + d
                             : ((b * H + h) * S + s) * D + d;
          double v;
          if (a.dtype == npy::DType::U16) {
            uint16_t bits;
            std::memcpy(&bits, a.bytes.data() + size_t(src) * 2, 2);
            v = bf16ToFloat(bits);
          } else {
            v = toElementType(spec.dtype, a.getAsDouble(src));
          }
          out.data[size_t(((b * H + h) * S + s) * D + d)] = v;
        }
  return true;
}

bool Loader::loadF32(const std::string &file, const std::vector<Dim> &want,
                     HostArray &out, std::string &error) {
  npy::Array a;
  if (!read(file, a, error) ||
      !checkDtype(file, a, {npy::DType::F32}, "float32", error) ||
      !checkShape(file, a, want, error))
    return false;
  out = HostArray(a.shape);
  for (int64_t i = 0; i < a.numElements(); ++i)
    out.data[size_t(i)] = a.getAsDouble(i);
  return true;
}

bool Loader::load(ExecInputs &in, std::string &error) {
  in = ExecInputs();
  if (!loadQKV("q.npy", SHq, SSq, SDqk, in.q, error) ||
      !loadQKV("k.npy", SHkv, SSk, SDqk, in.k, error))
    return false;
  if (!linear && size[SHq] % size[SHkv] != 0) {
    error = "k.npy: query heads Hq = " + std::to_string(size[SHq]) +
            " (q.npy) is not a multiple of key/value heads Hkv = " +
            std::to_string(size[SHkv]);
    return false;
  }
  if (!loadQKV("v.npy", SHkv, SSk, SDv, in.v, error))
    return false;

  if (spec.kind == VariantKind::Attention) {
    if (spec.blockSparse) {
      int64_t bq = spec.blockSparse->first, bk = spec.blockSparse->second;
      if (bq < 1 || bk < 1) {
        error = "block sizes must be positive";
        return false;
      }
      const std::string file = "block_mask.npy";
      npy::Array a;
      if (!read(file, a, error) ||
          !checkDtype(file, a, {npy::DType::U8, npy::DType::I8, npy::DType::Bool},
                      "uint8", error))
        return false;
      Dim db = dim(SB), dh = dim(SHq);
      db.orOne = dh.orOne = true;
      std::vector<Dim> want = {
          db, dh, fixedDim((size[SSq] + bq - 1) / bq, "ceil(Sq/block_q)"),
          fixedDim((size[SSk] + bk - 1) / bk, "ceil(Sk/block_k)")};
      if (!checkShape(file, a, want, error))
        return false;
      HostArray m(a.shape);
      for (int64_t i = 0; i < a.numElements(); ++i)
        m.data[size_t(i)] = a.getAsDouble(i) != 0 ? 1.0 : 0.0;
      in.blockMask = std::move(m);
    }
    if (spec.documents) {
      for (int which = 0; which < 2; ++which) {
        const std::string file = which == 0 ? "q_doc_ids.npy" : "kv_doc_ids.npy";
        npy::Array a;
        if (!read(file, a, error) ||
            !checkDtype(file, a, {npy::DType::I32}, "int32", error) ||
            !checkShape(file, a, {dim(SB), dim(which == 0 ? SSq : SSk)}, error))
          return false;
        HostArray ids(a.shape);
        for (int64_t i = 0; i < a.numElements(); ++i)
          ids.data[size_t(i)] = a.getAsDouble(i);
        (which == 0 ? in.qDocIds : in.kvDocIds) = std::move(ids);
      }
    }
    if (spec.alibi != AlibiShape::None) {
      std::vector<Dim> want;
      if (spec.alibi == AlibiShape::PerBatchHead)
        want.push_back(dim(SB));
      want.push_back(dim(SHq));
      HostArray s;
      if (!loadF32("alibi_slopes.npy", want, s, error))
        return false;
      in.alibiSlopes = std::move(s);
    }
    for (const TensorDecl &d : spec.tensors) {
      const std::string file = d.name + ".npy";
      npy::Array a;
      bool isInt = d.elementType == TensorElementType::I32;
      if (!read(file, a, error) ||
          !checkDtype(file, a, {isInt ? npy::DType::I32 : npy::DType::F32},
                      std::string(isInt ? "int32" : "float32") +
                          " (tensor '" + d.name + "' is declared " +
                          (isInt ? "i32" : "f32") + ")",
                      error))
        return false;
      std::vector<Dim> want;
      for (size_t i = 0; i < d.shape.size(); ++i) {
        bool dynamic = d.shape[i] < 0;
        want.push_back(fixedDim(dynamic ? -1 : d.shape[i],
                                dynamic ? "?" : std::to_string(d.shape[i])));
      }
      if (!checkShape(file, a, want, error))
        return false;
      HostArray t(a.shape);
      for (int64_t i = 0; i < a.numElements(); ++i)
        t.data[size_t(i)] = a.getAsDouble(i);
      in.tensors.emplace_back(d.name, std::move(t));
    }
  } else {
    if (spec.kind == VariantKind::GatedLinearAttention) {
      std::vector<Dim> want;
      switch (spec.gate) {
      case GateKindSpec::Scalar: want = {dim(SB), dim(SHq), dim(SSq)}; break;
      case GateKindSpec::Vector:
        want = {dim(SB), dim(SHq), dim(SSq), dim(SDqk)};
        break;
      case GateKindSpec::HeadConstant: want = {dim(SHq)}; break;
      }
      HostArray g;
      if (!loadF32("g.npy", want, g, error))
        return false;
      in.gates = std::move(g);
    }
    if (spec.initialState) {
      HostArray h0;
      if (!loadF32("h0.npy", {dim(SB), dim(SHq), dim(SDqk), dim(SDv)}, h0,
                   error))
        return false;
      in.initialState = std::move(h0);
    }
  }

  // Refuse sizes whose outputs could not be held (rather than dying in an
  // allocation): each output array must stay below 2^31 elements.
  const double kMaxElements = double(int64_t(1) << 31);
  double outElems = double(size[SB]) * double(size[SHq]) * double(size[SSq]) *
                    double(size[SDv]);
  double stateElems = double(size[SB]) * double(size[SHq]) *
                      double(size[SDqk]) * double(size[SDv]);
  if (outElems >= kMaxElements || (linear && stateElems >= kMaxElements)) {
    error = "v.npy: the output o [B, Hq, Sq, Dv] = [" +
            std::to_string(size[SB]) + ", " + std::to_string(size[SHq]) + ", " +
            std::to_string(size[SSq]) + ", " + std::to_string(size[SDv]) +
            "] (or the state) would be too large";
    return false;
  }

  in.B = size[SB];
  in.Hq = size[SHq];
  in.Hkv = size[canon(SHkv)];
  in.Sq = size[SSq];
  in.Sk = size[canon(SSk)];
  in.Dqk = size[SDqk];
  in.Dv = size[SDv];
  return true;
}

//===----------------------------------------------------------------------===//
// Output
//===----------------------------------------------------------------------===//

struct PendingFile {
  std::string tmp, final;
};

static void removeAll(const std::vector<PendingFile> &files) {
  for (const PendingFile &f : files)
    std::remove(f.tmp.c_str());
}

static npy::Array toF32(const HostArray &h) {
  npy::Array a = npy::makeArray(npy::DType::F32, h.shape);
  for (int64_t i = 0; i < h.numElements(); ++i) {
    float f = float(h.data[size_t(i)]);
    std::memcpy(a.bytes.data() + size_t(i) * 4, &f, 4);
  }
  return a;
}

static bool checkOut(const char *what, const HostArray &h, size_t rank,
                     std::string &error) {
  if (h.shape.size() != rank ||
      h.data.size() != size_t(HostArray::numElementsOf(h.shape))) {
    error = std::string(what) + ": the device produced an array of shape " +
            npy::shapeToString(h.shape) + " holding " +
            std::to_string(h.data.size()) + " values";
    return false;
  }
  return true;
}

} // namespace

bool loadInputs(const Spec &spec, const std::string &dir, ExecInputs &in,
                std::string &error) {
  error.clear();
  Loader loader(spec, dir);
  return loader.load(in, error);
}

bool writeOutputs(const Spec &spec, const std::string &dir,
                  const ExecOutputs &out, std::string &error) {
  error.clear();
  // Assemble every array first, so that nothing is written if one is bad.
  std::vector<std::pair<std::string, npy::Array>> arrays;
  if (!checkOut("o.npy", out.out, 4, error))
    return false;
  if (spec.layout == Layout::BSHD) {
    const auto &s = out.out.shape;
    int64_t B = s[0], H = s[1], S = s[2], D = s[3];
    HostArray t({B, S, H, D});
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < S; ++i)
          for (int64_t d = 0; d < D; ++d)
            t.data[size_t(((b * S + i) * H + h) * D + d)] =
                out.out.data[size_t(((b * H + h) * S + i) * D + d)];
    arrays.emplace_back("o.npy", toF32(t));
  } else {
    arrays.emplace_back("o.npy", toF32(out.out));
  }
  if (spec.kind == VariantKind::Attention) {
    if (!out.lse) {
      error = "lse.npy: the device produced no log-sum-exp";
      return false;
    }
    if (!checkOut("lse.npy", *out.lse, 3, error))
      return false;
    arrays.emplace_back("lse.npy", toF32(*out.lse));
  } else if (spec.finalState) {
    if (!out.finalState) {
      error = "ht.npy: the device produced no final state";
      return false;
    }
    if (!checkOut("ht.npy", *out.finalState, 4, error))
      return false;
    arrays.emplace_back("ht.npy", toF32(*out.finalState));
  }

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec)) {
    error = dir + ": cannot create the output directory";
    return false;
  }

  std::vector<PendingFile> pending;
  std::string suffix = ".tmp." + std::to_string(long(getpid()));
  for (auto &[name, arr] : arrays) {
    PendingFile f;
    f.final = (fs::path(dir) / name).string();
    f.tmp = (fs::path(dir) / ("." + name + suffix)).string();
    pending.push_back(f);
    if (!npy::writeNpy(f.tmp, arr, error)) {
      removeAll(pending);
      return false;
    }
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    if (std::rename(pending[i].tmp.c_str(), pending[i].final.c_str()) != 0) {
      error = pending[i].final + ": cannot rename into place: " +
              std::strerror(errno);
      std::vector<PendingFile> rest(pending.begin() + long(i), pending.end());
      removeAll(rest);
      for (size_t j = 0; j < i; ++j)
        std::remove(pending[j].final.c_str());
      return false;
    }
  }
  return true;
}

} // namespace attn
