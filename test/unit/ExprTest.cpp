//===- ExprTest.cpp - the mask/score expression language ------------------===//

#include "attn/Spec/Expr.h"

#include <gtest/gtest.h>

#include <random>

using namespace attn;

namespace {

std::vector<TensorDecl> testTensors() {
  std::vector<TensorDecl> t(2);
  t[0].name = "bias";
  t[0].elementType = TensorElementType::F32;
  t[0].shape = {16, -1};
  t[1].name = "ids";
  t[1].elementType = TensorElementType::I32;
  t[1].shape = {-1};
  return t;
}

struct Parsed {
  std::unique_ptr<Expr> e;
  std::string error;
};

Parsed parse(const std::string &text, ExprType result = ExprType::Bool,
             bool score = false, bool withTensors = true) {
  static const std::vector<TensorDecl> tensors = testTensors();
  static const std::vector<TensorDecl> none;
  ExprContext ctx;
  ctx.allowScore = score;
  ctx.tensors = withTensors ? &tensors : &none;
  Parsed p;
  p.error = "stale";
  p.e = parseExpr(text, ctx, result, p.error);
  return p;
}

/// The fully parenthesized form, or "error: <message>".
std::string show(const std::string &text, ExprType result = ExprType::Bool,
                 bool score = false) {
  Parsed p = parse(text, result, score);
  if (!p.e)
    return "error: " + p.error;
  EXPECT_EQ(p.error, "") << text;
  return exprToString(*p.e);
}

/// The error message, or "parsed: <form>" when the text parses.
std::string errorOf(const std::string &text, ExprType result = ExprType::Bool,
                    bool score = false, bool withTensors = true) {
  Parsed p = parse(text, result, score, withTensors);
  if (p.e)
    return "parsed: " + exprToString(*p.e);
  return p.error;
}

} // namespace

TEST(ExprTypeName, Names) {
  EXPECT_STREQ(exprTypeName(ExprType::Int), "Int");
  EXPECT_STREQ(exprTypeName(ExprType::Float), "Float");
  EXPECT_STREQ(exprTypeName(ExprType::Bool), "Bool");
}

TEST(ExprPrecedence, ArithmeticBindsTighterThanComparison) {
  EXPECT_EQ(show("q + 1 * 2 < k"), "((q + (1 * 2)) < k)");
  EXPECT_EQ(show("q * 2 + 1 >= k"), "(((q * 2) + 1) >= k)");
  EXPECT_EQ(show("(q + 1) * 2 == k"), "(((q + 1) * 2) == k)");
}

TEST(ExprPrecedence, LeftAssociative) {
  EXPECT_EQ(show("q - k - 1 > 0"), "(((q - k) - 1) > 0)");
  EXPECT_EQ(show("q / 2 / 3 != q % 5 % 2"), "(((q / 2) / 3) != ((q % 5) % 2))");
  EXPECT_EQ(show("q < 1 || q < 2 || q < 3"),
            "(((q < 1) || (q < 2)) || (q < 3))");
}

TEST(ExprPrecedence, AndBindsTighterThanOr) {
  EXPECT_EQ(show("q < k || q == k && b != h"),
            "((q < k) || ((q == k) && (b != h)))");
  EXPECT_EQ(show("q < k && q == k || b != h"),
            "(((q < k) && (q == k)) || (b != h))");
}

TEST(ExprPrecedence, UnaryBindsTightest) {
  EXPECT_EQ(show("-q * 2 + k % 3 / 2 >= 0"),
            "((((-q) * 2) + ((k % 3) / 2)) >= 0)");
  EXPECT_EQ(show("!(q < k) && true"), "((!(q < k)) && true)");
  EXPECT_EQ(show("- -q == q"), "((-(-q)) == q)");
  EXPECT_EQ(show("!!false"), "(!(!false))");
  EXPECT_EQ(show("-bias[h, k] < 0"), "((-bias[h, k]) < float(0))");
}

TEST(ExprPrecedence, WhitespaceIsIgnored) {
  EXPECT_EQ(show("q<=k&&k>=0"), "((q <= k) && (k >= 0))");
  EXPECT_EQ(show(" \tq <=\n k\r"), "(q <= k)");
  EXPECT_EQ(show("bias [ h , k ] > 0"), "(bias[h, k] > float(0))");
}

TEST(ExprLiterals, Values) {
  Parsed p = parse("17", ExprType::Int);
  ASSERT_TRUE(p.e) << p.error;
  EXPECT_EQ(p.e->kind, ExprKind::IntLiteral);
  EXPECT_EQ(p.e->type, ExprType::Int);
  EXPECT_EQ(p.e->intValue, 17);

  struct Case {
    const char *text;
    double value;
  } floats[] = {{"1.5", 1.5},    {"2e-3", 2e-3}, {".5", 0.5},
                {"1e3", 1000.0}, {"3.", 3.0},    {"2.5E+2", 250.0}};
  for (const Case &c : floats) {
    Parsed f = parse(c.text, ExprType::Float);
    ASSERT_TRUE(f.e) << c.text << ": " << f.error;
    EXPECT_EQ(f.e->kind, ExprKind::FloatLiteral) << c.text;
    EXPECT_EQ(f.e->type, ExprType::Float) << c.text;
    EXPECT_EQ(f.e->floatValue, c.value) << c.text;
  }

  Parsed t = parse("true");
  ASSERT_TRUE(t.e);
  EXPECT_EQ(t.e->kind, ExprKind::BoolLiteral);
  EXPECT_EQ(t.e->intValue, 1);
  Parsed fl = parse("false");
  ASSERT_TRUE(fl.e);
  EXPECT_EQ(fl.e->intValue, 0);
  EXPECT_EQ(show("9223372036854775807 > q"), "(9223372036854775807 > q)");
}

TEST(ExprVariables, AllNamesResolve) {
  struct Case {
    const char *text;
    ExprVar var;
    ExprType type;
  } cases[] = {{"b", ExprVar::B, ExprType::Int},
               {"h", ExprVar::H, ExprType::Int},
               {"q", ExprVar::Q, ExprType::Int},
               {"k", ExprVar::K, ExprType::Int},
               {"Sq", ExprVar::Sq, ExprType::Int},
               {"Sk", ExprVar::Sk, ExprType::Int},
               {"score", ExprVar::Score, ExprType::Float}};
  for (const Case &c : cases) {
    Parsed p = parse(c.text, c.type, /*score=*/true);
    ASSERT_TRUE(p.e) << c.text << ": " << p.error;
    EXPECT_EQ(p.e->kind, ExprKind::Var);
    EXPECT_EQ(p.e->var, c.var) << c.text;
    EXPECT_EQ(p.e->type, c.type) << c.text;
    EXPECT_EQ(p.e->op, c.text);
  }
}

TEST(ExprTypes, IntArithmeticStaysInt) {
  Parsed p = parse("q / 2 + k % 3 - Sq * 2", ExprType::Int);
  ASSERT_TRUE(p.e) << p.error;
  EXPECT_EQ(p.e->type, ExprType::Int);
  EXPECT_EQ(exprToString(*p.e), "(((q / 2) + (k % 3)) - (Sq * 2))");
}

TEST(ExprTypes, FloatOperandPromotesTheIntOne) {
  Parsed p = parse("q + 1.5", ExprType::Float);
  ASSERT_TRUE(p.e) << p.error;
  EXPECT_EQ(p.e->type, ExprType::Float);
  ASSERT_EQ(p.e->operands.size(), 2u);
  EXPECT_EQ(p.e->operands[0]->kind, ExprKind::IntToFloat);
  EXPECT_EQ(p.e->operands[0]->type, ExprType::Float);
  EXPECT_EQ(p.e->operands[0]->operands[0]->kind, ExprKind::Var);
  EXPECT_EQ(p.e->operands[1]->kind, ExprKind::FloatLiteral);
  EXPECT_EQ(show("2 * score", ExprType::Float, true), "(float(2) * score)");
  EXPECT_EQ(show("score / (q - k)", ExprType::Float, true),
            "(score / float((q - k)))");
}

TEST(ExprTypes, ComparisonsPromoteAndGiveBool) {
  Parsed p = parse("q < 1.5");
  ASSERT_TRUE(p.e) << p.error;
  EXPECT_EQ(p.e->type, ExprType::Bool);
  EXPECT_EQ(exprToString(*p.e), "(float(q) < 1.5)");
  EXPECT_EQ(show("q == k"), "(q == k)");
  EXPECT_EQ(show("bias[h, k] != ids[q]"), "(bias[h, k] != float(ids[q]))");
}

TEST(ExprTypes, IntResultPromotedWhenFloatRequired) {
  Parsed p = parse("q - k", ExprType::Float);
  ASSERT_TRUE(p.e) << p.error;
  EXPECT_EQ(p.e->kind, ExprKind::IntToFloat);
  EXPECT_EQ(p.e->type, ExprType::Float);
  EXPECT_EQ(p.e->column, 1);
  EXPECT_EQ(exprToString(*p.e), "float((q - k))");
}

TEST(ExprTypes, Calls) {
  EXPECT_EQ(show("select(q < k, 1, 2.5)", ExprType::Float),
            "select((q < k), float(1), 2.5)");
  EXPECT_EQ(show("select(q < k, q, k)", ExprType::Int),
            "select((q < k), q, k)");
  EXPECT_EQ(show("select(q < k, true, b == 0)"),
            "select((q < k), true, (b == 0))");
  EXPECT_EQ(show("min(q, 1.5)", ExprType::Float), "min(float(q), 1.5)");
  EXPECT_EQ(show("max(q, k)", ExprType::Int), "max(q, k)");
  EXPECT_EQ(show("abs(q - k)", ExprType::Int), "abs((q - k))");
  EXPECT_EQ(show("abs(score)", ExprType::Float, true), "abs(score)");
  EXPECT_EQ(show("exp(q)", ExprType::Float), "exp(float(q))");
  EXPECT_EQ(show("tanh(score / 50) * 50", ExprType::Float, true),
            "(tanh((score / float(50))) * float(50))");

  Parsed p = parse("abs(q)", ExprType::Int);
  ASSERT_TRUE(p.e);
  EXPECT_EQ(p.e->kind, ExprKind::Call);
  EXPECT_EQ(p.e->op, "abs");
  EXPECT_EQ(p.e->type, ExprType::Int);
}

TEST(ExprTypes, Indexing) {
  Parsed p = parse("bias[h, k]", ExprType::Float);
  ASSERT_TRUE(p.e) << p.error;
  EXPECT_EQ(p.e->kind, ExprKind::Index);
  EXPECT_EQ(p.e->tensorIndex, 0);
  EXPECT_EQ(p.e->type, ExprType::Float);
  EXPECT_EQ(p.e->op, "bias");
  ASSERT_EQ(p.e->operands.size(), 2u);

  Parsed i = parse("ids[q + 1]", ExprType::Int);
  ASSERT_TRUE(i.e) << i.error;
  EXPECT_EQ(i.e->tensorIndex, 1);
  EXPECT_EQ(i.e->type, ExprType::Int);
  EXPECT_EQ(show("ids[q] == ids[k]"), "(ids[q] == ids[k])");
  EXPECT_EQ(show("bias[ids[q], k % 16] > 0.5"),
            "(bias[ids[q], (k % 16)] > 0.5)");
}

TEST(ExprUses, TensorReadAtVariable) {
  auto readsAtK = [](const std::string &text, ExprType result) {
    Parsed p = parse(text, result, /*score=*/true);
    EXPECT_TRUE(p.e) << text << ": " << p.error;
    return p.e && exprReadsTensorAt(*p.e, ExprVar::K);
  };
  EXPECT_TRUE(readsAtK("score + bias[h, k]", ExprType::Float));
  EXPECT_TRUE(readsAtK("score * bias[h, k % 16]", ExprType::Float));
  EXPECT_TRUE(readsAtK("score + bias[h, ids[k]]", ExprType::Float)); // nested
  EXPECT_TRUE(readsAtK("select(ids[k] == ids[q], score, 0.0)", ExprType::Float));
  EXPECT_FALSE(readsAtK("score + bias[h, q]", ExprType::Float));
  EXPECT_FALSE(readsAtK("score + bias[h, 0] * k", ExprType::Float)); // k outside the index
  EXPECT_FALSE(readsAtK("score * 0.5 + (k - q)", ExprType::Float));
  Parsed q = parse("bias[h, q] > 0.0");
  ASSERT_TRUE(q.e) << q.error;
  EXPECT_TRUE(exprReadsTensorAt(*q.e, ExprVar::Q));
  EXPECT_FALSE(exprReadsTensorAt(*q.e, ExprVar::K));
}

TEST(ExprErrors, Lexical) {
  EXPECT_EQ(errorOf(""), "column 1: empty expression");
  EXPECT_EQ(errorOf(" \t\n"), "column 1: empty expression");
  EXPECT_EQ(errorOf("q # k"), "column 3: unexpected character '#'");
  EXPECT_EQ(errorOf("q & k"),
            "column 3: unexpected character '&'; did you mean '&&'?");
  EXPECT_EQ(errorOf("q | k"),
            "column 3: unexpected character '|'; did you mean '||'?");
  EXPECT_EQ(errorOf("q = k"),
            "column 3: unexpected character '='; did you mean '=='?");
  EXPECT_EQ(errorOf("q < k\xC3\xA9"), "column 6: unexpected character '\\xC3'");
  EXPECT_EQ(errorOf(std::string("q <\0 k", 6)),
            "column 4: unexpected character '\\x00'");
  EXPECT_EQ(errorOf("12abc < q"), "column 1: malformed number '12abc'");
  EXPECT_EQ(errorOf("q < 1.2.3"), "column 5: malformed number '1.2.3'");
  EXPECT_EQ(errorOf("q < 2e"), "column 5: malformed number '2e'");
  EXPECT_EQ(errorOf("q < 2e+"), "column 5: malformed number '2e'");
  EXPECT_EQ(errorOf("q < 99999999999999999999"),
            "column 5: integer literal '99999999999999999999' is out of range "
            "(the largest is 9223372036854775807)");
  EXPECT_EQ(errorOf("q < 1e999"), "column 5: float literal '1e999' is out of "
                                  "range (the f32 maximum is about 3.4e38)");
  EXPECT_EQ(errorOf("q < 1e39"), "column 5: float literal '1e39' is out of "
                                 "range (the f32 maximum is about 3.4e38)");
  EXPECT_EQ(show("q < 3e38"), "(float(q) < 3e+38)");
}

TEST(ExprErrors, Syntax) {
  EXPECT_EQ(errorOf("q +"),
            "column 4: expected an operand, got the end of the expression");
  EXPECT_EQ(errorOf("q + )"), "column 5: expected an operand, got ')'");
  EXPECT_EQ(
      errorOf("q k"),
      "column 3: expected an operator or the end of the expression, got 'k'");
  EXPECT_EQ(errorOf("q < k)"), "column 6: unmatched ')'");
  EXPECT_EQ(errorOf("q < k]"), "column 6: unmatched ']'");
  EXPECT_EQ(
      errorOf("(q < k"),
      "column 7: expected ')' to close the '(' at column 1, got the end of "
      "the expression");
  EXPECT_EQ(errorOf("min(q k) < 1"),
            "column 7: expected ',' or ')' in the arguments of 'min', got 'k'");
  EXPECT_EQ(errorOf("bias[h k] < 1"),
            "column 8: expected ',' or ']' in the indices of 'bias', got 'k'");
  EXPECT_EQ(errorOf("min(q,) < 1"), "column 7: expected an operand, got ')'");
  EXPECT_EQ(
      errorOf("q < k < 5"),
      "column 7: comparisons cannot be chained; combine them with &&, as in "
      "a < b && b < c");
  EXPECT_EQ(
      errorOf("q == k != true"),
      "column 8: comparisons cannot be chained; combine them with &&, as in "
      "a < b && b < c");
  EXPECT_EQ(
      errorOf("bias[h][k] > 0"),
      "column 8: tensor 'bias' is already indexed; put all indices in one "
      "pair of brackets, as in bias[i, j]");
  EXPECT_EQ(errorOf("(q)[1] > 0"),
            "column 4: only a tensor name can be indexed, as in bias[h, k]");
  EXPECT_EQ(
      errorOf("true(1)"),
      "column 5: expected an operator or the end of the expression, got '('");
}

TEST(ExprErrors, Names) {
  EXPECT_EQ(
      errorOf("q < k && foo"),
      "column 10: unknown name 'foo'; names are b, h, q, k, Sq, Sk and the "
      "tensors (bias, ids)");
  EXPECT_EQ(
      errorOf("foo", ExprType::Bool, false, /*withTensors=*/false),
      "column 1: unknown name 'foo'; names are b, h, q, k, Sq, Sk; no tensors "
      "are declared");
  EXPECT_EQ(
      errorOf("foo", ExprType::Float, /*score=*/true, false),
      "column 1: unknown name 'foo'; names are b, h, q, k, score, Sq, Sk; no "
      "tensors are declared");
  EXPECT_EQ(errorOf("B < 1"),
            "column 1: unknown name 'B'; names are b, h, q, k, Sq, Sk and the "
            "tensors (bias, ids)");
  EXPECT_EQ(
      errorOf("score > 0", ExprType::Bool, false, false),
      "column 1: 'score' is only visible in score functions, not in mask "
      "predicates; names are b, h, q, k, Sq, Sk; no tensors are declared");
  EXPECT_EQ(errorOf("bias > 0"), "column 1: tensor 'bias' must be indexed with "
                                 "2 indices, as in bias[...]");
  EXPECT_EQ(
      errorOf("ids > 0"),
      "column 1: tensor 'ids' must be indexed with 1 index, as in ids[...]");
  EXPECT_EQ(errorOf("exp < 1"),
            "column 1: 'exp' is a function; call it as exp(...)");
  EXPECT_EQ(errorOf("q[1] < 1"),
            "column 1: 'q' is not a tensor and cannot be indexed");
  EXPECT_EQ(errorOf("min[1] < 1"),
            "column 1: 'min' is not a tensor and cannot be indexed");
  EXPECT_EQ(
      errorOf("foo[1] < 1"),
      "column 1: unknown name 'foo'; names are b, h, q, k, Sq, Sk and the "
      "tensors (bias, ids)");
  EXPECT_EQ(
      errorOf("q(1) < 1"),
      "column 1: 'q' is not a function; functions are select, min, max, abs, "
      "exp, tanh");
  EXPECT_EQ(
      errorOf("bias(1) < 1"),
      "column 1: 'bias' is not a function; functions are select, min, max, "
      "abs, exp, tanh");
  EXPECT_EQ(
      errorOf("q < sqrt(k)"),
      "column 5: unknown function 'sqrt'; functions are select, min, max, "
      "abs, exp, tanh");
}

TEST(ExprErrors, IndexRankAndType) {
  EXPECT_EQ(errorOf("bias[h] < 1"),
            "column 1: tensor 'bias' has rank 2 but is indexed with 1 index");
  EXPECT_EQ(errorOf("bias[h, k, q] < 1"),
            "column 1: tensor 'bias' has rank 2 but is indexed with 3 indices");
  EXPECT_EQ(errorOf("bias[] < 1"),
            "column 1: tensor 'bias' has rank 2 but is indexed with 0 indices");
  EXPECT_EQ(errorOf("ids[q, k] < 1"),
            "column 1: tensor 'ids' has rank 1 but is indexed with 2 indices");
  EXPECT_EQ(errorOf("bias[h, 1.5] < 1"),
            "column 9: index 2 of tensor 'bias' must be Int, got Float");
  EXPECT_EQ(errorOf("bias[q < k, k] < 1"),
            "column 6: index 1 of tensor 'bias' must be Int, got Bool");
  EXPECT_EQ(errorOf("ids[bias[h, k]] < 1"),
            "column 5: index 1 of tensor 'ids' must be Int, got Float");
}

TEST(ExprErrors, OperatorTypes) {
  EXPECT_EQ(errorOf("q && k < 1"),
            "column 1: operator '&&' expects Bool operands, got Int and Bool");
  EXPECT_EQ(errorOf("q + 1 && k"),
            "column 1: operator '&&' expects Bool operands, got Int and Int");
  EXPECT_EQ(
      errorOf("q < k || 1.5"),
      "column 1: operator '||' expects Bool operands, got Bool and Float");
  EXPECT_EQ(errorOf("!q"),
            "column 1: operator '!' expects a Bool operand, got Int");
  EXPECT_EQ(errorOf("-(q < k)"),
            "column 1: operator '-' expects an Int or Float operand, got Bool");
  EXPECT_EQ(
      errorOf("true + 1 > 0"),
      "column 1: operator '+' expects Int or Float operands, got Bool and Int");
  EXPECT_EQ(
      errorOf("q * (k < 1) > 0"),
      "column 1: operator '*' expects Int or Float operands, got Int and Bool");
  EXPECT_EQ(
      errorOf("true < 1"),
      "column 1: operator '<' expects Int or Float operands, got Bool and Int");
  EXPECT_EQ(errorOf("(q < k) == (k < q)"),
            "column 1: operator '==' expects Int or Float operands, got Bool "
            "and Bool");
  EXPECT_EQ(errorOf("score % 2", ExprType::Float, true),
            "column 1: operator '%' expects Int operands, got Float and Int");
  EXPECT_EQ(errorOf("q % 2.0 == 0"),
            "column 1: operator '%' expects Int operands, got Int and Float");
  EXPECT_EQ(errorOf("q < k && (q + (k < 1)) > 0"),
            "column 10: operator '+' expects Int or Float operands, got Int "
            "and Bool");
}

TEST(ExprErrors, CallTypesAndArity) {
  EXPECT_EQ(errorOf("min(q) < 1"), "column 1: min expects 2 arguments, got 1");
  EXPECT_EQ(errorOf("max(q, k, b) < 1"),
            "column 1: max expects 2 arguments, got 3");
  EXPECT_EQ(errorOf("abs(q, k) < 1"),
            "column 1: abs expects 1 argument, got 2");
  EXPECT_EQ(errorOf("exp() < 1"), "column 1: exp expects 1 argument, got 0");
  EXPECT_EQ(errorOf("select(q < k, 1) > 0"),
            "column 1: select expects 3 arguments, got 2");
  EXPECT_EQ(errorOf("select(q, 1, 2) > 0"),
            "column 8: select expects a Bool condition as its first argument, "
            "got Int");
  EXPECT_EQ(
      errorOf("select(q < k, 1, true)"),
      "column 1: select expects two numbers or two Bools after the condition, "
      "got Int and Bool");
  EXPECT_EQ(errorOf("min(q < k, 1) > 0"),
            "column 1: min expects Int or Float arguments, got Bool and Int");
  EXPECT_EQ(errorOf("abs(true) > 0"),
            "column 1: abs expects an Int or Float argument, got Bool");
  EXPECT_EQ(errorOf("exp(q < k) > 0"),
            "column 1: exp expects a Float argument, got Bool");
  EXPECT_EQ(errorOf("q < k && tanh(true) > 0"),
            "column 10: tanh expects a Float argument, got Bool");
}

TEST(ExprErrors, ResultType) {
  EXPECT_EQ(
      errorOf("score * 2", ExprType::Bool, true),
      "column 1: expected a Bool expression (a mask predicate), got Float");
  EXPECT_EQ(errorOf("q + k"),
            "column 1: expected a Bool expression (a mask predicate), got Int");
  EXPECT_EQ(errorOf("score > 0", ExprType::Float, true),
            "column 1: expected a Float expression (a score), got Bool");
  EXPECT_EQ(errorOf("1.5", ExprType::Int),
            "column 1: expected an Int expression, got Float");
  // The root starts at its opening parenthesis.
  EXPECT_EQ(errorOf("  (q + k)"),
            "column 3: expected a Bool expression (a mask predicate), got Int");
}

TEST(ExprErrors, FailureReturnsNullAndSuccessClearsError) {
  Parsed bad = parse("q +");
  EXPECT_EQ(bad.e, nullptr);
  EXPECT_NE(bad.error, "stale");
  Parsed good = parse("q < k");
  ASSERT_NE(good.e, nullptr);
  EXPECT_EQ(good.error, "");
}

TEST(ExprColumns, EveryNodeRecordsItsStart) {
  Parsed p = parse("q + bias[h, k]", ExprType::Float);
  ASSERT_TRUE(p.e) << p.error;
  EXPECT_EQ(p.e->column, 1);
  const Expr &lhs = *p.e->operands[0]; // float(q)
  EXPECT_EQ(lhs.kind, ExprKind::IntToFloat);
  EXPECT_EQ(lhs.column, 1);
  EXPECT_EQ(lhs.operands[0]->column, 1);
  const Expr &idx = *p.e->operands[1];
  EXPECT_EQ(idx.column, 5);
  EXPECT_EQ(idx.operands[0]->column, 10);
  EXPECT_EQ(idx.operands[1]->column, 13);

  Parsed q = parse("(q + 1) * k > -k", ExprType::Bool);
  ASSERT_TRUE(q.e) << q.error;
  EXPECT_EQ(q.e->column, 1);                                        // >
  EXPECT_EQ(q.e->operands[0]->column, 1);                           // *
  EXPECT_EQ(q.e->operands[0]->operands[0]->column, 1);              // (q + 1)
  EXPECT_EQ(q.e->operands[0]->operands[0]->operands[0]->column, 2); // q
  EXPECT_EQ(q.e->operands[0]->operands[0]->operands[1]->column, 6); // 1
  EXPECT_EQ(q.e->operands[0]->operands[1]->column, 11);             // k
  EXPECT_EQ(q.e->operands[1]->column, 15);                          // -k
  EXPECT_EQ(q.e->operands[1]->operands[0]->column, 16);

  Parsed c = parse("x < min(q, k)", ExprType::Bool);
  EXPECT_EQ(c.error, "column 1: unknown name 'x'; names are b, h, q, k, Sq, Sk "
                     "and the tensors (bias, ids)");
  Parsed m = parse("k<q &&  max(q, k) > 0", ExprType::Bool);
  ASSERT_TRUE(m.e) << m.error;
  EXPECT_EQ(m.e->operands[1]->column, 9);
  EXPECT_EQ(m.e->operands[1]->operands[0]->column, 9);
  EXPECT_EQ(m.e->operands[1]->operands[0]->operands[1]->column, 16);
}

TEST(ExprDepth, ParenthesesAtTheLimit) {
  auto nested = [](int n) {
    return std::string(n, '(') + "q" + std::string(n, ')');
  };
  Parsed ok = parse(nested(kMaxExprDepth - 1), ExprType::Int);
  EXPECT_TRUE(ok.e) << ok.error;
  EXPECT_EQ(
      errorOf(nested(kMaxExprDepth), ExprType::Int),
      "column 257: expression is nested too deeply (more than 256 levels)");
  EXPECT_EQ(
      errorOf(nested(100000), ExprType::Int),
      "column 257: expression is nested too deeply (more than 256 levels)");
  // Unclosed, too: the limit trips before the missing ')' is noticed.
  EXPECT_EQ(
      errorOf(std::string(1000000, '(')),
      "column 257: expression is nested too deeply (more than 256 levels)");
}

TEST(ExprDepth, UnaryChains) {
  Parsed ok = parse(std::string(kMaxExprDepth - 1, '-') + "q", ExprType::Int);
  EXPECT_TRUE(ok.e) << ok.error;
  EXPECT_EQ(
      errorOf(std::string(kMaxExprDepth, '-') + "q", ExprType::Int),
      "column 256: expression is nested too deeply (more than 256 levels)");
  EXPECT_EQ(
      errorOf(std::string(500000, '!') + "true"),
      "column 256: expression is nested too deeply (more than 256 levels)");
}

TEST(ExprDepth, OperatorChains) {
  auto chain = [](int terms) {
    std::string s = "q";
    for (int i = 1; i < terms; ++i)
      s += "+q";
    return s;
  };
  // A chain of n terms is a left-leaning tree of height n.
  Parsed ok = parse(chain(kMaxExprDepth), ExprType::Int);
  EXPECT_TRUE(ok.e) << ok.error;
  EXPECT_EQ(
      errorOf(chain(kMaxExprDepth + 1), ExprType::Int),
      "column 512: expression is nested too deeply (more than 256 levels)");
  std::string big = chain(200000);
  Parsed bad = parse(big, ExprType::Int);
  EXPECT_FALSE(bad.e);
  EXPECT_NE(bad.error.find("nested too deeply"), std::string::npos);

  std::string calls;
  for (int i = 0; i < 100000; ++i)
    calls += "abs(";
  Parsed deepCalls = parse(calls + "q", ExprType::Int);
  EXPECT_FALSE(deepCalls.e);
  EXPECT_NE(deepCalls.error.find("nested too deeply"), std::string::npos);
}

TEST(ExprUses, VarsAndTensors) {
  Parsed p = parse("k <= q + Sk - Sq && ids[k] > 0");
  ASSERT_TRUE(p.e) << p.error;
  EXPECT_TRUE(exprUsesVar(*p.e, ExprVar::K));
  EXPECT_TRUE(exprUsesVar(*p.e, ExprVar::Q));
  EXPECT_TRUE(exprUsesVar(*p.e, ExprVar::Sq));
  EXPECT_TRUE(exprUsesVar(*p.e, ExprVar::Sk));
  EXPECT_FALSE(exprUsesVar(*p.e, ExprVar::B));
  EXPECT_FALSE(exprUsesVar(*p.e, ExprVar::H));
  EXPECT_FALSE(exprUsesVar(*p.e, ExprVar::Score));
  EXPECT_TRUE(exprUsesTensor(*p.e, 1));
  EXPECT_FALSE(exprUsesTensor(*p.e, 0));

  Parsed s = parse("score + bias[h, k]", ExprType::Float, true);
  ASSERT_TRUE(s.e) << s.error;
  EXPECT_TRUE(exprUsesVar(*s.e, ExprVar::Score));
  EXPECT_TRUE(exprUsesVar(*s.e, ExprVar::H));
  EXPECT_FALSE(exprUsesVar(*s.e, ExprVar::Q));
  EXPECT_TRUE(exprUsesTensor(*s.e, 0));
  EXPECT_FALSE(exprUsesTensor(*s.e, 1));
}

TEST(ExprRobustness, RandomTokenSoup) {
  // Random sequences of valid and invalid tokens must parse or fail cleanly;
  // a parsed result always has the requested type.
  static const char *const pieces[] = {"q",
                                       "k",
                                       "b",
                                       "h",
                                       "Sq",
                                       "Sk",
                                       "score",
                                       "bias",
                                       "ids",
                                       "foo",
                                       "1",
                                       "2.5",
                                       ".5",
                                       "1e3",
                                       "true",
                                       "false",
                                       "(",
                                       ")",
                                       "[",
                                       "]",
                                       ",",
                                       "+",
                                       "-",
                                       "*",
                                       "/",
                                       "%",
                                       "<",
                                       "<=",
                                       ">",
                                       ">=",
                                       "==",
                                       "!=",
                                       "&&",
                                       "||",
                                       "!",
                                       "select",
                                       "min",
                                       "max",
                                       "abs",
                                       "exp",
                                       "tanh",
                                       " ",
                                       "#",
                                       "&",
                                       "=",
                                       "\xFF",
                                       "9999999999999999999999"};
  const size_t numPieces = sizeof(pieces) / sizeof(pieces[0]);
  std::mt19937 rng(1234);
  int parsed = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string text;
    int len = 1 + static_cast<int>(rng() % 24);
    for (int i = 0; i < len; ++i)
      text += pieces[rng() % numPieces];
    ExprType want = iter % 3 == 0   ? ExprType::Bool
                    : iter % 3 == 1 ? ExprType::Float
                                    : ExprType::Int;
    Parsed p = parse(text, want, iter % 2 == 0);
    if (p.e) {
      ++parsed;
      EXPECT_EQ(p.e->type, want) << text;
      EXPECT_EQ(p.error, "") << text;
    } else {
      EXPECT_EQ(p.error.rfind("column ", 0), 0u) << text << " -> " << p.error;
    }
  }
  EXPECT_GT(parsed, 0);
}
