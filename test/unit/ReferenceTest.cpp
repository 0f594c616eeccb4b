//===- ReferenceTest.cpp - hand-checked cases of the float64 reference ----===//
//
// Specs are built by hand here (no parser needed) and every expected value is
// worked out on paper in the comments.
//
//===----------------------------------------------------------------------===//

#include "attn/Reference/Reference.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace attn;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

HostArray arr(std::vector<int64_t> shape, std::vector<double> data) {
  HostArray a;
  a.shape = std::move(shape);
  a.data = std::move(data);
  EXPECT_EQ(a.data.size(), size_t(a.numElements()));
  return a;
}

/// Inputs with all sizes bound from q, k, v.
ExecInputs inputs(HostArray q, HostArray k, HostArray v) {
  ExecInputs in;
  in.B = q.shape[0];
  in.Hq = q.shape[1];
  in.Sq = q.shape[2];
  in.Dqk = q.shape[3];
  in.Hkv = k.shape[1];
  in.Sk = k.shape[2];
  in.Dv = v.shape[3];
  in.q = std::move(q);
  in.k = std::move(k);
  in.v = std::move(v);
  return in;
}

Spec attentionSpec() {
  Spec s;
  s.kind = VariantKind::Attention;
  return s;
}

ExecOutputs run(const Spec &spec, const ExecInputs &in) {
  ExecOutputs out;
  std::string err;
  EXPECT_TRUE(runReference(spec, in, out, err)) << err;
  return out;
}

// Expression builders.
std::unique_ptr<Expr> node(ExprKind k, ExprType t) {
  auto e = std::make_unique<Expr>();
  e->kind = k;
  e->type = t;
  return e;
}
std::unique_ptr<Expr> var(ExprVar v) {
  auto e = node(ExprKind::Var, v == ExprVar::Score ? ExprType::Float : ExprType::Int);
  e->var = v;
  return e;
}
std::unique_ptr<Expr> ilit(int64_t v) {
  auto e = node(ExprKind::IntLiteral, ExprType::Int);
  e->intValue = v;
  return e;
}
std::unique_ptr<Expr> flit(double v) {
  auto e = node(ExprKind::FloatLiteral, ExprType::Float);
  e->floatValue = v;
  return e;
}
std::unique_ptr<Expr> bin(const char *op, std::unique_ptr<Expr> a,
                          std::unique_ptr<Expr> b) {
  std::string o = op;
  bool cmp = o == "<" || o == "<=" || o == ">" || o == ">=" || o == "==" ||
             o == "!=" || o == "&&" || o == "||";
  ExprType t = cmp ? ExprType::Bool
               : (a->type == ExprType::Float || b->type == ExprType::Float)
                   ? ExprType::Float
                   : ExprType::Int;
  auto e = node(ExprKind::Binary, t);
  e->op = o;
  e->operands.push_back(std::move(a));
  e->operands.push_back(std::move(b));
  return e;
}
std::unique_ptr<Expr> index(int tensor, ExprType t, std::unique_ptr<Expr> i0,
                            std::unique_ptr<Expr> i1) {
  auto e = node(ExprKind::Index, t);
  e->tensorIndex = tensor;
  e->operands.push_back(std::move(i0));
  e->operands.push_back(std::move(i1));
  return e;
}

} // namespace

//===----------------------------------------------------------------------===//
// Softmax attention
//===----------------------------------------------------------------------===//

TEST(Reference, OneKeyGivesVExactly) {
  Spec spec = attentionSpec();
  // q . k = 1*3 + 2*4 = 11, default scale 1/sqrt(2): lse = 11/sqrt(2).
  ExecInputs in = inputs(arr({1, 1, 1, 2}, {1, 2}), arr({1, 1, 1, 2}, {3, 4}),
                         arr({1, 1, 1, 3}, {0.25, -7, 1e30}));
  ExecOutputs out = run(spec, in);
  EXPECT_EQ(out.out.shape, (std::vector<int64_t>{1, 1, 1, 3}));
  EXPECT_EQ(out.out.data, (std::vector<double>{0.25, -7, 1e30}));
  ASSERT_TRUE(out.lse);
  EXPECT_DOUBLE_EQ(out.lse->data[0], 11 / std::sqrt(2.0));
  EXPECT_FALSE(out.finalState);
}

TEST(Reference, TwoKeysByHand) {
  Spec spec = attentionSpec();
  spec.scale = 1.0;
  // Scores 0 and ln 3: P = (1/4, 3/4); lse = ln(1 + 3) = ln 4.
  ExecInputs in = inputs(arr({1, 1, 1, 1}, {1}),
                         arr({1, 1, 2, 1}, {0, std::log(3.0)}),
                         arr({1, 1, 2, 2}, {4, 8, 8, -4}));
  ExecOutputs out = run(spec, in);
  EXPECT_NEAR(out.out.data[0], 0.25 * 4 + 0.75 * 8, 1e-14);
  EXPECT_NEAR(out.out.data[1], 0.25 * 8 + 0.75 * -4, 1e-14);
  EXPECT_NEAR(out.lse->data[0], std::log(4.0), 1e-15);
}

TEST(Reference, LargeScoresDoNotOverflow) {
  Spec spec = attentionSpec();
  spec.scale = 1.0;
  // Scores 1000 and 1000 + ln 3.
  ExecInputs in = inputs(arr({1, 1, 1, 1}, {1000}),
                         arr({1, 1, 2, 1}, {1, 1 + std::log(3.0) / 1000}),
                         arr({1, 1, 2, 1}, {4, 8}));
  ExecOutputs out = run(spec, in);
  EXPECT_NEAR(out.out.data[0], 7.0, 1e-12);
  EXPECT_NEAR(out.lse->data[0], 1000 + std::log(4.0), 1e-12);
}

TEST(Reference, CausalBottomRightSqLessThanSk) {
  Spec spec = attentionSpec();
  spec.causal = true;
  // Sq = 2, Sk = 3: row i sees j <= i + 1. All scores 0 (q = 0), so P is
  // uniform over the visible keys.
  ExecInputs in = inputs(arr({1, 1, 2, 1}, {0, 0}), arr({1, 1, 3, 1}, {5, 6, 7}),
                         arr({1, 1, 3, 1}, {1, 2, 4}));
  ExecOutputs out = run(spec, in);
  EXPECT_NEAR(out.out.data[0], (1 + 2) / 2.0, 1e-15);
  EXPECT_NEAR(out.out.data[1], (1 + 2 + 4) / 3.0, 1e-15);
  EXPECT_NEAR(out.lse->data[0], std::log(2.0), 1e-15);
  EXPECT_NEAR(out.lse->data[1], std::log(3.0), 1e-15);
}

TEST(Reference, CausalSqGreaterThanSkMasksWholeRows) {
  Spec spec = attentionSpec();
  spec.causal = true;
  // Sq = 3, Sk = 1: row i sees j <= i - 2, so rows 0 and 1 see nothing.
  ExecInputs in = inputs(arr({1, 1, 3, 1}, {1, 2, 3}), arr({1, 1, 1, 1}, {1}),
                         arr({1, 1, 1, 2}, {5, -6}));
  ExecOutputs out = run(spec, in);
  EXPECT_EQ(out.out.data, (std::vector<double>{0, 0, 0, 0, 5, -6}));
  EXPECT_EQ(out.lse->data[0], -kInf);
  EXPECT_EQ(out.lse->data[1], -kInf);
  EXPECT_DOUBLE_EQ(out.lse->data[2], 3.0); // scale 1/sqrt(1)
  for (double x : out.out.data)
    EXPECT_FALSE(std::isnan(x));
}

TEST(Reference, WindowIsInclusive) {
  Spec spec = attentionSpec();
  spec.window = std::make_pair<int64_t, int64_t>(1, 0);
  // Sq = Sk = 4, q = 0: row i averages v over j in [i-1, i].
  ExecInputs in = inputs(arr({1, 1, 4, 1}, {0, 0, 0, 0}),
                         arr({1, 1, 4, 1}, {1, 2, 3, 4}),
                         arr({1, 1, 4, 1}, {10, 20, 40, 80}));
  ExecOutputs out = run(spec, in);
  EXPECT_NEAR(out.out.data[0], 10, 1e-15);
  EXPECT_NEAR(out.out.data[1], 15, 1e-15);
  EXPECT_NEAR(out.out.data[2], 30, 1e-15);
  EXPECT_NEAR(out.out.data[3], 60, 1e-15);

  // right = 1, left = 0 and Sk = Sq + 1: window [i+1, i+2].
  spec.window = std::make_pair<int64_t, int64_t>(0, 1);
  in = inputs(arr({1, 1, 2, 1}, {0, 0}), arr({1, 1, 3, 1}, {1, 2, 3}),
              arr({1, 1, 3, 1}, {10, 20, 40}));
  out = run(spec, in);
  EXPECT_NEAR(out.out.data[0], 30, 1e-15);
  EXPECT_NEAR(out.out.data[1], 40, 1e-15);
}

TEST(Reference, BlockSparseWithEmptyRowAndBroadcast) {
  Spec spec = attentionSpec();
  spec.blockSparse = std::make_pair<int64_t, int64_t>(2, 2);
  // Sq = 3, Sk = 3: 2x2 block layout; block row 0 sees block column 1 only,
  // block row 1 (query 2) sees nothing. [1, 1, 2, 2] broadcasts over B, H.
  ExecInputs in = inputs(arr({2, 1, 3, 1}, {0, 0, 0, 0, 0, 0}),
                         arr({2, 1, 3, 1}, {0, 0, 0, 0, 0, 0}),
                         arr({2, 1, 3, 1}, {1, 2, 3, 4, 5, 6}));
  in.blockMask = arr({1, 1, 2, 2}, {0, 1, 0, 0});
  ExecOutputs out = run(spec, in);
  EXPECT_EQ(out.out.data, (std::vector<double>{3, 3, 0, 6, 6, 0}));
  EXPECT_EQ(out.lse->data[0], 0.0);
  EXPECT_EQ(out.lse->data[2], -kInf);

  // Wrong layout size is an error, not a crash.
  in.blockMask = arr({1, 1, 2, 1}, {1, 1});
  ExecOutputs bad;
  std::string err;
  EXPECT_FALSE(runReference(spec, in, bad, err));
  EXPECT_NE(err.find("block_mask"), std::string::npos) << err;
}

TEST(Reference, Documents) {
  Spec spec = attentionSpec();
  spec.documents = true;
  ExecInputs in = inputs(arr({1, 1, 2, 1}, {0, 0}),
                         arr({1, 1, 3, 1}, {0, 0, 0}),
                         arr({1, 1, 3, 1}, {1, 2, 6}));
  in.qDocIds = arr({1, 2}, {7, 9});
  in.kvDocIds = arr({1, 3}, {7, 7, 8});
  ExecOutputs out = run(spec, in);
  EXPECT_NEAR(out.out.data[0], 1.5, 1e-15);
  EXPECT_EQ(out.out.data[1], 0.0); // document 9 has no keys
  EXPECT_EQ(out.lse->data[1], -kInf);
}

TEST(Reference, SoftcapThenAlibi) {
  Spec spec = attentionSpec();
  spec.scale = 1.0;
  spec.softcap = 2.0;
  spec.alibi = AlibiShape::PerHead;
  // One query (i = 0), Sk = 2, Sq = 1: distance |0 + 1 - j| = 1, 0.
  // s_j = 2 tanh(q k_j / 2) - 0.5 * |1 - j|.
  ExecInputs in = inputs(arr({1, 1, 1, 1}, {1}), arr({1, 1, 2, 1}, {3, -1}),
                         arr({1, 1, 2, 1}, {1, 0}));
  in.alibiSlopes = arr({1}, {0.5});
  ExecOutputs out = run(spec, in);
  double s0 = 2 * std::tanh(1.5) - 0.5, s1 = 2 * std::tanh(-0.5);
  double p0 = std::exp(s0) / (std::exp(s0) + std::exp(s1));
  EXPECT_NEAR(out.out.data[0], p0, 1e-15);
  EXPECT_NEAR(out.lse->data[0], std::log(std::exp(s0) + std::exp(s1)), 1e-15);

  // Per-batch-head slopes.
  spec.alibi = AlibiShape::PerBatchHead;
  in.alibiSlopes = arr({1, 1}, {0.5});
  out = run(spec, in);
  EXPECT_NEAR(out.out.data[0], p0, 1e-15);
}

TEST(Reference, GroupedQueryHeadsAndDvNotDqk) {
  Spec spec = attentionSpec();
  // Hq = 4, Hkv = 2: heads 0, 1 read kv head 0; heads 2, 3 read kv head 1.
  // One key per head, so out = v of the kv head. Dqk = 2, Dv = 3.
  ExecInputs in = inputs(arr({1, 4, 1, 2}, {1, 0, 0, 1, 1, 1, 2, 2}),
                         arr({1, 2, 1, 2}, {1, 2, 3, 4}),
                         arr({1, 2, 1, 3}, {1, 2, 3, 4, 5, 6}));
  ExecOutputs out = run(spec, in);
  EXPECT_EQ(out.out.shape, (std::vector<int64_t>{1, 4, 1, 3}));
  EXPECT_EQ(out.out.data,
            (std::vector<double>{1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6}));
  double r = 1 / std::sqrt(2.0);
  EXPECT_DOUBLE_EQ(out.lse->data[0], 1 * r);
  EXPECT_DOUBLE_EQ(out.lse->data[1], 2 * r);
  EXPECT_DOUBLE_EQ(out.lse->data[2], 7 * r);
  EXPECT_DOUBLE_EQ(out.lse->data[3], 14 * r);
}

TEST(Reference, CustomMaskAndScoreExpressions) {
  Spec spec = attentionSpec();
  spec.scale = 1.0;
  // mask: k <= q (top-left causal, unlike the built-in causal).
  spec.maskText = "k <= q";
  spec.maskExpr = bin("<=", var(ExprVar::K), var(ExprVar::Q));
  // score: score + bias[h, k].
  TensorDecl bias;
  bias.name = "bias";
  bias.shape = {1, -1};
  spec.tensors.push_back(bias);
  spec.scoreText = "score + bias[h, k]";
  spec.scoreExpr = bin("+", var(ExprVar::Score),
                       index(0, ExprType::Float, var(ExprVar::H), var(ExprVar::K)));
  // Sq = 2, Sk = 3 (bottom-right causal would let row 0 see key 1).
  ExecInputs in = inputs(arr({1, 1, 2, 1}, {0, 0}), arr({1, 1, 3, 1}, {0, 0, 0}),
                         arr({1, 1, 3, 1}, {1, 2, 4}));
  in.tensors.emplace_back("bias", arr({1, 3}, {0, std::log(3.0), 100}));
  ExecOutputs out = run(spec, in);
  EXPECT_NEAR(out.out.data[0], 1, 1e-15);
  EXPECT_NEAR(out.out.data[1], 0.25 * 1 + 0.75 * 2, 1e-15);
  EXPECT_NEAR(out.lse->data[1], std::log(4.0), 1e-15);

  // A score function returning -inf everywhere leaves the row empty.
  spec.scoreExpr = bin("*", flit(-kInf), flit(1.0));
  out = run(spec, in);
  EXPECT_EQ(out.out.data[0], 0.0);
  EXPECT_EQ(out.lse->data[0], -kInf);
}

TEST(Reference, ExpressionSemantics) {
  ExprEnv env;
  ExprValue r;
  std::string err;
  auto evalInt = [&](std::unique_ptr<Expr> e) {
    EXPECT_TRUE(evaluateExpr(*e, env, r, err)) << err;
    return r.i;
  };
  // Division truncates toward zero, % has C semantics.
  EXPECT_EQ(evalInt(bin("/", ilit(-7), ilit(2))), -3);
  EXPECT_EQ(evalInt(bin("%", ilit(-7), ilit(2))), -1);
  EXPECT_EQ(evalInt(bin("%", ilit(7), ilit(-2))), 1);
  EXPECT_EQ(evalInt(bin("/", ilit(7), ilit(-2))), -3);
  EXPECT_EQ(evalInt(bin("/", ilit(INT64_MIN), ilit(-1))), INT64_MIN);
  EXPECT_EQ(evalInt(bin("+", ilit(INT64_MAX), ilit(1))), INT64_MIN);
  // Float division is real division.
  auto e = bin("/", flit(-7), flit(2));
  ASSERT_TRUE(evaluateExpr(*e, env, r, err));
  EXPECT_EQ(r.type, ExprType::Float);
  EXPECT_EQ(r.f, -3.5);
  // Integer division by zero is an error.
  e = bin("/", ilit(1), ilit(0));
  EXPECT_FALSE(evaluateExpr(*e, env, r, err));
  EXPECT_NE(err.find("division by zero"), std::string::npos);
  // && short-circuits: the right side (a division by zero) is not evaluated.
  e = bin("&&", bin("<", ilit(1), ilit(0)),
          bin("==", bin("/", ilit(1), ilit(0)), ilit(0)));
  ASSERT_TRUE(evaluateExpr(*e, env, r, err)) << err;
  EXPECT_EQ(r.i, 0);
  // Out-of-range tensor reads are errors.
  std::vector<std::pair<std::string, HostArray>> tensors;
  tensors.emplace_back("t", arr({1, 2}, {5, 6}));
  env.tensors = &tensors;
  env.k = 2;
  e = index(0, ExprType::Int, ilit(0), var(ExprVar::K));
  EXPECT_FALSE(evaluateExpr(*e, env, r, err));
  EXPECT_NE(err.find("out of range"), std::string::npos);
  env.k = 1;
  EXPECT_EQ(evalInt(index(0, ExprType::Int, ilit(0), var(ExprVar::K))), 6);
  // Calls.
  auto call = node(ExprKind::Call, ExprType::Int);
  call->op = "select";
  call->operands.push_back(bin("<", ilit(1), ilit(2)));
  call->operands.push_back(ilit(10));
  call->operands.push_back(bin("/", ilit(1), ilit(0))); // not evaluated
  EXPECT_EQ(evalInt(std::move(call)), 10);
  call = node(ExprKind::Call, ExprType::Int);
  call->op = "min";
  call->operands.push_back(ilit(-3));
  call->operands.push_back(ilit(2));
  EXPECT_EQ(evalInt(std::move(call)), -3);
  call = node(ExprKind::Call, ExprType::Int);
  call->op = "abs";
  call->operands.push_back(ilit(-3));
  EXPECT_EQ(evalInt(std::move(call)), 3);
  call = node(ExprKind::Call, ExprType::Float);
  call->op = "tanh";
  call->operands.push_back(flit(0.5));
  ASSERT_TRUE(evaluateExpr(*call, env, r, err));
  EXPECT_EQ(r.f, std::tanh(0.5));
  // Promotion.
  auto p = node(ExprKind::IntToFloat, ExprType::Float);
  p->operands.push_back(ilit(3));
  ASSERT_TRUE(evaluateExpr(*p, env, r, err));
  EXPECT_EQ(r.type, ExprType::Float);
  EXPECT_EQ(r.f, 3.0);
  // Sq, Sk.
  env.Sq = 5;
  env.Sk = 9;
  EXPECT_EQ(evalInt(bin("-", var(ExprVar::Sk), var(ExprVar::Sq))), 4);
}

TEST(Reference, RejectsInconsistentInputs) {
  Spec spec = attentionSpec();
  ExecInputs in = inputs(arr({1, 3, 1, 1}, {1, 2, 3}), arr({1, 2, 1, 1}, {1, 2}),
                         arr({1, 2, 1, 1}, {1, 2}));
  ExecOutputs out;
  std::string err;
  EXPECT_FALSE(runReference(spec, in, out, err));
  EXPECT_NE(err.find("multiple"), std::string::npos) << err;

  in = inputs(arr({1, 1, 1, 2}, {1, 2}), arr({1, 1, 1, 2}, {1, 2}),
              arr({1, 1, 1, 1}, {1}));
  in.k.data.pop_back();
  EXPECT_FALSE(runReference(spec, in, out, err));
  EXPECT_NE(err.find("k:"), std::string::npos) << err;

  in = inputs(arr({1, 1, 1, 2}, {1, 2}), arr({1, 1, 1, 2}, {1, 2}),
              arr({1, 1, 1, 1}, {1}));
  spec.headDim = 4; // static size disagrees
  EXPECT_FALSE(runReference(spec, in, out, err));
  EXPECT_NE(err.find("Dqk"), std::string::npos) << err;

  spec.headDim = 2;
  spec.documents = true; // ids missing
  EXPECT_FALSE(runReference(spec, in, out, err));
  EXPECT_NE(err.find("doc_ids"), std::string::npos) << err;
}

//===----------------------------------------------------------------------===//
// Linear attention
//===----------------------------------------------------------------------===//

static Spec linearSpec(VariantKind kind = VariantKind::LinearAttention) {
  Spec s;
  s.kind = kind;
  return s;
}

TEST(Reference, LinearTwoStepsByHand) {
  Spec spec = linearSpec();
  spec.scale = 0.5;
  // D = Dv = 1: S_1 = k1 v1 = 2*3 = 6, o_1 = 0.5 * q1 * 6 = 0.5 * 1 * 6 = 3;
  // S_2 = 6 + k2 v2 = 6 + (-1)(5) = 1, o_2 = 0.5 * 4 * 1 = 2.
  ExecInputs in = inputs(arr({1, 1, 2, 1}, {1, 4}), arr({1, 1, 2, 1}, {2, -1}),
                         arr({1, 1, 2, 1}, {3, 5}));
  ExecOutputs out = run(spec, in);
  EXPECT_EQ(out.out.data, (std::vector<double>{3, 2}));
  EXPECT_FALSE(out.lse);
  EXPECT_FALSE(out.finalState);
}

TEST(Reference, LinearMatrixStateDvNotDqk) {
  Spec spec = linearSpec();
  spec.scale = 1.0;
  spec.finalState = true;
  spec.initialState = true;
  // D = 2, Dv = 1, S_0 = [1; 2]. t=0: k = (1, 0), v = 3: S = [4; 2];
  // q = (1, 1): o = 6. t=1: k = (0, 1), v = -1: S = [4; 1]; q = (2, 0): o = 8.
  ExecInputs in = inputs(arr({1, 1, 2, 2}, {1, 1, 2, 0}),
                         arr({1, 1, 2, 2}, {1, 0, 0, 1}),
                         arr({1, 1, 2, 1}, {3, -1}));
  in.initialState = arr({1, 1, 2, 1}, {1, 2});
  ExecOutputs out = run(spec, in);
  EXPECT_EQ(out.out.data, (std::vector<double>{6, 8}));
  ASSERT_TRUE(out.finalState);
  EXPECT_EQ(out.finalState->shape, (std::vector<int64_t>{1, 1, 2, 1}));
  EXPECT_EQ(out.finalState->data, (std::vector<double>{4, 1}));
}

TEST(Reference, LinearNormalizedAndZeroDenominator) {
  Spec spec = linearSpec();
  spec.normalize = true;
  spec.featureMap = FeatureMapKind::Relu;
  // relu: phi(k) = (2, 0), phi(q_0) = (0, 1): den = 0 -> o_0 = 0.
  // t=1: phi(k_1) = (1, 1), z = (3, 1), S = [2*3 + 1*5; 0 + 1*5] = [11; 5];
  // phi(q_1) = (1, 2): o_1 = (11 + 10) / (3 + 2) = 4.2.
  ExecInputs in = inputs(arr({1, 1, 2, 2}, {-1, 1, 1, 2}),
                         arr({1, 1, 2, 2}, {2, -3, 1, 1}),
                         arr({1, 1, 2, 1}, {3, 5}));
  ExecOutputs out = run(spec, in);
  EXPECT_EQ(out.out.data[0], 0.0);
  EXPECT_NEAR(out.out.data[1], 4.2, 1e-15);

  // normalize with a state is rejected.
  spec.finalState = true;
  std::string err;
  EXPECT_FALSE(runReference(spec, in, out, err));
}

TEST(Reference, LinearEluPlusOne) {
  Spec spec = linearSpec();
  spec.featureMap = FeatureMapKind::EluPlusOne;
  spec.scale = 1.0;
  // phi(x) = x + 1 for x > 0, exp(x) otherwise. One step:
  // o = phi(q) phi(k) v = (0.5 + 1) * exp(-1) * 2.
  ExecInputs in = inputs(arr({1, 1, 1, 1}, {0.5}), arr({1, 1, 1, 1}, {-1}),
                         arr({1, 1, 1, 1}, {2}));
  ExecOutputs out = run(spec, in);
  EXPECT_DOUBLE_EQ(out.out.data[0], 1.5 * std::exp(-1.0) * 2);
}

TEST(Reference, GatedScalarDecayByHand) {
  Spec spec = linearSpec(VariantKind::GatedLinearAttention);
  spec.gate = GateKindSpec::Scalar;
  spec.scale = 1.0;
  spec.initialState = true;
  spec.finalState = true;
  // S_0 = 8. t=0: g = ln 0.5: S = 4 + 1*1 = 5, o = 2 * 5 = 10.
  // t=1: g = ln 0.25: S = 1.25 + 2*3 = 7.25, o = 1 * 7.25.
  ExecInputs in = inputs(arr({1, 1, 2, 1}, {2, 1}), arr({1, 1, 2, 1}, {1, 2}),
                         arr({1, 1, 2, 1}, {1, 3}));
  in.gates = arr({1, 1, 2}, {std::log(0.5), std::log(0.25)});
  in.initialState = arr({1, 1, 1, 1}, {8});
  ExecOutputs out = run(spec, in);
  EXPECT_NEAR(out.out.data[0], 10, 1e-14);
  EXPECT_NEAR(out.out.data[1], 7.25, 1e-14);
  EXPECT_NEAR(out.finalState->data[0], 7.25, 1e-14);
}

TEST(Reference, GatedVectorAndHeadConstant) {
  Spec spec = linearSpec(VariantKind::GatedLinearAttention);
  spec.gate = GateKindSpec::Vector;
  spec.scale = 1.0;
  spec.finalState = true;
  // D = 2, Dv = 1. t=0: S = k0 v0 = (1, 1)*2 = [2; 2]; q0 = (1, 0): o = 2.
  // t=1: decay (0.5, 0.1): S = [1; 0.2] + (0, 1)*1 = [1; 1.2]; q1 = (1, 1):
  // o = 2.2.
  ExecInputs in = inputs(arr({1, 1, 2, 2}, {1, 0, 1, 1}),
                         arr({1, 1, 2, 2}, {1, 1, 0, 1}),
                         arr({1, 1, 2, 1}, {2, 1}));
  in.gates = arr({1, 1, 2, 2}, {0, 0, std::log(0.5), std::log(0.1)});
  ExecOutputs out = run(spec, in);
  EXPECT_NEAR(out.out.data[0], 2, 1e-15);
  EXPECT_NEAR(out.out.data[1], 2.2, 1e-15);
  EXPECT_NEAR(out.finalState->data[0], 1, 1e-15);
  EXPECT_NEAR(out.finalState->data[1], 1.2, 1e-15);

  // Head-constant: H = 2 with decays 0.5 and 1 (g = 0).
  spec.gate = GateKindSpec::HeadConstant;
  spec.finalState = false;
  in = inputs(arr({1, 2, 2, 1}, {1, 1, 1, 1}), arr({1, 2, 2, 1}, {1, 1, 1, 1}),
              arr({1, 2, 2, 1}, {4, 2, 4, 2}));
  in.gates = arr({2}, {std::log(0.5), 0});
  out = run(spec, in);
  // head 0: o = 4, 0.5*4 + 2 = 4; head 1: o = 4, 6.
  EXPECT_NEAR(out.out.data[0], 4, 1e-15);
  EXPECT_NEAR(out.out.data[1], 4, 1e-15);
  EXPECT_NEAR(out.out.data[2], 4, 1e-15);
  EXPECT_NEAR(out.out.data[3], 6, 1e-15);
  // Default scale is 1/sqrt(Dqk) = 1 here; check with Dqk = 4 elsewhere.
}

TEST(Reference, LinearDefaultScale) {
  Spec spec = linearSpec();
  // D = 4, one step: o = (q . k) v / sqrt(4) = (1+1+1+1) * 3 / 2 = 6.
  ExecInputs in = inputs(arr({1, 1, 1, 4}, {1, 1, 1, 1}),
                         arr({1, 1, 1, 4}, {1, 1, 1, 1}),
                         arr({1, 1, 1, 1}, {3}));
  ExecOutputs out = run(spec, in);
  EXPECT_DOUBLE_EQ(out.out.data[0], 6);
}
