//===- Reference.cpp - float64 reference of every variant -----------------===//
//
// Straight per-element loops, nothing clever: the point of this file is to be
// obviously right. See AttnOps.td for the semantics implemented here.
//
//===----------------------------------------------------------------------===//

#include "attn/Reference/Reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace attn {

//===----------------------------------------------------------------------===//
// Expression evaluation
//===----------------------------------------------------------------------===//

static std::string at(const Expr &e) {
  return e.column > 0 ? " (column " + std::to_string(e.column) + ")" : "";
}

static double asDouble(const ExprValue &v) {
  return v.type == ExprType::Float ? v.f : double(v.i);
}

static ExprValue makeInt(int64_t i) {
  ExprValue v;
  v.type = ExprType::Int;
  v.i = i;
  return v;
}
static ExprValue makeBool(bool b) {
  ExprValue v;
  v.type = ExprType::Bool;
  v.i = b ? 1 : 0;
  return v;
}
static ExprValue makeFloat(double f) {
  ExprValue v;
  v.type = ExprType::Float;
  v.f = f;
  return v;
}

// Two's complement wrap-around without undefined behaviour.
static int64_t wrapAdd(int64_t a, int64_t b) {
  return int64_t(uint64_t(a) + uint64_t(b));
}
static int64_t wrapSub(int64_t a, int64_t b) {
  return int64_t(uint64_t(a) - uint64_t(b));
}
static int64_t wrapMul(int64_t a, int64_t b) {
  return int64_t(uint64_t(a) * uint64_t(b));
}

// min / max that propagate NaN (as arith.minimumf / maximumf).
static double fminNaN(double a, double b) {
  if (std::isnan(a) || std::isnan(b))
    return std::numeric_limits<double>::quiet_NaN();
  return a < b ? a : b;
}
static double fmaxNaN(double a, double b) {
  if (std::isnan(a) || std::isnan(b))
    return std::numeric_limits<double>::quiet_NaN();
  return a > b ? a : b;
}

bool evaluateExpr(const Expr &e, const ExprEnv &env, ExprValue &r,
                  std::string &error) {
  switch (e.kind) {
  case ExprKind::IntLiteral:
    r = makeInt(e.intValue);
    return true;
  case ExprKind::BoolLiteral:
    r = makeBool(e.intValue != 0);
    return true;
  case ExprKind::FloatLiteral:
    r = makeFloat(e.floatValue);
    return true;
  case ExprKind::Var:
    switch (e.var) {
    case ExprVar::B: r = makeInt(env.b); return true;
    case ExprVar::H: r = makeInt(env.h); return true;
    case ExprVar::Q: r = makeInt(env.q); return true;
    case ExprVar::K: r = makeInt(env.k); return true;
    case ExprVar::Sq: r = makeInt(env.Sq); return true;
    case ExprVar::Sk: r = makeInt(env.Sk); return true;
    case ExprVar::Score: r = makeFloat(env.score); return true;
    }
    error = "unknown variable" + at(e);
    return false;
  case ExprKind::IntToFloat: {
    if (e.operands.size() != 1) {
      error = "malformed int-to-float node" + at(e);
      return false;
    }
    ExprValue v;
    if (!evaluateExpr(*e.operands[0], env, v, error))
      return false;
    r = makeFloat(asDouble(v));
    return true;
  }
  case ExprKind::Index: {
    if (!env.tensors || e.tensorIndex < 0 ||
        size_t(e.tensorIndex) >= env.tensors->size()) {
      error = "expression reads an unbound tensor" + at(e);
      return false;
    }
    const auto &named = (*env.tensors)[size_t(e.tensorIndex)];
    const HostArray &t = named.second;
    if (e.operands.size() != t.shape.size()) {
      error = "tensor '" + named.first + "' indexed with " +
              std::to_string(e.operands.size()) + " indices, has rank " +
              std::to_string(t.shape.size()) + at(e);
      return false;
    }
    int64_t off = 0;
    for (size_t d = 0; d < e.operands.size(); ++d) {
      ExprValue iv;
      if (!evaluateExpr(*e.operands[d], env, iv, error))
        return false;
      int64_t idx = iv.type == ExprType::Float ? int64_t(iv.f) : iv.i;
      if (idx < 0 || idx >= t.shape[d]) {
        error = "index " + std::to_string(idx) + " out of range [0, " +
                std::to_string(t.shape[d]) + ") in dimension " +
                std::to_string(d) + " of tensor '" + named.first + "'" + at(e);
        return false;
      }
      off = off * t.shape[d] + idx;
    }
    double v = t.data[size_t(off)];
    if (e.type == ExprType::Float)
      r = makeFloat(v);
    else if (e.type == ExprType::Bool)
      r = makeBool(v != 0);
    else
      r = makeInt(int64_t(v));
    return true;
  }
  case ExprKind::Unary: {
    if (e.operands.size() != 1) {
      error = "malformed unary node" + at(e);
      return false;
    }
    ExprValue v;
    if (!evaluateExpr(*e.operands[0], env, v, error))
      return false;
    if (e.op == "!") {
      r = makeBool(asDouble(v) == 0);
      return true;
    }
    if (e.op == "-") {
      r = v.type == ExprType::Float ? makeFloat(-v.f) : makeInt(wrapSub(0, v.i));
      return true;
    }
    error = "unknown unary operator '" + e.op + "'" + at(e);
    return false;
  }
  case ExprKind::Binary: {
    if (e.operands.size() != 2) {
      error = "malformed binary node" + at(e);
      return false;
    }
    ExprValue a, b;
    if (!evaluateExpr(*e.operands[0], env, a, error))
      return false;
    if (e.op == "&&" || e.op == "||") {
      bool av = asDouble(a) != 0;
      if (e.op == "&&" && !av) {
        r = makeBool(false);
        return true;
      }
      if (e.op == "||" && av) {
        r = makeBool(true);
        return true;
      }
      if (!evaluateExpr(*e.operands[1], env, b, error))
        return false;
      r = makeBool(asDouble(b) != 0);
      return true;
    }
    if (!evaluateExpr(*e.operands[1], env, b, error))
      return false;
    bool flt = a.type == ExprType::Float || b.type == ExprType::Float;
    const std::string &op = e.op;
    if (op == "<" || op == "<=" || op == ">" || op == ">=" || op == "==" ||
        op == "!=") {
      bool res;
      if (flt) {
        double x = asDouble(a), y = asDouble(b);
        res = op == "<" ? x < y : op == "<=" ? x <= y : op == ">" ? x > y
            : op == ">=" ? x >= y : op == "==" ? x == y : x != y;
      } else {
        int64_t x = a.i, y = b.i;
        res = op == "<" ? x < y : op == "<=" ? x <= y : op == ">" ? x > y
            : op == ">=" ? x >= y : op == "==" ? x == y : x != y;
      }
      r = makeBool(res);
      return true;
    }
    if (flt) {
      double x = asDouble(a), y = asDouble(b);
      if (op == "+") r = makeFloat(x + y);
      else if (op == "-") r = makeFloat(x - y);
      else if (op == "*") r = makeFloat(x * y);
      else if (op == "/") r = makeFloat(x / y);
      else if (op == "%") r = makeFloat(std::fmod(x, y));
      else {
        error = "unknown operator '" + op + "'" + at(e);
        return false;
      }
      return true;
    }
    int64_t x = a.i, y = b.i;
    if (op == "+") r = makeInt(wrapAdd(x, y));
    else if (op == "-") r = makeInt(wrapSub(x, y));
    else if (op == "*") r = makeInt(wrapMul(x, y));
    else if (op == "/" || op == "%") {
      if (y == 0) {
        error = "integer division by zero" + at(e);
        return false;
      }
      if (x == std::numeric_limits<int64_t>::min() && y == -1)
        r = makeInt(op == "/" ? x : 0);
      else
        r = makeInt(op == "/" ? x / y : x % y); // C: truncation toward zero
    } else {
      error = "unknown operator '" + op + "'" + at(e);
      return false;
    }
    return true;
  }
  case ExprKind::Call: {
    const std::string &fn = e.op;
    if (fn == "select") {
      if (e.operands.size() != 3) {
        error = "select needs 3 arguments" + at(e);
        return false;
      }
      ExprValue c;
      if (!evaluateExpr(*e.operands[0], env, c, error))
        return false;
      ExprValue v;
      if (!evaluateExpr(*e.operands[asDouble(c) != 0 ? 1 : 2], env, v, error))
        return false;
      if (e.type == ExprType::Float && v.type != ExprType::Float)
        v = makeFloat(asDouble(v));
      r = v;
      return true;
    }
    std::vector<ExprValue> args(e.operands.size());
    for (size_t i = 0; i < e.operands.size(); ++i)
      if (!evaluateExpr(*e.operands[i], env, args[i], error))
        return false;
    bool flt = e.type == ExprType::Float;
    for (const ExprValue &v : args)
      flt = flt || v.type == ExprType::Float;
    if ((fn == "min" || fn == "max") && args.size() == 2) {
      if (flt) {
        double x = asDouble(args[0]), y = asDouble(args[1]);
        r = makeFloat(fn == "min" ? fminNaN(x, y) : fmaxNaN(x, y));
      } else {
        int64_t x = args[0].i, y = args[1].i;
        r = makeInt(fn == "min" ? (x < y ? x : y) : (x > y ? x : y));
      }
      return true;
    }
    if (fn == "abs" && args.size() == 1) {
      if (flt)
        r = makeFloat(std::fabs(asDouble(args[0])));
      else
        r = makeInt(args[0].i < 0 ? wrapSub(0, args[0].i) : args[0].i);
      return true;
    }
    if ((fn == "exp" || fn == "tanh") && args.size() == 1) {
      double x = asDouble(args[0]);
      r = makeFloat(fn == "exp" ? std::exp(x) : std::tanh(x));
      return true;
    }
    error = "unknown function '" + fn + "' with " +
            std::to_string(args.size()) + " arguments" + at(e);
    return false;
  }
  }
  error = "malformed expression" + at(e);
  return false;
}

//===----------------------------------------------------------------------===//
// Input validation
//===----------------------------------------------------------------------===//

static std::string shapeStr(const std::vector<int64_t> &s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i)
    os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

static bool checkArray(const char *name, const HostArray &a,
                       const std::vector<int64_t> &want, std::string &error) {
  if (a.shape != want) {
    error = std::string(name) + ": expected shape " + shapeStr(want) +
            ", got " + shapeStr(a.shape);
    return false;
  }
  if (a.data.size() != size_t(HostArray::numElementsOf(want))) {
    error = std::string(name) + ": holds " + std::to_string(a.data.size()) +
            " values, its shape " + shapeStr(want) + " needs " +
            std::to_string(HostArray::numElementsOf(want));
    return false;
  }
  return true;
}

static bool checkStatic(const char *what, int64_t spec, int64_t bound,
                        std::string &error) {
  if (spec != kDynamic && spec > 0 && spec != bound) {
    error = std::string(what) + " is " + std::to_string(bound) +
            " but the spec says " + std::to_string(spec);
    return false;
  }
  return true;
}

static bool validate(const Spec &spec, const ExecInputs &in,
                     std::string &error) {
  if (in.B < 0 || in.Sq < 0 || in.Sk < 0 || in.Hq < 1 || in.Hkv < 1 ||
      in.Dqk < 1 || in.Dv < 1) {
    error = "invalid sizes (B, Hq, Hkv, Sq, Sk, Dqk, Dv) = (" +
            std::to_string(in.B) + ", " + std::to_string(in.Hq) + ", " +
            std::to_string(in.Hkv) + ", " + std::to_string(in.Sq) + ", " +
            std::to_string(in.Sk) + ", " + std::to_string(in.Dqk) + ", " +
            std::to_string(in.Dv) + ")";
    return false;
  }
  if (in.Hq % in.Hkv != 0) {
    error = "query heads Hq = " + std::to_string(in.Hq) +
            " is not a multiple of key/value heads Hkv = " +
            std::to_string(in.Hkv);
    return false;
  }
  bool linear = spec.kind != VariantKind::Attention;
  if (linear && (in.Hq != in.Hkv || in.Sq != in.Sk)) {
    error = "linear attention needs Hq == Hkv and Sq == Sk";
    return false;
  }
  if (!checkStatic("B", spec.batch, in.B, error) ||
      !checkStatic("Hq", spec.headsQ, in.Hq, error) ||
      !checkStatic("Hkv", spec.headsKV, in.Hkv, error) ||
      !checkStatic("Sq", spec.seqQ, in.Sq, error) ||
      !checkStatic("Sk", spec.seqK, in.Sk, error) ||
      !checkStatic("Dqk", spec.headDim, in.Dqk, error) ||
      !checkStatic("Dv", spec.headDimV, in.Dv, error))
    return false;
  if (!checkArray("q", in.q, {in.B, in.Hq, in.Sq, in.Dqk}, error) ||
      !checkArray("k", in.k, {in.B, in.Hkv, in.Sk, in.Dqk}, error) ||
      !checkArray("v", in.v, {in.B, in.Hkv, in.Sk, in.Dv}, error))
    return false;

  if (spec.kind == VariantKind::Attention) {
    if (spec.blockSparse) {
      if (!in.blockMask) {
        error = "block_mask: missing (the spec is block-sparse)";
        return false;
      }
      int64_t bq = spec.blockSparse->first, bk = spec.blockSparse->second;
      if (bq < 1 || bk < 1) {
        error = "block sizes must be positive";
        return false;
      }
      const HostArray &m = *in.blockMask;
      std::vector<int64_t> want = {
          m.shape.size() == 4 && m.shape[0] == 1 ? 1 : in.B,
          m.shape.size() == 4 && m.shape[1] == 1 ? 1 : in.Hq,
          (in.Sq + bq - 1) / bq, (in.Sk + bk - 1) / bk};
      if (!checkArray("block_mask", m, want, error))
        return false;
    }
    if (spec.documents) {
      if (!in.qDocIds || !in.kvDocIds) {
        error = "q_doc_ids / kv_doc_ids: missing (the spec uses documents)";
        return false;
      }
      if (!checkArray("q_doc_ids", *in.qDocIds, {in.B, in.Sq}, error) ||
          !checkArray("kv_doc_ids", *in.kvDocIds, {in.B, in.Sk}, error))
        return false;
    }
    if (spec.alibi != AlibiShape::None) {
      if (!in.alibiSlopes) {
        error = "alibi_slopes: missing (the spec uses ALiBi)";
        return false;
      }
      std::vector<int64_t> want = spec.alibi == AlibiShape::PerHead
                                      ? std::vector<int64_t>{in.Hq}
                                      : std::vector<int64_t>{in.B, in.Hq};
      if (!checkArray("alibi_slopes", *in.alibiSlopes, want, error))
        return false;
    }
    if (spec.maskExpr || spec.scoreExpr || !spec.tensors.empty()) {
      if (in.tensors.size() != spec.tensors.size()) {
        error = "expected " + std::to_string(spec.tensors.size()) +
                " expression tensors, got " + std::to_string(in.tensors.size());
        return false;
      }
      for (size_t t = 0; t < spec.tensors.size(); ++t) {
        const TensorDecl &d = spec.tensors[t];
        const HostArray &a = in.tensors[t].second;
        std::vector<int64_t> want = d.shape;
        if (a.shape.size() == want.size())
          for (size_t i = 0; i < want.size(); ++i)
            if (want[i] < 0)
              want[i] = a.shape[i];
        if (!checkArray(d.name.c_str(), a, want, error))
          return false;
      }
    }
    if ((spec.maskText.size() && !spec.maskExpr) ||
        (spec.scoreText.size() && !spec.scoreExpr)) {
      error = "the spec's custom expressions were not parsed";
      return false;
    }
  } else {
    if (spec.normalize && (spec.initialState || spec.finalState)) {
      error = "normalize cannot be combined with initial/final state";
      return false;
    }
    if (spec.initialState) {
      if (!in.initialState) {
        error = "initial state: missing (the spec asks for one)";
        return false;
      }
      if (!checkArray("initial state", *in.initialState,
                      {in.B, in.Hq, in.Dqk, in.Dv}, error))
        return false;
    }
    if (spec.kind == VariantKind::GatedLinearAttention) {
      if (!in.gates) {
        error = "gates: missing";
        return false;
      }
      std::vector<int64_t> want;
      switch (spec.gate) {
      case GateKindSpec::Scalar: want = {in.B, in.Hq, in.Sq}; break;
      case GateKindSpec::Vector: want = {in.B, in.Hq, in.Sq, in.Dqk}; break;
      case GateKindSpec::HeadConstant: want = {in.Hq}; break;
      }
      if (!checkArray("gates", *in.gates, want, error))
        return false;
    }
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Softmax attention
//===----------------------------------------------------------------------===//

static bool runAttention(const Spec &spec, const ExecInputs &in,
                         ExecOutputs &out, std::string &error) {
  const int64_t B = in.B, Hq = in.Hq, Sq = in.Sq, Sk = in.Sk, D = in.Dqk,
                Dv = in.Dv;
  const int64_t group = Hq / in.Hkv;
  const double scale = spec.scale ? *spec.scale : 1.0 / std::sqrt(double(D));
  const int64_t shift = Sk - Sq; // bottom-right alignment
  const double ninf = -std::numeric_limits<double>::infinity();

  out.out = HostArray({B, Hq, Sq, Dv});
  out.lse = HostArray({B, Hq, Sq});
  out.finalState.reset();

  std::vector<double> s(static_cast<size_t>(Sk));
  std::vector<char> visible(static_cast<size_t>(Sk));
  ExprEnv env;
  env.Sq = Sq;
  env.Sk = Sk;
  env.tensors = &in.tensors;

  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t hk = h / group;
      for (int64_t i = 0; i < Sq; ++i) {
        env.b = b;
        env.h = h;
        env.q = i;
        for (int64_t j = 0; j < Sk; ++j) {
          // Visibility: every present mask must admit (i, j).
          bool vis = true;
          if (spec.causal && !(j <= i + shift))
            vis = false;
          if (vis && spec.window) {
            int64_t L = spec.window->first, R = spec.window->second;
            if (!(i + shift - L <= j && j <= i + shift + R))
              vis = false;
          }
          if (vis && spec.blockSparse) {
            const HostArray &m = *in.blockMask;
            int64_t mb = m.shape[0] == 1 ? 0 : b;
            int64_t mh = m.shape[1] == 1 ? 0 : h;
            if (m.at({mb, mh, i / spec.blockSparse->first,
                      j / spec.blockSparse->second}) == 0)
              vis = false;
          }
          if (vis && spec.documents &&
              in.qDocIds->at({b, i}) != in.kvDocIds->at({b, j}))
            vis = false;
          if (vis && spec.maskExpr) {
            env.k = j;
            ExprValue r;
            if (!evaluateExpr(*spec.maskExpr, env, r, error)) {
              error = "mask expression at (b, h, q, k) = (" +
                      std::to_string(b) + ", " + std::to_string(h) + ", " +
                      std::to_string(i) + ", " + std::to_string(j) +
                      "): " + error;
              return false;
            }
            vis = (r.type == ExprType::Float ? r.f : double(r.i)) != 0;
          }
          visible[size_t(j)] = vis;
          if (!vis)
            continue;

          // Scores, in the order of AttnOps.td.
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += in.q.at({b, h, i, d}) * in.k.at({b, hk, j, d});
          double sc = scale * dot;
          if (spec.softcap)
            sc = *spec.softcap * std::tanh(sc / *spec.softcap);
          if (spec.alibi != AlibiShape::None) {
            double slope = spec.alibi == AlibiShape::PerHead
                               ? in.alibiSlopes->at({h})
                               : in.alibiSlopes->at({b, h});
            sc -= slope * std::fabs(double(i + shift - j));
          }
          if (spec.scoreExpr) {
            env.k = j;
            env.score = sc;
            ExprValue r;
            if (!evaluateExpr(*spec.scoreExpr, env, r, error)) {
              error = "score expression at (b, h, q, k) = (" +
                      std::to_string(b) + ", " + std::to_string(h) + ", " +
                      std::to_string(i) + ", " + std::to_string(j) +
                      "): " + error;
              return false;
            }
            sc = r.type == ExprType::Float ? r.f : double(r.i);
          }
          s[size_t(j)] = sc;
        }

        // Two-pass softmax over the visible keys.
        double mx = ninf;
        bool any = false;
        for (int64_t j = 0; j < Sk; ++j)
          if (visible[size_t(j)]) {
            any = true;
            if (s[size_t(j)] > mx || std::isnan(s[size_t(j)]))
              mx = s[size_t(j)];
          }
        if (!any || mx == ninf) {
          // No visible key (or every score -inf): out = 0, lse = -inf.
          for (int64_t e = 0; e < Dv; ++e)
            out.out.at({b, h, i, e}) = 0.0;
          out.lse->at({b, h, i}) = ninf;
          continue;
        }
        double sum = 0;
        for (int64_t j = 0; j < Sk; ++j)
          if (visible[size_t(j)])
            sum += std::exp(s[size_t(j)] - mx);
        for (int64_t e = 0; e < Dv; ++e) {
          double acc = 0;
          for (int64_t j = 0; j < Sk; ++j)
            if (visible[size_t(j)])
              acc += std::exp(s[size_t(j)] - mx) * in.v.at({b, hk, j, e});
          out.out.at({b, h, i, e}) = acc / sum;
        }
        out.lse->at({b, h, i}) = mx + std::log(sum);
      }
    }
  return true;
}

//===----------------------------------------------------------------------===//
// Linear and gated linear attention: the recurrence over t
//===----------------------------------------------------------------------===//

static double featureMap(FeatureMapKind f, double x) {
  switch (f) {
  case FeatureMapKind::Identity: return x;
  case FeatureMapKind::EluPlusOne: return x > 0 ? x + 1.0 : std::exp(x);
  case FeatureMapKind::Relu: return x > 0 ? x : 0.0;
  }
  return x;
}

static bool runLinear(const Spec &spec, const ExecInputs &in, ExecOutputs &out,
                      std::string &error) {
  (void)error;
  const int64_t B = in.B, H = in.Hq, S = in.Sq, D = in.Dqk, Dv = in.Dv;
  const bool gated = spec.kind == VariantKind::GatedLinearAttention;
  const double scale = spec.scale ? *spec.scale : 1.0 / std::sqrt(double(D));
  const FeatureMapKind fm = gated ? FeatureMapKind::Identity : spec.featureMap;
  const bool normalize = !gated && spec.normalize;

  out.out = HostArray({B, H, S, Dv});
  out.lse.reset();
  out.finalState.reset();
  if (spec.finalState)
    out.finalState = HostArray({B, H, D, Dv});

  std::vector<double> state(static_cast<size_t>(D * Dv));
  std::vector<double> z(static_cast<size_t>(D)), pq(static_cast<size_t>(D)),
      pk(static_cast<size_t>(D));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t d = 0; d < D; ++d)
        for (int64_t e = 0; e < Dv; ++e)
          state[size_t(d * Dv + e)] =
              spec.initialState ? in.initialState->at({b, h, d, e}) : 0.0;
      std::fill(z.begin(), z.end(), 0.0);

      for (int64_t t = 0; t < S; ++t) {
        for (int64_t d = 0; d < D; ++d) {
          pq[size_t(d)] = featureMap(fm, in.q.at({b, h, t, d}));
          pk[size_t(d)] = featureMap(fm, in.k.at({b, h, t, d}));
        }
        // S_t = decay * S_{t-1} + phi(k_t) v_t^T.
        for (int64_t d = 0; d < D; ++d) {
          double decay = 1.0;
          if (gated) {
            switch (spec.gate) {
            case GateKindSpec::Scalar:
              decay = std::exp(in.gates->at({b, h, t}));
              break;
            case GateKindSpec::Vector:
              decay = std::exp(in.gates->at({b, h, t, d}));
              break;
            case GateKindSpec::HeadConstant:
              decay = std::exp(in.gates->at({h}));
              break;
            }
          }
          for (int64_t e = 0; e < Dv; ++e) {
            double &st = state[size_t(d * Dv + e)];
            st = decay * st + pk[size_t(d)] * in.v.at({b, h, t, e});
          }
          z[size_t(d)] += pk[size_t(d)];
        }
        // out_t = phi(q_t)^T S_t, scaled or normalized.
        double den = 0;
        for (int64_t d = 0; d < D; ++d)
          den += pq[size_t(d)] * z[size_t(d)];
        for (int64_t e = 0; e < Dv; ++e) {
          double num = 0;
          for (int64_t d = 0; d < D; ++d)
            num += pq[size_t(d)] * state[size_t(d * Dv + e)];
          double o;
          if (normalize)
            o = den == 0 ? 0.0 : num / den;
          else
            o = scale * num;
          out.out.at({b, h, t, e}) = o;
        }
      }
      if (spec.finalState)
        for (int64_t d = 0; d < D; ++d)
          for (int64_t e = 0; e < Dv; ++e)
            out.finalState->at({b, h, d, e}) = state[size_t(d * Dv + e)];
    }
  return true;
}

bool runReference(const Spec &spec, const ExecInputs &in, ExecOutputs &out,
                  std::string &error) {
  error.clear();
  if (!validate(spec, in, error)) {
    error = "reference: " + error;
    return false;
  }
  bool ok = spec.kind == VariantKind::Attention
                ? runAttention(spec, in, out, error)
                : runLinear(spec, in, out, error);
  if (!ok)
    error = "reference: " + error;
  return ok;
}

} // namespace attn
