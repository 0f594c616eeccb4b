//===- Spec.cpp - parse and validate JSON specs ---------------------------===//
//
// Two passes over the text: a SAX pass that locates syntax errors (line and
// column), rejects duplicate keys and bounds nesting, then a DOM parse that
// the validator walks. Every access checks the JSON type first: nlohmann/json
// aborts instead of throwing in exception-free builds, so no call here may be
// one that can throw on user input.
//
//===----------------------------------------------------------------------===//

#include "attn/Spec/Spec.h"

#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>

namespace attn {

const char *variantKindName(VariantKind k) {
  switch (k) {
  case VariantKind::Attention:
    return "attention";
  case VariantKind::LinearAttention:
    return "linear_attention";
  case VariantKind::GatedLinearAttention:
    return "gated_linear_attention";
  }
  return "?";
}

const char *elementTypeName(ElementType t) {
  switch (t) {
  case ElementType::F16:
    return "f16";
  case ElementType::BF16:
    return "bf16";
  case ElementType::F32:
    return "f32";
  }
  return "?";
}

const char *layoutName(Layout l) {
  switch (l) {
  case Layout::BHSD:
    return "bhsd";
  case Layout::BSHD:
    return "bshd";
  }
  return "?";
}

const char *featureMapName(FeatureMapKind f) {
  switch (f) {
  case FeatureMapKind::Identity:
    return "identity";
  case FeatureMapKind::EluPlusOne:
    return "elu_plus_one";
  case FeatureMapKind::Relu:
    return "relu";
  }
  return "?";
}

const char *gateKindName(GateKindSpec g) {
  switch (g) {
  case GateKindSpec::Scalar:
    return "scalar";
  case GateKindSpec::Vector:
    return "vector";
  case GateKindSpec::HeadConstant:
    return "head_constant";
  }
  return "?";
}

double Spec::effectiveScale() const {
  if (scale)
    return *scale;
  return headDim > 0 ? 1.0 / std::sqrt(static_cast<double>(headDim)) : 1.0;
}

namespace {

using json = nlohmann::ordered_json;

/// Sizes (dimensions, tile and block sizes, window bounds) stay below 2^31 so
/// that products of two of them never overflow int64.
constexpr int64_t kMaxSize = std::numeric_limits<int32_t>::max();
/// Valid specs nest four levels deep; anything far deeper is an attack or an
/// accident, and would cost memory in the DOM.
constexpr size_t kMaxJsonDepth = 64;
constexpr size_t kRenderLimit = 40;

//===----------------------------------------------------------------------===//
// Rendering values and key paths for messages
//===----------------------------------------------------------------------===//

void appendEscaped(const std::string &s, std::string &out, size_t limit) {
  out += '"';
  for (unsigned char c : s) {
    if (out.size() > limit)
      return;
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\r':
      out += "\\r";
      break;
    default:
      if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
    }
  }
  out += '"';
}

/// Compact JSON of `j`, stopping once `out` exceeds `limit` bytes. Each level
/// of nesting emits at least one byte, so the recursion depth is bounded by
/// the limit, not by the input.
void renderInto(const json &j, std::string &out, size_t limit) {
  if (out.size() > limit)
    return;
  switch (j.type()) {
  case json::value_t::object: {
    out += '{';
    bool first = true;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (out.size() > limit)
        return;
      if (!first)
        out += ',';
      first = false;
      appendEscaped(it.key(), out, limit);
      out += ':';
      renderInto(it.value(), out, limit);
    }
    out += '}';
    return;
  }
  case json::value_t::array: {
    out += '[';
    bool first = true;
    for (const json &v : j) {
      if (out.size() > limit)
        return;
      if (!first)
        out += ',';
      first = false;
      renderInto(v, out, limit);
    }
    out += ']';
    return;
  }
  case json::value_t::string:
    appendEscaped(j.get_ref<const std::string &>(), out, limit);
    return;
  case json::value_t::boolean:
    out += j.get<bool>() ? "true" : "false";
    return;
  case json::value_t::number_integer:
    out += std::to_string(j.get<int64_t>());
    return;
  case json::value_t::number_unsigned:
    out += std::to_string(j.get<uint64_t>());
    return;
  case json::value_t::number_float:
    out += j.dump(); // A single number: no recursion, cannot throw.
    return;
  case json::value_t::null:
  case json::value_t::discarded:
  case json::value_t::binary:
    out += "null";
    return;
  }
}

/// Cuts `s` to at most `limit` bytes plus "...", on a UTF-8 boundary.
std::string truncate(std::string s, size_t limit) {
  if (s.size() <= limit)
    return s;
  size_t cut = limit - 3;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80)
    --cut;
  s.resize(cut);
  return s + "...";
}

std::string render(const json &j) {
  std::string out;
  renderInto(j, out, kRenderLimit);
  return truncate(std::move(out), kRenderLimit);
}

bool isIdentifier(const std::string &s) {
  if (s.empty())
    return false;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit)))
      return false;
  }
  return true;
}

/// `path.key`, or `path["odd key"]` for keys that would make the path
/// ambiguous.
std::string child(const std::string &path, const std::string &key) {
  bool plain = !key.empty();
  for (unsigned char c : key)
    plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_');
  if (plain && key.size() <= 64)
    return path.empty() ? key : path + "." + key;
  std::string quoted;
  appendEscaped(key, quoted, kRenderLimit);
  return path + "[" + truncate(quoted, kRenderLimit) + "]";
}

std::string element(const std::string &path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

std::string joinList(const std::vector<const char *> &items, bool quoted) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i)
      s += ", ";
    s += quoted ? std::string("\"") + items[i] + "\"" : items[i];
  }
  return s;
}

//===----------------------------------------------------------------------===//
// The SAX pass: syntax errors with positions, duplicate keys, nesting depth
//===----------------------------------------------------------------------===//

struct PrepassHandler : nlohmann::json_sax<json> {
  struct Frame {
    bool isObject;
    size_t elements = 0; // arrays: values seen so far
    std::string key;     // objects: the current key
    std::set<std::string> keys;
  };
  std::vector<Frame> frames;

  enum class Stop { None, Syntax, Duplicate, TooDeep } stop = Stop::None;
  size_t position = 0;
  std::string message;

  std::string currentPath() const {
    std::string path;
    for (size_t i = 0; i + 1 < frames.size(); ++i)
      path = frames[i].isObject ? child(path, frames[i].key)
                                : element(path, frames[i].elements - 1);
    return path;
  }

  bool value() {
    if (!frames.empty() && !frames.back().isObject)
      ++frames.back().elements;
    return true;
  }
  bool open(bool isObject) {
    value();
    if (frames.size() >= kMaxJsonDepth) {
      stop = Stop::TooDeep;
      return false;
    }
    frames.push_back(Frame{isObject, 0, {}, {}});
    return true;
  }
  bool close() {
    if (!frames.empty())
      frames.pop_back();
    return true;
  }

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t &) override {
    return value();
  }
  bool string(string_t &) override { return value(); }
  bool binary(binary_t &) override { return value(); }
  bool start_object(std::size_t) override { return open(true); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(false); }
  bool end_array() override { return close(); }
  bool key(string_t &k) override {
    if (frames.empty())
      return true;
    Frame &f = frames.back();
    if (!f.keys.insert(k).second) {
      stop = Stop::Duplicate;
      std::string quoted;
      appendEscaped(k, quoted, kRenderLimit);
      // currentPath() stops before the innermost frame: the object's path.
      message = "duplicate key " + truncate(quoted, kRenderLimit);
      return false;
    }
    f.key = k;
    return true;
  }
  bool parse_error(std::size_t pos, const std::string &,
                   const nlohmann::detail::exception &ex) override {
    stop = Stop::Syntax;
    position = pos;
    message = ex.what();
    return false;
  }
};

/// "[json.exception.parse_error.101] parse error at line 1, column 8: syntax
/// error while parsing object - unexpected '}'; expected string literal"
/// becomes "unexpected '}'; expected string literal".
std::string shortenJsonMessage(const std::string &what) {
  std::string s = what;
  size_t p = s.find("] ");
  if (s.rfind("[json.exception.", 0) == 0 && p != std::string::npos)
    s = s.substr(p + 2);
  if (s.rfind("parse error", 0) == 0) {
    size_t colon = s.find(": ");
    if (colon != std::string::npos)
      s = s.substr(colon + 2);
  }
  if (s.rfind("syntax error ", 0) == 0) {
    size_t dash = s.find("- ");
    if (dash != std::string::npos)
      s = s.substr(dash + 2);
  }
  // "; last read: '<token>'" repeats the text the line and column point at
  // (and it includes preceding bytes, which reads as if they were wrong).
  size_t lastRead = s.find("; last read: '");
  if (lastRead != std::string::npos) {
    size_t end = s.find("'; expected ", lastRead + 14);
    s.erase(lastRead,
            end == std::string::npos ? std::string::npos : end + 1 - lastRead);
  }
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    }
  }
  return truncate(out, 160);
}

/// Line and column (1-based, bytes) of byte offset `offset`.
std::string lineColumn(const std::string &text, size_t offset) {
  if (offset > text.size())
    offset = text.size();
  size_t line = 1, lineStart = 0;
  for (size_t i = 0; i < offset; ++i)
    if (text[i] == '\n') {
      ++line;
      lineStart = i + 1;
    }
  return "line " + std::to_string(line) + ", column " +
         std::to_string(offset - lineStart + 1);
}

/// Byte offset of the bracket that opens nesting level `depth` + 1, in text
/// that the SAX pass found well-formed up to that point.
size_t findTooDeep(const std::string &text, size_t depth) {
  size_t level = 0;
  bool inString = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        inString = false;
      continue;
    }
    if (c == '"')
      inString = true;
    else if (c == '[' || c == '{') {
      if (++level > depth)
        return i;
    } else if (c == ']' || c == '}') {
      --level;
    }
  }
  return text.size();
}

bool parseJson(const std::string &text, json &root, std::string &error) {
  bool blank = true;
  for (char c : text)
    blank = blank && (c == ' ' || c == '\t' || c == '\n' || c == '\r');
  if (blank) {
    error = lineColumn(text, text.size()) + ": empty input; expected a JSON "
                                            "object";
    return false;
  }
  PrepassHandler handler;
  bool ok = json::sax_parse(text, &handler, json::input_format_t::json,
                            /*strict=*/true, /*ignore_comments=*/false);
  // nlohmann's lexer takes a NUL byte for the end of the input, which would
  // accept anything after it. No valid JSON text contains one.
  size_t nul = text.find('\0');
  if (nul != std::string::npos &&
      (handler.stop != PrepassHandler::Stop::Syntax ||
       handler.position >= nul + 1)) {
    error = lineColumn(text, nul) + ": unexpected NUL byte";
    return false;
  }
  if (!ok || handler.stop != PrepassHandler::Stop::None) {
    switch (handler.stop) {
    case PrepassHandler::Stop::Syntax: {
      // `position` counts the bytes read, the offending one included.
      size_t offset = handler.position > 0 ? handler.position - 1 : 0;
      error =
          lineColumn(text, offset) + ": " + shortenJsonMessage(handler.message);
      return false;
    }
    case PrepassHandler::Stop::Duplicate: {
      std::string path = handler.currentPath();
      error = path.empty() ? handler.message : path + ": " + handler.message;
      return false;
    }
    case PrepassHandler::Stop::TooDeep:
      error = lineColumn(text, findTooDeep(text, kMaxJsonDepth)) +
              ": nesting deeper than " + std::to_string(kMaxJsonDepth) +
              " levels";
      return false;
    case PrepassHandler::Stop::None:
      error = "line 1, column 1: invalid JSON";
      return false;
    }
  }
  root = json::parse(text, nullptr, /*allow_exceptions=*/false,
                     /*ignore_comments=*/false);
  if (root.is_discarded()) {
    error = "line 1, column 1: invalid JSON";
    return false;
  }
  return true;
}

//===----------------------------------------------------------------------===//
// The validator
//===----------------------------------------------------------------------===//

struct KeyRule {
  const char *key;
  /// Which kinds allow the key (bit per VariantKind).
  unsigned kinds;
  /// Appended to "not allowed for kind X" when set.
  const char *hint = nullptr;
};
constexpr unsigned kAttn = 1, kLin = 2, kGated = 4, kLinear = kLin | kGated,
                   kAll = 7;
unsigned kindBit(VariantKind k) {
  return k == VariantKind::Attention         ? kAttn
         : k == VariantKind::LinearAttention ? kLin
                                             : kGated;
}

class Validator {
public:
  Validator(Spec &spec, std::string &error) : spec(spec), error(error) {}

  bool run(const json &root);

private:
  Spec &spec;
  std::string &error;

  bool fail(const std::string &path, const std::string &msg) {
    error = path.empty() ? msg : path + ": " + msg;
    return false;
  }
  bool expected(const std::string &path, const std::string &what,
                const json &found) {
    return fail(path, "expected " + what + ", got " + render(found));
  }

  const char *kindName() const { return variantKindName(spec.kind); }

  /// Rejects keys outside `rules` (or outside those of the current kind).
  bool checkKeys(const json &obj, const std::string &path,
                 const std::vector<KeyRule> &rules) {
    unsigned bit = kindBit(spec.kind);
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      const KeyRule *rule = nullptr;
      for (const KeyRule &r : rules)
        if (it.key() == r.key)
          rule = &r;
      if (rule && (rule->kinds & bit))
        continue;
      std::string p = child(path, it.key());
      if (rule)
        return fail(p, std::string("not allowed for kind ") + kindName() +
                           (rule->hint ? rule->hint : ""));
      std::vector<const char *> allowed;
      for (const KeyRule &r : rules)
        if (r.kinds & bit)
          allowed.push_back(r.key);
      return fail(p,
                  "unknown key; expected one of " + joinList(allowed, false));
    }
    return true;
  }

  bool requireKey(const json &obj, const std::string &path, const char *key) {
    if (obj.contains(key))
      return true;
    return fail(path, std::string("missing required key \"") + key + "\"");
  }

  bool getObject(const json &obj, const std::string &path, const char *key,
                 const json *&out) {
    out = nullptr;
    if (!obj.contains(key))
      return true;
    const json &v = obj[key];
    if (!v.is_object())
      return expected(child(path, key), "an object", v);
    out = &v;
    return true;
  }

  bool getBool(const json &obj, const std::string &path, const char *key,
               bool &out) {
    if (!obj.contains(key))
      return true;
    const json &v = obj[key];
    if (!v.is_boolean())
      return expected(child(path, key), "true or false", v);
    out = v.get<bool>();
    return true;
  }

  static bool asInt64(const json &v, int64_t &out) {
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return false;
      out = static_cast<int64_t>(u);
      return true;
    }
    if (v.is_number_integer()) {
      out = v.get<int64_t>();
      return true;
    }
    return false;
  }

  /// An integer in [minValue, kMaxSize]; `what` names the accepted values.
  bool intValue(const json &v, const std::string &path, int64_t minValue,
                const char *what, int64_t &out) {
    int64_t x = 0;
    if (v.is_number_unsigned() && !asInt64(v, x))
      return fail(path, render(v) + " is too large (the limit is " +
                            std::to_string(kMaxSize) + ")");
    if (!asInt64(v, x) || x < minValue)
      return expected(path, what, v);
    if (x > kMaxSize)
      return fail(path, std::to_string(x) + " is too large (the limit is " +
                            std::to_string(kMaxSize) + ")");
    out = x;
    return true;
  }

  bool getPositiveInt(const json &obj, const std::string &path, const char *key,
                      int64_t &out) {
    if (!obj.contains(key))
      return true;
    return intValue(obj[key], child(path, key), 1, "a positive integer", out);
  }
  bool getNonNegativeInt(const json &obj, const std::string &path,
                         const char *key, int64_t &out) {
    if (!obj.contains(key))
      return true;
    return intValue(obj[key], child(path, key), 0, "a non-negative integer",
                    out);
  }
  /// A positive integer, or null (or absent) for a dynamic size.
  bool dimValue(const json &v, const std::string &path, int64_t &out) {
    if (v.is_null()) {
      out = kDynamic;
      return true;
    }
    return intValue(v, path, 1, "a positive integer or null", out);
  }
  bool getDim(const json &obj, const std::string &path, const char *key,
              int64_t &out) {
    out = kDynamic;
    if (!obj.contains(key))
      return true;
    return dimValue(obj[key], child(path, key), out);
  }

  /// A number that is positive and finite, also once rounded to f32 (the
  /// attributes that carry it are f32).
  bool getPositiveNumber(const json &obj, const std::string &path,
                         const char *key, std::optional<double> &out) {
    if (!obj.contains(key))
      return true;
    const json &v = obj[key];
    std::string p = child(path, key);
    if (!v.is_number())
      return expected(p, "a positive finite number", v);
    double d = v.get<double>();
    if (!(d > 0) || !std::isfinite(d))
      return expected(p, "a positive finite number", v);
    if (d > static_cast<double>(FLT_MAX) || static_cast<float>(d) == 0.0f)
      return expected(p, "a positive number within the f32 range", v);
    out = d;
    return true;
  }

  bool getString(const json &obj, const std::string &path, const char *key,
                 const char *what, std::string &out) {
    const json &v = obj[key];
    if (!v.is_string())
      return expected(child(path, key), what, v);
    out = v.get<std::string>();
    return true;
  }

  /// One of `names`; `index` receives its position.
  bool getEnum(const json &obj, const std::string &path, const char *key,
               const std::vector<const char *> &names, int &index) {
    if (!obj.contains(key))
      return true;
    const json &v = obj[key];
    if (v.is_string()) {
      const std::string &s = v.get_ref<const std::string &>();
      for (size_t i = 0; i < names.size(); ++i)
        if (s == names[i]) {
          index = static_cast<int>(i);
          return true;
        }
    }
    return expected(child(path, key), "one of " + joinList(names, true), v);
  }

  bool parseShape(const json &root);
  bool parseTensors(const json &root);
  bool parseMask(const json &root);
  bool parseScore(const json &root);
  bool parseLinear(const json &root);
  bool parseOptions(const json &root);
  bool parseExpression(const json &obj, const std::string &path,
                       ExprType resultType, std::string &text,
                       std::unique_ptr<Expr> &out);
};

bool Validator::run(const json &root) {
  if (!root.is_object())
    return expected("", "a JSON object at the top level", root);

  if (!requireKey(root, "", "kind"))
    return false;
  int kind = 0;
  if (!getEnum(root, "", "kind",
               {"attention", "linear_attention", "gated_linear_attention"},
               kind))
    return false;
  spec.kind = static_cast<VariantKind>(kind);

  static const std::vector<KeyRule> rootRules = {
      {"name", kAll},     {"kind", kAll},        {"dtype", kAll},
      {"layout", kAll},   {"scale", kAll},       {"shape", kAll},
      {"mask", kAttn},    {"score", kAttn},      {"tensors", kAttn},
      {"outputs", kAttn}, {"feature_map", kLin}, {"normalize", kLin},
      {"gate", kGated},   {"state", kLinear},    {"options", kAll},
  };
  if (!checkKeys(root, "", rootRules))
    return false;

  if (!requireKey(root, "", "name") ||
      !getString(root, "", "name", "a string", spec.name))
    return false;
  if (!isIdentifier(spec.name))
    return expected("name", "an identifier ([A-Za-z_][A-Za-z0-9_]*)",
                    root["name"]);

  int dtype = 0;
  if (!requireKey(root, "", "dtype") ||
      !getEnum(root, "", "dtype", {"f16", "bf16", "f32"}, dtype))
    return false;
  spec.dtype = static_cast<ElementType>(dtype);

  int layout = 0;
  if (!getEnum(root, "", "layout", {"bhsd", "bshd"}, layout))
    return false;
  spec.layout = static_cast<Layout>(layout);

  if (!getPositiveNumber(root, "", "scale", spec.scale))
    return false;
  if (!parseShape(root))
    return false;

  if (spec.kind == VariantKind::Attention) {
    if (!parseTensors(root) || !parseMask(root) || !parseScore(root))
      return false;
    const json *outputs = nullptr;
    if (!getObject(root, "", "outputs", outputs))
      return false;
    if (outputs && (!checkKeys(*outputs, "outputs", {{"lse", kAll}}) ||
                    !getBool(*outputs, "outputs", "lse", spec.returnLse)))
      return false;
    for (size_t i = 0; i < spec.tensors.size(); ++i) {
      bool read = (spec.maskExpr &&
                   exprUsesTensor(*spec.maskExpr, static_cast<int>(i))) ||
                  (spec.scoreExpr &&
                   exprUsesTensor(*spec.scoreExpr, static_cast<int>(i)));
      if (!read)
        return fail(child("tensors", spec.tensors[i].name),
                    "declared but read by neither mask.custom nor "
                    "score.custom");
    }
  } else if (!parseLinear(root)) {
    return false;
  }
  if (!parseOptions(root))
    return false;
  spec.canonicalJson = root.dump();
  return true;
}

bool Validator::parseShape(const json &root) {
  if (!requireKey(root, "", "shape"))
    return false;
  const json *shape = nullptr;
  if (!getObject(root, "", "shape", shape))
    return false;
  const json &s = *shape;
  static const std::vector<KeyRule> rules = {
      {"batch", kAll},
      {"heads_q", kAttn, "; use heads"},
      {"heads_kv", kAttn, "; use heads"},
      {"seq_q", kAttn, "; use seq"},
      {"seq_k", kAttn, "; use seq"},
      {"heads", kLinear, "; use heads_q and heads_kv"},
      {"seq", kLinear, "; use seq_q and seq_k"},
      {"head_dim", kAll},
      {"head_dim_v", kAll},
  };
  if (!checkKeys(s, "shape", rules))
    return false;
  if (!getDim(s, "shape", "batch", spec.batch))
    return false;
  if (spec.kind == VariantKind::Attention) {
    if (!getDim(s, "shape", "heads_q", spec.headsQ) ||
        !getDim(s, "shape", "heads_kv", spec.headsKV) ||
        !getDim(s, "shape", "seq_q", spec.seqQ) ||
        !getDim(s, "shape", "seq_k", spec.seqK))
      return false;
  } else {
    if (!getDim(s, "shape", "heads", spec.headsQ) ||
        !getDim(s, "shape", "seq", spec.seqQ))
      return false;
    spec.headsKV = spec.headsQ;
    spec.seqK = spec.seqQ;
  }
  if (!requireKey(s, "shape", "head_dim") ||
      !getPositiveInt(s, "shape", "head_dim", spec.headDim))
    return false;
  spec.headDimV = spec.headDim;
  if (!getPositiveInt(s, "shape", "head_dim_v", spec.headDimV))
    return false;
  if (spec.headsQ != kDynamic && spec.headsKV != kDynamic &&
      spec.headsQ % spec.headsKV != 0)
    return fail("shape.heads_q", std::to_string(spec.headsQ) +
                                     " is not a multiple of shape.heads_kv (" +
                                     std::to_string(spec.headsKV) + ")");
  return true;
}

bool Validator::parseTensors(const json &root) {
  const json *tensors = nullptr;
  if (!getObject(root, "", "tensors", tensors))
    return false;
  if (!tensors)
    return true;
  static const char *const reserved[] = {
      "b",   "h",   "q",   "k",   "score", "Sq",   "Sk",   "select",
      "min", "max", "abs", "exp", "tanh",  "true", "false"};
  for (auto it = tensors->begin(); it != tensors->end(); ++it) {
    const std::string &name = it.key();
    std::string path = child("tensors", name);
    if (!isIdentifier(name))
      return fail(path, "invalid tensor name; expected an identifier "
                        "([A-Za-z_][A-Za-z0-9_]*)");
    for (const char *r : reserved)
      if (name == r)
        return fail(path, "\"" + name +
                              "\" is a reserved name of the expression "
                              "language and cannot name a tensor");
    const json &t = it.value();
    if (!t.is_object())
      return expected(path, "an object with \"dtype\" and \"shape\"", t);
    if (!checkKeys(t, path, {{"dtype", kAll}, {"shape", kAll}}))
      return false;
    TensorDecl decl;
    decl.name = name;
    int dtype = 0;
    if (!requireKey(t, path, "dtype") ||
        !getEnum(t, path, "dtype", {"f32", "i32"}, dtype))
      return false;
    decl.elementType =
        dtype == 0 ? TensorElementType::F32 : TensorElementType::I32;
    if (!requireKey(t, path, "shape"))
      return false;
    const json &shape = t["shape"];
    std::string shapePath = child(path, "shape");
    if (!shape.is_array() || shape.empty())
      return expected(shapePath,
                      "a non-empty array of positive integers or nulls", shape);
    for (size_t i = 0; i < shape.size(); ++i) {
      int64_t d = kDynamic;
      if (!dimValue(shape[i], element(shapePath, i), d))
        return false;
      decl.shape.push_back(d);
    }
    spec.tensors.push_back(std::move(decl));
  }
  return true;
}

bool Validator::parseExpression(const json &obj, const std::string &path,
                                ExprType resultType, std::string &text,
                                std::unique_ptr<Expr> &out) {
  if (!obj.contains("custom"))
    return true;
  std::string p = child(path, "custom");
  const json &v = obj["custom"];
  if (!v.is_string())
    return expected(p, "a string (an expression)", v);
  text = v.get<std::string>();
  ExprContext ctx;
  ctx.allowScore = resultType == ExprType::Float;
  ctx.tensors = &spec.tensors;
  std::string exprError;
  out = parseExpr(text, ctx, resultType, exprError);
  if (!out)
    return fail(p, exprError);
  return true;
}

bool Validator::parseMask(const json &root) {
  const json *mask = nullptr;
  if (!getObject(root, "", "mask", mask))
    return false;
  if (!mask)
    return true;
  const json &m = *mask;
  if (!checkKeys(m, "mask",
                 {{"causal", kAll},
                  {"window", kAll},
                  {"block_sparse", kAll},
                  {"documents", kAll},
                  {"custom", kAll}}))
    return false;
  if (!getBool(m, "mask", "causal", spec.causal))
    return false;
  const json *window = nullptr;
  if (!getObject(m, "mask", "window", window))
    return false;
  if (window) {
    int64_t left = 0, right = 0;
    if (!checkKeys(*window, "mask.window", {{"left", kAll}, {"right", kAll}}) ||
        !requireKey(*window, "mask.window", "left") ||
        !getNonNegativeInt(*window, "mask.window", "left", left) ||
        !requireKey(*window, "mask.window", "right") ||
        !getNonNegativeInt(*window, "mask.window", "right", right))
      return false;
    spec.window = std::make_pair(left, right);
  }
  const json *blocks = nullptr;
  if (!getObject(m, "mask", "block_sparse", blocks))
    return false;
  if (blocks) {
    int64_t bq = 0, bk = 0;
    const char *p = "mask.block_sparse";
    if (!checkKeys(*blocks, p, {{"block_q", kAll}, {"block_k", kAll}}) ||
        !requireKey(*blocks, p, "block_q") ||
        !getPositiveInt(*blocks, p, "block_q", bq) ||
        !requireKey(*blocks, p, "block_k") ||
        !getPositiveInt(*blocks, p, "block_k", bk))
      return false;
    spec.blockSparse = std::make_pair(bq, bk);
  }
  if (!getBool(m, "mask", "documents", spec.documents))
    return false;
  return parseExpression(m, "mask", ExprType::Bool, spec.maskText,
                         spec.maskExpr);
}

bool Validator::parseScore(const json &root) {
  const json *score = nullptr;
  if (!getObject(root, "", "score", score))
    return false;
  if (!score)
    return true;
  const json &s = *score;
  if (!checkKeys(s, "score",
                 {{"softcap", kAll}, {"alibi", kAll}, {"custom", kAll}}))
    return false;
  if (!getPositiveNumber(s, "score", "softcap", spec.softcap))
    return false;
  if (s.contains("alibi")) {
    const json &a = s["alibi"];
    if (a.is_boolean()) {
      spec.alibi = a.get<bool>() ? AlibiShape::PerHead : AlibiShape::None;
    } else if (a.is_string() &&
               a.get_ref<const std::string &>() == "per_head") {
      spec.alibi = AlibiShape::PerHead;
    } else if (a.is_string() &&
               a.get_ref<const std::string &>() == "per_batch_head") {
      spec.alibi = AlibiShape::PerBatchHead;
    } else {
      return expected("score.alibi",
                      "true, false, \"per_head\" or \"per_batch_head\"", a);
    }
  }
  return parseExpression(s, "score", ExprType::Float, spec.scoreText,
                         spec.scoreExpr);
}

bool Validator::parseLinear(const json &root) {
  if (spec.kind == VariantKind::LinearAttention) {
    int fm = 0;
    if (!getEnum(root, "", "feature_map", {"identity", "elu_plus_one", "relu"},
                 fm))
      return false;
    spec.featureMap = static_cast<FeatureMapKind>(fm);
    if (!getBool(root, "", "normalize", spec.normalize))
      return false;
  } else {
    int gate = 0;
    if (!requireKey(root, "", "gate") ||
        !getEnum(root, "", "gate", {"scalar", "vector", "head_constant"}, gate))
      return false;
    spec.gate = static_cast<GateKindSpec>(gate);
  }
  const json *state = nullptr;
  if (!getObject(root, "", "state", state))
    return false;
  if (state &&
      (!checkKeys(*state, "state", {{"initial", kAll}, {"final", kAll}}) ||
       !getBool(*state, "state", "initial", spec.initialState) ||
       !getBool(*state, "state", "final", spec.finalState)))
    return false;
  if (spec.normalize && (spec.initialState || spec.finalState))
    return fail("normalize",
                "cannot be combined with state.initial or state.final: the "
                "normalizer is not part of the carried state");
  return true;
}

bool Validator::parseOptions(const json &root) {
  const json *options = nullptr;
  if (!getObject(root, "", "options", options))
    return false;
  if (!options)
    return true;
  if (!checkKeys(*options, "options",
                 {{"block_q", kAttn}, {"block_k", kAttn}, {"chunk", kLinear}}))
    return false;
  // The bounds attn-plan-tiles (tiles) and attn-tile-linear (chunks) check
  // too (attn/Spec/Limits.h): a spec is rejected where it is read, whichever
  // path compiles it.
  for (auto [key, limit] : {std::pair<const char *, int64_t>{"block_q", kMaxSpecTile},
                            {"block_k", kMaxSpecTile},
                            {"chunk", kMaxSpecChunk}}) {
    int64_t v = 0;
    if (!getPositiveInt(*options, "options", key, v))
      return false;
    if (v > limit)
      return fail(child("options", key), std::to_string(v) + " is too large (the limit is " +
                                             std::to_string(limit) + ")");
  }
  spec.options = *options;
  return true;
}

} // namespace

bool parseSpec(const std::string &text, Spec &spec, std::string &error) {
  error.clear();
  json root;
  if (!parseJson(text, root, error))
    return false;
  Spec result;
  if (!Validator(result, error).run(root))
    return false;
  spec = std::move(result);
  return true;
}

bool parseSpecFile(const std::string &path, Spec &spec, std::string &error) {
  error.clear();
  std::FILE *f = std::fopen(path.c_str(), "rb");
  if (!f) {
    error = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0)
    text.append(buf, n);
  bool readError = std::ferror(f) != 0;
  int savedErrno = errno;
  std::fclose(f);
  if (readError) {
    error = path + ": cannot read: " + std::strerror(savedErrno);
    return false;
  }
  if (!parseSpec(text, spec, error)) {
    error = path + ": " + error;
    return false;
  }
  return true;
}

} // namespace attn
