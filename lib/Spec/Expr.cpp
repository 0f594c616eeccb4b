//===- Expr.cpp - parse and type-check mask and score expressions ---------===//
//
// Three phases, each reporting the first problem it finds: the lexer turns the
// text into tokens, a recursive-descent parser builds an untyped tree (names
// kept as written), and the checker resolves names, assigns types and inserts
// IntToFloat promotions. Depth is bounded while parsing so that no later
// recursive walk (checking, printing, lowering, destruction) can exhaust the
// stack, whatever the input.
//
//===----------------------------------------------------------------------===//

#include "attn/Spec/Expr.h"

#include <cfloat>
#include <charconv>
#include <cstdio>
#include <limits>
#include <system_error>

namespace attn {

const char *exprTypeName(ExprType t) {
  switch (t) {
  case ExprType::Int:
    return "Int";
  case ExprType::Float:
    return "Float";
  case ExprType::Bool:
    return "Bool";
  }
  return "?";
}

namespace {

//===----------------------------------------------------------------------===//
// Lexer
//===----------------------------------------------------------------------===//

enum class Tok { End, Int, Float, Ident, Punct };

struct Token {
  Tok kind = Tok::End;
  std::string text;
  int column = 0;
  int64_t intValue = 0;
  double floatValue = 0;
};

bool isDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool isIdentStart(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool isIdentChar(unsigned char c) { return isIdentStart(c) || isDigit(c); }
bool isSpace(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

/// Source text quoted for a message: printable ASCII as is, other bytes as
/// \xNN, long text cut short.
std::string quote(const std::string &text) {
  std::string out = "'";
  size_t n = 0;
  for (unsigned char c : text) {
    if (++n > 24) {
      out += "...";
      break;
    }
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    }
  }
  return out + "'";
}

std::string describe(const Token &t) {
  if (t.kind == Tok::End)
    return "the end of the expression";
  return quote(t.text);
}

std::string columnPrefix(int column) {
  return "column " + std::to_string(column) + ": ";
}

bool lex(const std::string &text, std::vector<Token> &tokens,
         std::string &error) {
  auto fail = [&](size_t at, const std::string &msg) {
    error = columnPrefix(static_cast<int>(at + 1)) + msg;
    return false;
  };
  size_t i = 0, n = text.size();
  // Columns are ints; longer texts are certainly not meant as expressions.
  if (n > static_cast<size_t>(std::numeric_limits<int>::max() / 2))
    return fail(0, "expression is too long");
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (isSpace(c)) {
      ++i;
      continue;
    }
    Token t;
    t.column = static_cast<int>(i + 1);
    size_t start = i;
    if (isDigit(c) || (c == '.' && i + 1 < n && isDigit(text[i + 1]))) {
      bool isFloat = false;
      while (i < n && isDigit(text[i]))
        ++i;
      if (i < n && text[i] == '.') {
        isFloat = true;
        ++i;
        while (i < n && isDigit(text[i]))
          ++i;
      }
      bool badExponent = false;
      if (i < n && (text[i] == 'e' || text[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (text[j] == '+' || text[j] == '-'))
          ++j;
        if (j < n && isDigit(text[j])) {
          isFloat = true;
          i = j;
          while (i < n && isDigit(text[i]))
            ++i;
        } else {
          badExponent = true;
        }
      }
      if (badExponent || (i < n && (isIdentChar(text[i]) || text[i] == '.'))) {
        // "12abc", "1.2.3", "2e": swallow the rest of the word for the message.
        while (i < n && (isIdentChar(text[i]) || text[i] == '.'))
          ++i;
        return fail(start,
                    "malformed number " + quote(text.substr(start, i - start)));
      }
      t.text = text.substr(start, i - start);
      if (isFloat) {
        t.kind = Tok::Float;
        double v = 0;
        auto res = std::from_chars(t.text.data(), t.text.data() + t.text.size(),
                                   v, std::chars_format::general);
        // Kernels compute in f32: a literal beyond its range would silently
        // become infinite there but not in the float64 reference.
        if (res.ec != std::errc() || res.ptr != t.text.data() + t.text.size() ||
            v > static_cast<double>(FLT_MAX))
          return fail(start, "float literal " + quote(t.text) +
                                 " is out of range (the f32 maximum is about "
                                 "3.4e38)");
        t.floatValue = v;
      } else {
        t.kind = Tok::Int;
        int64_t v = 0;
        auto res = std::from_chars(t.text.data(), t.text.data() + t.text.size(),
                                   v, 10);
        if (res.ec != std::errc() || res.ptr != t.text.data() + t.text.size())
          return fail(start,
                      "integer literal " + quote(t.text) +
                          " is out of range (the largest is " +
                          std::to_string(std::numeric_limits<int64_t>::max()) +
                          ")");
        t.intValue = v;
      }
      tokens.push_back(std::move(t));
      continue;
    }
    if (isIdentStart(c)) {
      while (i < n && isIdentChar(text[i]))
        ++i;
      t.kind = Tok::Ident;
      t.text = text.substr(start, i - start);
      tokens.push_back(std::move(t));
      continue;
    }
    static const char *const twoChar[] = {"<=", ">=", "==", "!=", "&&", "||"};
    bool matched = false;
    if (i + 1 < n) {
      for (const char *p : twoChar) {
        if (text[i] == p[0] && text[i + 1] == p[1]) {
          t.kind = Tok::Punct;
          t.text = p;
          i += 2;
          matched = true;
          break;
        }
      }
    }
    if (!matched) {
      static const char oneChar[] = "<>!+-*/%()[],";
      for (const char *p = oneChar; *p; ++p) {
        if (text[i] == *p) {
          t.kind = Tok::Punct;
          t.text = std::string(1, *p);
          i += 1;
          matched = true;
          break;
        }
      }
    }
    if (!matched) {
      std::string msg = "unexpected character " + quote(std::string(1, c));
      if (c == '&')
        msg += "; did you mean '&&'?";
      else if (c == '|')
        msg += "; did you mean '||'?";
      else if (c == '=')
        msg += "; did you mean '=='?";
      return fail(start, msg);
    }
    tokens.push_back(std::move(t));
  }
  Token end;
  end.kind = Tok::End;
  end.column = static_cast<int>(n + 1);
  tokens.push_back(std::move(end));
  return true;
}

//===----------------------------------------------------------------------===//
// Parser: builds the untyped tree
//===----------------------------------------------------------------------===//

std::unique_ptr<Expr> makeNode(ExprKind kind, int column) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->type = ExprType::Int; // Set by the checker.
  e->column = column;
  return e;
}

/// A parsed subtree and its height (a leaf has height 1).
struct Parsed {
  std::unique_ptr<Expr> e;
  int height = 0;
};

class Parser {
public:
  Parser(const std::vector<Token> &tokens, std::string &error)
      : tokens(tokens), error(error) {}

  bool parseAll(Parsed &out) {
    if (!parseOr(out))
      return false;
    const Token &t = peek();
    if (t.kind != Tok::End) {
      if (isPunct(")"))
        return fail(t.column, "unmatched ')'");
      if (isPunct("]"))
        return fail(t.column, "unmatched ']'");
      return fail(t.column,
                  "expected an operator or the end of the expression, got " +
                      describe(t));
    }
    return true;
  }

private:
  const std::vector<Token> &tokens;
  std::string &error;
  size_t pos = 0;
  int nesting = 0;

  const Token &peek() const { return tokens[pos]; }
  const Token &peekAhead() const {
    return tokens[pos + 1 < tokens.size() ? pos + 1 : pos];
  }
  bool isPunct(const char *p) const {
    return peek().kind == Tok::Punct && peek().text == p;
  }
  bool fail(int column, const std::string &msg) {
    error = columnPrefix(column) + msg;
    return false;
  }
  bool tooDeep(int column) {
    return fail(column, "expression is nested too deeply (more than " +
                            std::to_string(kMaxExprDepth) + " levels)");
  }

  /// Joins two operands under a binary operator at `opColumn`.
  bool combine(const Token &op, Parsed &lhs, Parsed &rhs) {
    int height = 1 + std::max(lhs.height, rhs.height);
    if (height > kMaxExprDepth)
      return tooDeep(op.column);
    auto e = makeNode(ExprKind::Binary, lhs.e->column);
    e->op = op.text;
    e->operands.push_back(std::move(lhs.e));
    e->operands.push_back(std::move(rhs.e));
    lhs.e = std::move(e);
    lhs.height = height;
    return true;
  }

  template <typename Fn>
  bool parseLeftAssoc(Parsed &out, std::initializer_list<const char *> ops,
                      Fn next) {
    if (!(this->*next)(out))
      return false;
    for (;;) {
      bool found = false;
      for (const char *op : ops)
        found = found || isPunct(op);
      if (!found)
        return true;
      Token op = peek();
      ++pos;
      Parsed rhs;
      if (!(this->*next)(rhs) || !combine(op, out, rhs))
        return false;
    }
  }

  bool parseOr(Parsed &out) {
    if (++nesting > kMaxExprDepth)
      return tooDeep(peek().column);
    bool ok = parseLeftAssoc(out, {"||"}, &Parser::parseAnd);
    --nesting;
    return ok;
  }
  bool parseAnd(Parsed &out) {
    return parseLeftAssoc(out, {"&&"}, &Parser::parseCompare);
  }
  bool isComparison() const {
    return isPunct("<") || isPunct("<=") || isPunct(">") || isPunct(">=") ||
           isPunct("==") || isPunct("!=");
  }
  bool parseCompare(Parsed &out) {
    if (!parseAdditive(out))
      return false;
    if (!isComparison())
      return true;
    Token op = peek();
    ++pos;
    Parsed rhs;
    if (!parseAdditive(rhs) || !combine(op, out, rhs))
      return false;
    if (isComparison())
      return fail(peek().column,
                  "comparisons cannot be chained; combine them with &&, as "
                  "in a < b && b < c");
    return true;
  }
  bool parseAdditive(Parsed &out) {
    return parseLeftAssoc(out, {"+", "-"}, &Parser::parseMultiplicative);
  }
  bool parseMultiplicative(Parsed &out) {
    return parseLeftAssoc(out, {"*", "/", "%"}, &Parser::parseUnary);
  }

  bool parseUnary(Parsed &out) {
    if (!isPunct("-") && !isPunct("!"))
      return parsePostfix(out);
    Token op = peek();
    ++pos;
    if (++nesting > kMaxExprDepth)
      return tooDeep(op.column);
    Parsed operand;
    bool ok = parseUnary(operand);
    --nesting;
    if (!ok)
      return false;
    if (operand.height + 1 > kMaxExprDepth)
      return tooDeep(op.column);
    out.e = makeNode(ExprKind::Unary, op.column);
    out.e->op = op.text;
    out.e->operands.push_back(std::move(operand.e));
    out.height = operand.height + 1;
    return true;
  }

  bool parsePostfix(Parsed &out) {
    if (!parsePrimary(out))
      return false;
    if (!isPunct("["))
      return true;
    if (out.e->kind == ExprKind::Index)
      return fail(peek().column,
                  "tensor '" + out.e->op +
                      "' is already indexed; put all indices in one pair of "
                      "brackets, as in " +
                      out.e->op + "[i, j]");
    return fail(peek().column,
                "only a tensor name can be indexed, as in bias[h, k]");
  }

  /// Parses `e, e, ...` up to `closer`; the opening bracket is consumed.
  bool parseList(const std::string &what, const char *closer,
                 std::vector<Parsed> &items) {
    if (isPunct(closer)) {
      ++pos;
      return true;
    }
    for (;;) {
      Parsed item;
      if (!parseOr(item))
        return false;
      items.push_back(std::move(item));
      if (isPunct(",")) {
        ++pos;
        continue;
      }
      if (isPunct(closer)) {
        ++pos;
        return true;
      }
      return fail(peek().column, std::string("expected ',' or '") + closer +
                                     "' in " + what + ", got " +
                                     describe(peek()));
    }
  }

  bool parsePrimary(Parsed &out) {
    const Token &t = peek();
    switch (t.kind) {
    case Tok::Int:
      out.e = makeNode(ExprKind::IntLiteral, t.column);
      out.e->intValue = t.intValue;
      out.height = 1;
      ++pos;
      return true;
    case Tok::Float:
      out.e = makeNode(ExprKind::FloatLiteral, t.column);
      out.e->floatValue = t.floatValue;
      out.height = 1;
      ++pos;
      return true;
    case Tok::Ident: {
      if (t.text == "true" || t.text == "false") {
        out.e = makeNode(ExprKind::BoolLiteral, t.column);
        out.e->intValue = t.text == "true";
        out.height = 1;
        ++pos;
        return true;
      }
      const Token &next = peekAhead();
      bool call = next.kind == Tok::Punct && next.text == "(";
      bool index = next.kind == Tok::Punct && next.text == "[";
      if (!call && !index) {
        out.e = makeNode(ExprKind::Var, t.column);
        out.e->op = t.text;
        out.height = 1;
        ++pos;
        return true;
      }
      Token name = t;
      pos += 2;
      std::vector<Parsed> items;
      if (!parseList(call ? "the arguments of '" + name.text + "'"
                          : "the indices of '" + name.text + "'",
                     call ? ")" : "]", items))
        return false;
      out.e = makeNode(call ? ExprKind::Call : ExprKind::Index, name.column);
      out.e->op = name.text;
      int height = 0;
      for (Parsed &item : items) {
        height = std::max(height, item.height);
        out.e->operands.push_back(std::move(item.e));
      }
      out.height = height + 1;
      if (out.height > kMaxExprDepth)
        return tooDeep(name.column);
      return true;
    }
    case Tok::Punct:
      if (t.text == "(") {
        int column = t.column;
        ++pos;
        if (!parseOr(out))
          return false;
        if (!isPunct(")"))
          return fail(peek().column,
                      "expected ')' to close the '(' at column " +
                          std::to_string(column) + ", got " + describe(peek()));
        ++pos;
        // A node starts where its source text starts, parentheses included.
        out.e->column = column;
        return true;
      }
      break;
    case Tok::End:
      break;
    }
    return fail(t.column, "expected an operand, got " + describe(t));
  }
};

//===----------------------------------------------------------------------===//
// Checker: resolves names, assigns types, inserts promotions
//===----------------------------------------------------------------------===//

struct VarName {
  const char *name;
  ExprVar var;
  ExprType type;
};
const VarName kVars[] = {
    {"b", ExprVar::B, ExprType::Int},
    {"h", ExprVar::H, ExprType::Int},
    {"q", ExprVar::Q, ExprType::Int},
    {"k", ExprVar::K, ExprType::Int},
    {"score", ExprVar::Score, ExprType::Float},
    {"Sq", ExprVar::Sq, ExprType::Int},
    {"Sk", ExprVar::Sk, ExprType::Int},
};
const char *const kFunctions[] = {"select", "min", "max", "abs", "exp", "tanh"};

bool isNumber(ExprType t) { return t == ExprType::Int || t == ExprType::Float; }

std::string typeName(ExprType t) { return exprTypeName(t); }

void promote(std::unique_ptr<Expr> &e) {
  if (e->type != ExprType::Int)
    return;
  auto wrap = makeNode(ExprKind::IntToFloat, e->column);
  wrap->type = ExprType::Float;
  wrap->operands.push_back(std::move(e));
  e = std::move(wrap);
}

/// Gives two numeric operands one type: Float if either is.
ExprType unify(std::unique_ptr<Expr> &a, std::unique_ptr<Expr> &b) {
  if (a->type == ExprType::Float || b->type == ExprType::Float) {
    promote(a);
    promote(b);
    return ExprType::Float;
  }
  return ExprType::Int;
}

std::string plural(size_t n, const char *one, const char *many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

class Checker {
public:
  Checker(const ExprContext &ctx, std::string &error)
      : ctx(ctx), error(error) {}

  bool check(std::unique_ptr<Expr> &e) {
    switch (e->kind) {
    case ExprKind::IntLiteral:
      e->type = ExprType::Int;
      return true;
    case ExprKind::FloatLiteral:
      e->type = ExprType::Float;
      return true;
    case ExprKind::BoolLiteral:
      e->type = ExprType::Bool;
      return true;
    case ExprKind::Var:
      return checkVar(*e);
    case ExprKind::Index:
      return checkIndex(*e);
    case ExprKind::Unary:
      return checkUnary(*e);
    case ExprKind::Binary:
      return checkBinary(*e);
    case ExprKind::Call:
      return checkCall(*e);
    case ExprKind::IntToFloat:
      if (!check(e->operands[0]))
        return false;
      e->type = ExprType::Float;
      return true;
    }
    return fail(e->column, "unknown expression node");
  }

private:
  const ExprContext &ctx;
  std::string &error;

  bool fail(int column, const std::string &msg) {
    error = columnPrefix(column) + msg;
    return false;
  }

  const VarName *findVar(const std::string &name) const {
    for (const VarName &v : kVars)
      if (name == v.name)
        return &v;
    return nullptr;
  }
  int findTensor(const std::string &name) const {
    if (!ctx.tensors)
      return -1;
    for (size_t i = 0; i < ctx.tensors->size(); ++i)
      if ((*ctx.tensors)[i].name == name)
        return static_cast<int>(i);
    return -1;
  }
  bool isFunction(const std::string &name) const {
    for (const char *f : kFunctions)
      if (name == f)
        return true;
    return false;
  }

  /// "names are b, h, q, k, Sq, Sk and the tensors (bias)".
  std::string knownNames() const {
    std::string s = "names are b, h, q, k, ";
    if (ctx.allowScore)
      s += "score, ";
    s += "Sq, Sk";
    if (!ctx.tensors || ctx.tensors->empty())
      return s + "; no tensors are declared";
    s += " and the tensors (";
    for (size_t i = 0; i < ctx.tensors->size(); ++i)
      s += (i ? ", " : "") + (*ctx.tensors)[i].name;
    return s + ")";
  }
  static std::string functionList() {
    return "functions are select, min, max, abs, exp, tanh";
  }

  bool unknownName(int column, const std::string &name) {
    return fail(column, "unknown name " + quote(name) + "; " + knownNames());
  }

  bool checkVar(Expr &e) {
    if (const VarName *v = findVar(e.op)) {
      if (v->var == ExprVar::Score && !ctx.allowScore)
        return fail(e.column, "'score' is only visible in score functions, "
                              "not in mask predicates; " +
                                  knownNames());
      e.var = v->var;
      e.type = v->type;
      return true;
    }
    int t = findTensor(e.op);
    if (t >= 0) {
      size_t rank = (*ctx.tensors)[t].shape.size();
      return fail(e.column, "tensor " + quote(e.op) + " must be indexed with " +
                                plural(rank, "index", "indices") + ", as in " +
                                e.op + "[...]");
    }
    if (isFunction(e.op))
      return fail(e.column,
                  quote(e.op) + " is a function; call it as " + e.op + "(...)");
    return unknownName(e.column, e.op);
  }

  bool checkIndex(Expr &e) {
    int t = findTensor(e.op);
    if (t < 0) {
      if (findVar(e.op) || isFunction(e.op))
        return fail(e.column,
                    quote(e.op) + " is not a tensor and cannot be indexed");
      return unknownName(e.column, e.op);
    }
    const TensorDecl &decl = (*ctx.tensors)[t];
    if (e.operands.size() != decl.shape.size())
      return fail(e.column, "tensor " + quote(e.op) + " has rank " +
                                std::to_string(decl.shape.size()) +
                                " but is indexed with " +
                                plural(e.operands.size(), "index", "indices"));
    for (size_t i = 0; i < e.operands.size(); ++i) {
      if (!check(e.operands[i]))
        return false;
      if (e.operands[i]->type != ExprType::Int)
        return fail(e.operands[i]->column, "index " + std::to_string(i + 1) +
                                               " of tensor " + quote(e.op) +
                                               " must be Int, got " +
                                               typeName(e.operands[i]->type));
    }
    e.tensorIndex = t;
    e.type = decl.elementType == TensorElementType::F32 ? ExprType::Float
                                                        : ExprType::Int;
    return true;
  }

  bool checkUnary(Expr &e) {
    if (!check(e.operands[0]))
      return false;
    ExprType t = e.operands[0]->type;
    if (e.op == "!") {
      if (t != ExprType::Bool)
        return fail(e.column,
                    "operator '!' expects a Bool operand, got " + typeName(t));
      e.type = ExprType::Bool;
      return true;
    }
    if (!isNumber(t))
      return fail(e.column,
                  "operator '-' expects an Int or Float operand, got " +
                      typeName(t));
    e.type = t;
    return true;
  }

  bool checkBinary(Expr &e) {
    if (!check(e.operands[0]) || !check(e.operands[1]))
      return false;
    ExprType a = e.operands[0]->type, b = e.operands[1]->type;
    std::string got = ", got " + typeName(a) + " and " + typeName(b);
    const std::string &op = e.op;
    if (op == "&&" || op == "||") {
      if (a != ExprType::Bool || b != ExprType::Bool)
        return fail(e.column,
                    "operator '" + op + "' expects Bool operands" + got);
      e.type = ExprType::Bool;
      return true;
    }
    if (op == "%") {
      if (a != ExprType::Int || b != ExprType::Int)
        return fail(e.column, "operator '%' expects Int operands" + got);
      e.type = ExprType::Int;
      return true;
    }
    if (!isNumber(a) || !isNumber(b))
      return fail(e.column,
                  "operator '" + op + "' expects Int or Float operands" + got);
    ExprType t = unify(e.operands[0], e.operands[1]);
    bool comparison = op == "<" || op == "<=" || op == ">" || op == ">=" ||
                      op == "==" || op == "!=";
    e.type = comparison ? ExprType::Bool : t;
    return true;
  }

  bool checkCall(Expr &e) {
    const std::string &f = e.op;
    if (!isFunction(f)) {
      if (findVar(f) || findTensor(f) >= 0)
        return fail(e.column,
                    quote(f) + " is not a function; " + functionList());
      return fail(e.column,
                  "unknown function " + quote(f) + "; " + functionList());
    }
    size_t arity = f == "select" ? 3 : (f == "min" || f == "max") ? 2 : 1;
    if (e.operands.size() != arity)
      return fail(e.column, f + " expects " +
                                plural(arity, "argument", "arguments") +
                                ", got " + std::to_string(e.operands.size()));
    for (auto &operand : e.operands)
      if (!check(operand))
        return false;
    auto &ops = e.operands;
    if (f == "select") {
      if (ops[0]->type != ExprType::Bool)
        return fail(ops[0]->column,
                    "select expects a Bool condition as its first argument, "
                    "got " +
                        typeName(ops[0]->type));
      ExprType a = ops[1]->type, b = ops[2]->type;
      if (a == ExprType::Bool && b == ExprType::Bool) {
        e.type = ExprType::Bool;
        return true;
      }
      if (!isNumber(a) || !isNumber(b))
        return fail(e.column, "select expects two numbers or two Bools after "
                              "the condition, got " +
                                  typeName(a) + " and " + typeName(b));
      e.type = unify(ops[1], ops[2]);
      return true;
    }
    if (f == "min" || f == "max") {
      if (!isNumber(ops[0]->type) || !isNumber(ops[1]->type))
        return fail(e.column, f + " expects Int or Float arguments, got " +
                                  typeName(ops[0]->type) + " and " +
                                  typeName(ops[1]->type));
      e.type = unify(ops[0], ops[1]);
      return true;
    }
    if (!isNumber(ops[0]->type))
      return fail(e.column,
                  f +
                      (f == "abs" ? " expects an Int or Float argument"
                                  : " expects a Float argument") +
                      ", got " + typeName(ops[0]->type));
    if (f == "abs") {
      e.type = ops[0]->type;
      return true;
    }
    promote(ops[0]); // exp, tanh
    e.type = ExprType::Float;
    return true;
  }
};

bool isBlank(const std::string &text) {
  for (char c : text)
    if (!isSpace(static_cast<unsigned char>(c)))
      return false;
  return true;
}

void print(const Expr &e, std::string &out) {
  auto list = [&](const char *open, const char *close) {
    out += open;
    for (size_t i = 0; i < e.operands.size(); ++i) {
      if (i)
        out += ", ";
      print(*e.operands[i], out);
    }
    out += close;
  };
  switch (e.kind) {
  case ExprKind::IntLiteral:
    out += std::to_string(e.intValue);
    return;
  case ExprKind::FloatLiteral: {
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), e.floatValue);
    std::string s(buf, res.ptr);
    if (s.find_first_of(".eni") == std::string::npos)
      s += ".0";
    out += s;
    return;
  }
  case ExprKind::BoolLiteral:
    out += e.intValue ? "true" : "false";
    return;
  case ExprKind::Var:
    for (const VarName &v : kVars)
      if (v.var == e.var) {
        out += v.name;
        return;
      }
    out += "?";
    return;
  case ExprKind::Index:
    out += e.op.empty() ? "tensor" + std::to_string(e.tensorIndex) : e.op;
    list("[", "]");
    return;
  case ExprKind::Unary:
    out += "(" + e.op;
    print(*e.operands[0], out);
    out += ")";
    return;
  case ExprKind::Binary:
    out += "(";
    print(*e.operands[0], out);
    out += " " + e.op + " ";
    print(*e.operands[1], out);
    out += ")";
    return;
  case ExprKind::Call:
    out += e.op;
    list("(", ")");
    return;
  case ExprKind::IntToFloat:
    out += "float";
    list("(", ")");
    return;
  }
}

} // namespace

std::unique_ptr<Expr> parseExpr(const std::string &text, const ExprContext &ctx,
                                ExprType resultType, std::string &error) {
  error.clear();
  if (isBlank(text)) {
    error = columnPrefix(1) + "empty expression";
    return nullptr;
  }
  std::vector<Token> tokens;
  if (!lex(text, tokens, error))
    return nullptr;
  Parsed root;
  if (!Parser(tokens, error).parseAll(root))
    return nullptr;
  Checker checker(ctx, error);
  if (!checker.check(root.e))
    return nullptr;
  std::unique_ptr<Expr> e = std::move(root.e);
  if (e->type == resultType)
    return e;
  if (resultType == ExprType::Float && e->type == ExprType::Int) {
    promote(e);
    return e;
  }
  const char *what = resultType == ExprType::Bool    ? " (a mask predicate)"
                     : resultType == ExprType::Float ? " (a score)"
                                                     : "";
  const char *article = resultType == ExprType::Int ? "an " : "a ";
  error = columnPrefix(e->column) + "expected " + article +
          exprTypeName(resultType) + " expression" + what + ", got " +
          exprTypeName(e->type);
  return nullptr;
}

bool exprUsesVar(const Expr &e, ExprVar v) {
  if (e.kind == ExprKind::Var && e.var == v)
    return true;
  for (const auto &operand : e.operands)
    if (operand && exprUsesVar(*operand, v))
      return true;
  return false;
}

bool exprUsesTensor(const Expr &e, int tensorIndex) {
  if (e.kind == ExprKind::Index && e.tensorIndex == tensorIndex)
    return true;
  for (const auto &operand : e.operands)
    if (operand && exprUsesTensor(*operand, tensorIndex))
      return true;
  return false;
}

bool exprReadsTensorAt(const Expr &e, ExprVar v) {
  if (e.kind == ExprKind::Index)
    for (const auto &operand : e.operands)
      if (operand && exprUsesVar(*operand, v))
        return true;
  for (const auto &operand : e.operands)
    if (operand && exprReadsTensorAt(*operand, v))
      return true;
  return false;
}

std::string exprToString(const Expr &e) {
  std::string out;
  print(e, out);
  return out;
}

} // namespace attn
