//===- SpecTest.cpp - the JSON spec parser --------------------------------===//

#include "attn/Spec/Spec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

using namespace attn;

namespace {

std::string attention(const std::string &extra = "",
                      const std::string &shape = R"({"head_dim":64})") {
  return R"({"name":"t","kind":"attention","dtype":"f16","shape":)" + shape +
         (extra.empty() ? "" : "," + extra) + "}";
}
std::string linear(const std::string &extra = "",
                   const std::string &shape = R"({"head_dim":64})") {
  return R"({"name":"t","kind":"linear_attention","dtype":"f16","shape":)" +
         shape + (extra.empty() ? "" : "," + extra) + "}";
}
std::string gated(const std::string &extra = "",
                  const std::string &shape = R"({"head_dim":64})") {
  return R"({"name":"t","kind":"gated_linear_attention","dtype":"f16","gate":"scalar","shape":)" +
         shape + (extra.empty() ? "" : "," + extra) + "}";
}

/// The error of parsing `text`, or "ok". A failed parse must leave the spec
/// untouched.
std::string errorOf(const std::string &text) {
  Spec spec;
  spec.name = "sentinel";
  std::string error = "stale";
  bool ok = parseSpec(text, spec, error);
  if (ok) {
    EXPECT_EQ(error, "");
    return "ok";
  }
  EXPECT_EQ(spec.name, "sentinel") << text;
  EXPECT_NE(error, "");
  return error;
}

std::string readFile(const std::filesystem::path &p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::map<std::string, std::string> exampleTexts() {
  std::map<std::string, std::string> out;
  for (const auto &entry :
       std::filesystem::directory_iterator(ATTN_EXAMPLES_DIR))
    if (entry.path().extension() == ".json")
      out[entry.path().stem().string()] = readFile(entry.path());
  return out;
}

struct ParsedSpec {
  Spec spec;
  std::string error;
  bool ok = false;
};
ParsedSpec parse(const std::string &text) {
  ParsedSpec p;
  p.ok = parseSpec(text, p.spec, p.error);
  return p;
}

} // namespace

//===----------------------------------------------------------------------===//
// The examples
//===----------------------------------------------------------------------===//

TEST(SpecExamples, EveryExampleParses) {
  auto texts = exampleTexts();
  std::vector<std::string> names;
  for (const auto &[name, text] : texts) {
    names.push_back(name);
    Spec spec;
    std::string error;
    EXPECT_TRUE(parseSpecFile(
        std::string(ATTN_EXAMPLES_DIR) + "/" + name + ".json", spec, error))
        << error;
    EXPECT_EQ(spec.name, name) << "the function name should match the file";
    EXPECT_EQ(spec.batch, kDynamic) << name;
    EXPECT_EQ(spec.seqQ, kDynamic) << name;
    EXPECT_EQ(spec.seqK, kDynamic) << name;
    EXPECT_FALSE(spec.canonicalJson.empty());
  }
  std::vector<std::string> expected = {
      "alibi",  "block_sparse", "bshd",         "causal",       "custom",
      "dense",  "document",     "gated_scalar", "gated_vector", "gqa",
      "linear", "softcap",      "window"};
  EXPECT_EQ(names, expected);
}

TEST(SpecExamples, Fields) {
  auto texts = exampleTexts();
  auto get = [&](const std::string &name) {
    ParsedSpec p = parse(texts[name]);
    EXPECT_TRUE(p.ok) << name << ": " << p.error;
    return p;
  };
  {
    ParsedSpec p = get("dense");
    const Spec &s = p.spec;
    EXPECT_EQ(s.kind, VariantKind::Attention);
    EXPECT_EQ(s.dtype, ElementType::BF16);
    EXPECT_EQ(s.layout, Layout::BHSD);
    EXPECT_EQ(s.headsQ, 16);
    EXPECT_EQ(s.headsKV, 16);
    EXPECT_EQ(s.headDim, 128);
    EXPECT_EQ(s.headDimV, 128);
    EXPECT_TRUE(s.returnLse);
    EXPECT_FALSE(s.causal);
    EXPECT_FALSE(s.scale.has_value());
    EXPECT_DOUBLE_EQ(s.effectiveScale(), 1.0 / std::sqrt(128.0));
  }
  {
    ParsedSpec p = get("causal");
    EXPECT_TRUE(p.spec.causal);
    EXPECT_FALSE(p.spec.returnLse);
  }
  {
    ParsedSpec p = get("window");
    EXPECT_TRUE(p.spec.causal);
    ASSERT_TRUE(p.spec.window.has_value());
    EXPECT_EQ(*p.spec.window, std::make_pair(int64_t(1023), int64_t(0)));
  }
  {
    ParsedSpec p = get("block_sparse");
    ASSERT_TRUE(p.spec.blockSparse.has_value());
    EXPECT_EQ(*p.spec.blockSparse, std::make_pair(int64_t(128), int64_t(128)));
  }
  EXPECT_EQ(get("alibi").spec.alibi, AlibiShape::PerHead);
  {
    ParsedSpec p = get("softcap");
    ASSERT_TRUE(p.spec.softcap.has_value());
    EXPECT_EQ(*p.spec.softcap, 50.0);
  }
  {
    ParsedSpec p = get("document");
    EXPECT_TRUE(p.spec.documents);
    EXPECT_TRUE(p.spec.causal);
  }
  {
    ParsedSpec p = get("gqa");
    EXPECT_EQ(p.spec.headsQ, 32);
    EXPECT_EQ(p.spec.headsKV, 8);
    EXPECT_TRUE(p.spec.causal);
  }
  {
    ParsedSpec p = get("bshd");
    EXPECT_EQ(p.spec.layout, Layout::BSHD);
    EXPECT_EQ(p.spec.dtype, ElementType::F16);
    EXPECT_TRUE(p.spec.causal);
  }
  {
    ParsedSpec p = get("custom");
    const Spec &s = p.spec;
    ASSERT_EQ(s.tensors.size(), 1u);
    EXPECT_EQ(s.tensors[0].name, "bias");
    EXPECT_EQ(s.tensors[0].elementType, TensorElementType::F32);
    EXPECT_EQ(s.tensors[0].shape, (std::vector<int64_t>{16, kDynamic}));
    EXPECT_EQ(s.maskText, "k <= q + Sk - Sq && q - k < 256");
    EXPECT_EQ(s.scoreText, "score + bias[h, k]");
    ASSERT_TRUE(s.maskExpr);
    ASSERT_TRUE(s.scoreExpr);
    EXPECT_EQ(exprToString(*s.maskExpr),
              "((k <= ((q + Sk) - Sq)) && ((q - k) < 256))");
    EXPECT_EQ(exprToString(*s.scoreExpr), "(score + bias[h, k])");
    EXPECT_EQ(s.maskExpr->type, ExprType::Bool);
    EXPECT_EQ(s.scoreExpr->type, ExprType::Float);
  }
  {
    ParsedSpec p = get("linear");
    const Spec &s = p.spec;
    EXPECT_EQ(s.kind, VariantKind::LinearAttention);
    EXPECT_EQ(s.featureMap, FeatureMapKind::EluPlusOne);
    EXPECT_TRUE(s.normalize);
    EXPECT_EQ(s.headsQ, 16);
    EXPECT_EQ(s.headsKV, 16);
    EXPECT_EQ(s.headDim, 64);
    EXPECT_EQ(s.headDimV, 64);
    EXPECT_FALSE(s.initialState);
    EXPECT_FALSE(s.finalState);
  }
  {
    ParsedSpec p = get("gated_scalar");
    EXPECT_EQ(p.spec.kind, VariantKind::GatedLinearAttention);
    EXPECT_EQ(p.spec.gate, GateKindSpec::Scalar);
    EXPECT_TRUE(p.spec.initialState);
    EXPECT_TRUE(p.spec.finalState);
    EXPECT_EQ(p.spec.headDim, 128);
  }
  {
    ParsedSpec p = get("gated_vector");
    EXPECT_EQ(p.spec.gate, GateKindSpec::Vector);
    EXPECT_FALSE(p.spec.initialState);
    EXPECT_TRUE(p.spec.finalState);
  }
}

//===----------------------------------------------------------------------===//
// Accepted specs: defaults and stored values
//===----------------------------------------------------------------------===//

TEST(SpecParse, MinimalAttentionDefaults) {
  ParsedSpec p = parse(attention());
  ASSERT_TRUE(p.ok) << p.error;
  const Spec &s = p.spec;
  EXPECT_EQ(s.name, "t");
  EXPECT_EQ(s.dtype, ElementType::F16);
  EXPECT_EQ(s.layout, Layout::BHSD);
  EXPECT_EQ(s.batch, kDynamic);
  EXPECT_EQ(s.headsQ, kDynamic);
  EXPECT_EQ(s.headsKV, kDynamic);
  EXPECT_EQ(s.seqQ, kDynamic);
  EXPECT_EQ(s.seqK, kDynamic);
  EXPECT_EQ(s.headDim, 64);
  EXPECT_EQ(s.headDimV, 64);
  EXPECT_FALSE(s.causal || s.documents || s.returnLse);
  EXPECT_FALSE(s.window || s.blockSparse || s.softcap || s.scale);
  EXPECT_EQ(s.alibi, AlibiShape::None);
  EXPECT_TRUE(s.tensors.empty());
  EXPECT_FALSE(s.maskExpr || s.scoreExpr);
  EXPECT_TRUE(s.options.is_object());
  EXPECT_TRUE(s.options.empty());
  EXPECT_DOUBLE_EQ(s.effectiveScale(), 0.125);
}

TEST(SpecParse, CanonicalJsonKeepsOrderAndDropsWhitespace) {
  ParsedSpec p = parse(
      " {\n \"name\" : \"t\", \"kind\":\"attention\",\n\t\"dtype\": \"f16\", "
      "\"shape\": {\"head_dim\": 64, \"batch\": null}, \"scale\": 0.5}\n");
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(
      p.spec.canonicalJson,
      R"({"name":"t","kind":"attention","dtype":"f16","shape":{"head_dim":64,"batch":null},"scale":0.5})");
  EXPECT_EQ(*p.spec.scale, 0.5);
  EXPECT_EQ(p.spec.effectiveScale(), 0.5);
}

TEST(SpecParse, StaticShapesAndOptions) {
  ParsedSpec p = parse(attention(
      R"("layout":"bshd","options":{"block_q":64,"block_k":32},"outputs":{"lse":false})",
      R"({"batch":2,"heads_q":8,"heads_kv":2,"seq_q":100,"seq_k":300,"head_dim":64,"head_dim_v":32})"));
  ASSERT_TRUE(p.ok) << p.error;
  const Spec &s = p.spec;
  EXPECT_EQ(s.batch, 2);
  EXPECT_EQ(s.headsQ, 8);
  EXPECT_EQ(s.headsKV, 2);
  EXPECT_EQ(s.seqQ, 100);
  EXPECT_EQ(s.seqK, 300);
  EXPECT_EQ(s.headDimV, 32);
  EXPECT_EQ(s.layout, Layout::BSHD);
  EXPECT_EQ(s.options.dump(), R"({"block_q":64,"block_k":32})");
  EXPECT_FALSE(s.returnLse);
}

TEST(SpecParse, LinearShapesAndChunk) {
  ParsedSpec p =
      parse(linear(R"("options":{"chunk":64},"feature_map":"relu")",
                   R"({"batch":1,"heads":4,"seq":1000,"head_dim":32})"));
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.spec.headsQ, 4);
  EXPECT_EQ(p.spec.headsKV, 4);
  EXPECT_EQ(p.spec.seqQ, 1000);
  EXPECT_EQ(p.spec.seqK, 1000);
  EXPECT_EQ(p.spec.featureMap, FeatureMapKind::Relu);
  EXPECT_EQ(p.spec.options.dump(), R"({"chunk":64})");
  ParsedSpec g = parse(gated(R"("options":{"chunk":16})"));
  ASSERT_TRUE(g.ok) << g.error;
  ParsedSpec i = parse(linear());
  ASSERT_TRUE(i.ok) << i.error;
  EXPECT_EQ(i.spec.featureMap, FeatureMapKind::Identity);
  EXPECT_FALSE(i.spec.normalize);
}

TEST(SpecParse, AlibiForms) {
  EXPECT_EQ(parse(attention(R"("score":{"alibi":false})")).spec.alibi,
            AlibiShape::None);
  EXPECT_EQ(parse(attention(R"("score":{"alibi":true})")).spec.alibi,
            AlibiShape::PerHead);
  EXPECT_EQ(parse(attention(R"("score":{"alibi":"per_head"})")).spec.alibi,
            AlibiShape::PerHead);
  EXPECT_EQ(
      parse(attention(R"("score":{"alibi":"per_batch_head"})")).spec.alibi,
      AlibiShape::PerBatchHead);
}

TEST(SpecParse, GateKinds) {
  ParsedSpec p = parse(
      R"({"name":"g","kind":"gated_linear_attention","dtype":"f32","gate":"head_constant","shape":{"head_dim":8}})");
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.spec.gate, GateKindSpec::HeadConstant);
  EXPECT_EQ(p.spec.dtype, ElementType::F32);
}

TEST(SpecParse, ScoreIntResultIsPromoted) {
  ParsedSpec p = parse(attention(R"("score":{"custom":"q - k"})"));
  ASSERT_TRUE(p.ok) << p.error;
  ASSERT_TRUE(p.spec.scoreExpr);
  EXPECT_EQ(p.spec.scoreExpr->kind, ExprKind::IntToFloat);
}

TEST(SpecParse, TensorsKeepDeclarationOrder) {
  ParsedSpec p = parse(attention(
      R"("tensors":{"zeta":{"dtype":"i32","shape":[null]},"alpha":{"dtype":"f32","shape":[4,null,2]}},)"
      R"("mask":{"custom":"zeta[q] == zeta[k]"},"score":{"custom":"score * alpha[h, q, 1]"})"));
  ASSERT_TRUE(p.ok) << p.error;
  ASSERT_EQ(p.spec.tensors.size(), 2u);
  EXPECT_EQ(p.spec.tensors[0].name, "zeta");
  EXPECT_EQ(p.spec.tensors[0].elementType, TensorElementType::I32);
  EXPECT_EQ(p.spec.tensors[0].shape, (std::vector<int64_t>{kDynamic}));
  EXPECT_EQ(p.spec.tensors[1].name, "alpha");
  EXPECT_EQ(p.spec.tensors[1].shape, (std::vector<int64_t>{4, kDynamic, 2}));
  EXPECT_EQ(p.spec.maskExpr->operands[0]->tensorIndex, 0);
}

TEST(SpecParse, NormalizeWithoutStateIsFine) {
  EXPECT_EQ(errorOf(linear(
                R"("normalize":true,"state":{"initial":false,"final":false})")),
            "ok");
  EXPECT_EQ(errorOf(linear(
                R"("normalize":false,"state":{"initial":true,"final":true})")),
            "ok");
}

TEST(SpecParse, DynamicHeadsSkipTheMultipleCheck) {
  EXPECT_EQ(
      errorOf(attention("", R"({"heads_q":null,"heads_kv":4,"head_dim":64})")),
      "ok");
  EXPECT_EQ(errorOf(attention("", R"({"heads_q":6,"head_dim":64})")), "ok");
}

TEST(SpecParse, Names) {
  EXPECT_STREQ(variantKindName(VariantKind::Attention), "attention");
  EXPECT_STREQ(variantKindName(VariantKind::LinearAttention),
               "linear_attention");
  EXPECT_STREQ(variantKindName(VariantKind::GatedLinearAttention),
               "gated_linear_attention");
  EXPECT_STREQ(elementTypeName(ElementType::F16), "f16");
  EXPECT_STREQ(elementTypeName(ElementType::BF16), "bf16");
  EXPECT_STREQ(elementTypeName(ElementType::F32), "f32");
  EXPECT_STREQ(layoutName(Layout::BHSD), "bhsd");
  EXPECT_STREQ(layoutName(Layout::BSHD), "bshd");
  EXPECT_STREQ(featureMapName(FeatureMapKind::Identity), "identity");
  EXPECT_STREQ(featureMapName(FeatureMapKind::EluPlusOne), "elu_plus_one");
  EXPECT_STREQ(featureMapName(FeatureMapKind::Relu), "relu");
  EXPECT_STREQ(gateKindName(GateKindSpec::Scalar), "scalar");
  EXPECT_STREQ(gateKindName(GateKindSpec::Vector), "vector");
  EXPECT_STREQ(gateKindName(GateKindSpec::HeadConstant), "head_constant");
}

//===----------------------------------------------------------------------===//
// Errors: invalid JSON
//===----------------------------------------------------------------------===//

TEST(SpecErrors, InvalidJson) {
  EXPECT_EQ(errorOf(""),
            "line 1, column 1: empty input; expected a JSON object");
  EXPECT_EQ(errorOf("  \n "),
            "line 2, column 2: empty input; expected a JSON object");
  EXPECT_EQ(
      errorOf(R"({"name": "t",)"),
      "line 1, column 14: unexpected end of input; expected string literal");
  EXPECT_EQ(errorOf(R"({"name": x})"), "line 1, column 10: invalid literal");
  EXPECT_EQ(errorOf("{\n  \"name\": \"t\",\n  \"kind\": attention\n}"),
            "line 3, column 11: invalid literal");
  EXPECT_EQ(errorOf(R"({"name":"t",})"),
            "line 1, column 13: unexpected '}'; expected string literal");
  EXPECT_EQ(errorOf(R"({"name":"t"} x)"),
            "line 1, column 14: invalid literal; expected end of input");
  EXPECT_EQ(errorOf(R"({"name":"t"} {})"),
            "line 1, column 14: unexpected '{'; expected end of input");
  EXPECT_EQ(errorOf(R"({"a":1e400})"),
            "line 1, column 10: number overflow parsing '1e400'");
  EXPECT_EQ(errorOf("{\"name\":\"\xFF\"}"),
            "line 1, column 10: invalid string: ill-formed UTF-8 byte");
  EXPECT_EQ(errorOf(std::string("{\"a\":\0}", 7)),
            "line 1, column 6: unexpected NUL byte");
  EXPECT_EQ(errorOf(attention() + std::string("\0junk", 5)),
            "line 1, column 70: unexpected NUL byte");
  EXPECT_EQ(errorOf(std::string("{\"a\" 1 \0", 9)),
            "line 1, column 6: unexpected number literal; expected ':'");
  EXPECT_EQ(
      errorOf("{\"a\":\"x\ny\"}"),
      "line 1, column 8: invalid string: control character U+000A (LF) must be "
      "escaped to \\u000A or \\n");
  EXPECT_EQ(errorOf("// comment\n{}"), "line 1, column 1: invalid literal");
}

TEST(SpecErrors, DuplicateKeys) {
  EXPECT_EQ(errorOf(R"({"name":"a","name":"b"})"), R"(duplicate key "name")");
  EXPECT_EQ(errorOf(attention("", R"({"head_dim":64,"head_dim":32})")),
            R"(shape: duplicate key "head_dim")");
  EXPECT_EQ(
      errorOf(attention(R"("tensors":{"bias":{"dtype":"f32","dtype":"i32"}})")),
      R"(tensors.bias: duplicate key "dtype")");
  EXPECT_EQ(errorOf(R"({"x":[1,{"a":1}, {"b":2,"b":3}]})"),
            R"(x[2]: duplicate key "b")");
}

TEST(SpecErrors, NestingIsBounded) {
  EXPECT_EQ(errorOf("{\"a\":" + std::string(100, '[')),
            "line 1, column 69: nesting deeper than 64 levels");
  std::string deep(2000000, '[');
  EXPECT_EQ(errorOf(deep), "line 1, column 65: nesting deeper than 64 levels");
  std::string deepObjects;
  for (int i = 0; i < 100000; ++i)
    deepObjects += "{\"[\":";
  EXPECT_EQ(errorOf(deepObjects),
            "line 1, column 321: nesting deeper than 64 levels");
}

//===----------------------------------------------------------------------===//
// Errors: structure and types
//===----------------------------------------------------------------------===//

TEST(SpecErrors, TopLevel) {
  EXPECT_EQ(errorOf("[1,2]"),
            "expected a JSON object at the top level, got [1,2]");
  EXPECT_EQ(errorOf("3"), "expected a JSON object at the top level, got 3");
  EXPECT_EQ(errorOf("{}"), R"(missing required key "kind")");
  EXPECT_EQ(errorOf(R"({"kind":"attention"})"),
            R"(missing required key "name")");
  EXPECT_EQ(errorOf(R"({"kind":"attention","name":"t"})"),
            R"(missing required key "dtype")");
  EXPECT_EQ(errorOf(R"({"kind":"attention","name":"t","dtype":"f32"})"),
            R"(missing required key "shape")");
  EXPECT_EQ(
      errorOf(R"({"kind":"attention","name":"t","dtype":"f32","shape":{}})"),
      R"(shape: missing required key "head_dim")");
  EXPECT_EQ(
      errorOf(
          R"({"name":"t","kind":"gated_linear_attention","dtype":"f16","shape":{"head_dim":64}})"),
      R"(missing required key "gate")");
}

TEST(SpecErrors, WrongTypesAndValues) {
  EXPECT_EQ(errorOf(R"({"name":3,"kind":"attention"})"),
            "name: expected a string, got 3");
  EXPECT_EQ(
      errorOf(R"({"name":"1x","kind":"attention"})"),
      R"(name: expected an identifier ([A-Za-z_][A-Za-z0-9_]*), got "1x")");
  EXPECT_EQ(
      errorOf(R"({"name":"my-kernel","kind":"attention"})"),
      R"(name: expected an identifier ([A-Za-z_][A-Za-z0-9_]*), got "my-kernel")");
  EXPECT_EQ(errorOf(R"({"name":"","kind":"attention"})"),
            R"(name: expected an identifier ([A-Za-z_][A-Za-z0-9_]*), got "")");
  EXPECT_EQ(
      errorOf(R"({"kind":"softmax"})"),
      R"(kind: expected one of "attention", "linear_attention", "gated_linear_attention", got "softmax")");
  EXPECT_EQ(
      errorOf(R"({"kind":null})"),
      R"(kind: expected one of "attention", "linear_attention", "gated_linear_attention", got null)");
  EXPECT_EQ(errorOf(R"({"name":"t","kind":"attention","dtype":"fp16"})"),
            R"(dtype: expected one of "f16", "bf16", "f32", got "fp16")");
  EXPECT_EQ(errorOf(attention(R"("layout":"sbhd")")),
            R"(layout: expected one of "bhsd", "bshd", got "sbhd")");
  EXPECT_EQ(errorOf(attention(R"("scale":-1)")),
            "scale: expected a positive finite number, got -1");
  EXPECT_EQ(errorOf(attention(R"("scale":0)")),
            "scale: expected a positive finite number, got 0");
  EXPECT_EQ(errorOf(attention(R"("scale":"x")")),
            R"(scale: expected a positive finite number, got "x")");
  EXPECT_EQ(
      errorOf(attention(R"("scale":1e300)")),
      "scale: expected a positive number within the f32 range, got 1e+300");
  EXPECT_EQ(errorOf(attention("", "[64]")),
            "shape: expected an object, got [64]");
  EXPECT_EQ(errorOf(attention("", R"([1,[2,{"a":null}]])")),
            R"(shape: expected an object, got [1,[2,{"a":null}]])");
}

TEST(SpecErrors, Sizes) {
  EXPECT_EQ(errorOf(attention("", R"({"head_dim":0})")),
            "shape.head_dim: expected a positive integer, got 0");
  EXPECT_EQ(errorOf(attention("", R"({"head_dim":null})")),
            "shape.head_dim: expected a positive integer, got null");
  EXPECT_EQ(errorOf(attention("", R"({"head_dim":64.0})")),
            "shape.head_dim: expected a positive integer, got 64.0");
  EXPECT_EQ(errorOf(attention("", R"({"head_dim":64,"head_dim_v":-2})")),
            "shape.head_dim_v: expected a positive integer, got -2");
  EXPECT_EQ(
      errorOf(attention("", R"({"head_dim":3000000000})")),
      "shape.head_dim: 3000000000 is too large (the limit is 2147483647)");
  EXPECT_EQ(errorOf(attention("", R"({"head_dim":18446744073709551615})")),
            "shape.head_dim: 18446744073709551615 is too large (the limit is "
            "2147483647)");
  EXPECT_EQ(errorOf(attention("", R"({"batch":0,"head_dim":64})")),
            "shape.batch: expected a positive integer or null, got 0");
  EXPECT_EQ(errorOf(attention("", R"({"seq_k":-5,"head_dim":64})")),
            "shape.seq_k: expected a positive integer or null, got -5");
  EXPECT_EQ(errorOf(attention("", R"({"seq_q":"long","head_dim":64})")),
            R"(shape.seq_q: expected a positive integer or null, got "long")");
  EXPECT_EQ(errorOf(linear("", R"({"heads":true,"head_dim":64})")),
            "shape.heads: expected a positive integer or null, got true");
  EXPECT_EQ(errorOf(attention(R"("mask":{"window":{"left":"x","right":0}})")),
            R"(mask.window.left: expected a non-negative integer, got "x")");
  EXPECT_EQ(errorOf(attention(R"("mask":{"window":{"left":-1,"right":0}})")),
            "mask.window.left: expected a non-negative integer, got -1");
  EXPECT_EQ(errorOf(attention(R"("mask":{"window":{"left":0,"right":1.5}})")),
            "mask.window.right: expected a non-negative integer, got 1.5");
  EXPECT_EQ(errorOf(attention(
                R"("mask":{"block_sparse":{"block_q":0,"block_k":64}})")),
            "mask.block_sparse.block_q: expected a positive integer, got 0");
  EXPECT_EQ(errorOf(attention(R"("options":{"block_q":64,"block_k":0})")),
            "options.block_k: expected a positive integer, got 0");
  EXPECT_EQ(errorOf(linear(R"("options":{"chunk":-1})")),
            "options.chunk: expected a positive integer, got -1");
}

TEST(SpecErrors, NestedTypes) {
  EXPECT_EQ(errorOf(attention(R"("mask":true)")),
            "mask: expected an object, got true");
  EXPECT_EQ(errorOf(attention(R"("mask":{"causal":"yes"})")),
            R"(mask.causal: expected true or false, got "yes")");
  EXPECT_EQ(errorOf(attention(R"("mask":{"documents":1})")),
            "mask.documents: expected true or false, got 1");
  EXPECT_EQ(errorOf(attention(R"("mask":{"window":[1023,0]})")),
            "mask.window: expected an object, got [1023,0]");
  EXPECT_EQ(errorOf(attention(R"("mask":{"custom":3})")),
            "mask.custom: expected a string (an expression), got 3");
  EXPECT_EQ(errorOf(attention(R"("score":{"softcap":-50})")),
            "score.softcap: expected a positive finite number, got -50");
  EXPECT_EQ(
      errorOf(attention(R"("score":{"alibi":3})")),
      R"(score.alibi: expected true, false, "per_head" or "per_batch_head", got 3)");
  EXPECT_EQ(
      errorOf(attention(R"("score":{"alibi":"per_row"})")),
      R"(score.alibi: expected true, false, "per_head" or "per_batch_head", got "per_row")");
  EXPECT_EQ(errorOf(attention(R"("score":{"custom":null})")),
            "score.custom: expected a string (an expression), got null");
  EXPECT_EQ(errorOf(attention(R"("outputs":{"lse":1})")),
            "outputs.lse: expected true or false, got 1");
  EXPECT_EQ(errorOf(attention(R"("outputs":[])")),
            "outputs: expected an object, got []");
  EXPECT_EQ(errorOf(attention(R"("tensors":[])")),
            "tensors: expected an object, got []");
  EXPECT_EQ(errorOf(attention(R"("options":"fast")")),
            R"(options: expected an object, got "fast")");
  EXPECT_EQ(
      errorOf(linear(R"("feature_map":"gelu")")),
      R"(feature_map: expected one of "identity", "elu_plus_one", "relu", got "gelu")");
  EXPECT_EQ(errorOf(linear(R"("normalize":"yes")")),
            R"(normalize: expected true or false, got "yes")");
  EXPECT_EQ(errorOf(linear(R"("state":true)")),
            "state: expected an object, got true");
  EXPECT_EQ(errorOf(linear(R"("state":{"initial":1})")),
            "state.initial: expected true or false, got 1");
  EXPECT_EQ(
      errorOf(
          R"({"name":"t","kind":"gated_linear_attention","dtype":"f16","gate":"matrix","shape":{"head_dim":64}})"),
      R"(gate: expected one of "scalar", "vector", "head_constant", got "matrix")");
}

TEST(SpecErrors, LongValuesAreTruncated) {
  std::string longKind(100, 'a');
  EXPECT_EQ(
      errorOf(R"({"kind":")" + longKind + "\"}"),
      R"(kind: expected one of "attention", "linear_attention", "gated_linear_attention", got ")" +
          std::string(36, 'a') + "...");
  EXPECT_EQ(
      errorOf(attention(
          R"("scale":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20])")),
      "scale: expected a positive finite number, got "
      "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,...");
  // A multi-byte character is never cut in half.
  std::string accents;
  for (int i = 0; i < 30; ++i)
    accents += "\xC3\xA9";
  EXPECT_EQ(
      errorOf(R"({"kind":"x)" + accents + "\"}"),
      R"(kind: expected one of "attention", "linear_attention", "gated_linear_attention", got "x)" +
          accents.substr(0, 34) + "...");
}

TEST(SpecErrors, UnknownKeysAtEveryLevel) {
  EXPECT_EQ(errorOf(attention(R"("colour":1)")),
            "colour: unknown key; expected one of name, kind, dtype, layout, "
            "scale, shape, "
            "mask, score, tensors, outputs, options");
  EXPECT_EQ(errorOf(linear(R"("colour":1)")),
            "colour: unknown key; expected one of name, kind, dtype, layout, "
            "scale, shape, "
            "feature_map, normalize, state, options");
  EXPECT_EQ(errorOf(gated(R"("colour":1)")),
            "colour: unknown key; expected one of name, kind, dtype, layout, "
            "scale, shape, "
            "gate, state, options");
  EXPECT_EQ(errorOf(attention("", R"({"head_dim":64,"depth":3})")),
            "shape.depth: unknown key; expected one of batch, heads_q, "
            "heads_kv, seq_q, "
            "seq_k, head_dim, head_dim_v");
  EXPECT_EQ(
      errorOf(linear("", R"({"head_dim":64,"depth":3})")),
      "shape.depth: unknown key; expected one of batch, heads, seq, head_dim, "
      "head_dim_v");
  EXPECT_EQ(
      errorOf(attention(R"("mask":{"colour":1})")),
      "mask.colour: unknown key; expected one of causal, window, block_sparse, "
      "documents, custom");
  EXPECT_EQ(
      errorOf(attention(R"("mask":{"window":{"left":1,"right":0,"top":2}})")),
      "mask.window.top: unknown key; expected one of left, right");
  EXPECT_EQ(
      errorOf(attention(
          R"("mask":{"block_sparse":{"block_q":1,"block_k":1,"b":2}})")),
      "mask.block_sparse.b: unknown key; expected one of block_q, block_k");
  EXPECT_EQ(errorOf(attention(R"("score":{"bias":1})")),
            "score.bias: unknown key; expected one of softcap, alibi, custom");
  EXPECT_EQ(
      errorOf(attention(
          R"("tensors":{"bias":{"dtype":"f32","shape":[1],"layout":"x"}},"score":{"custom":"bias[0]"})")),
      "tensors.bias.layout: unknown key; expected one of dtype, shape");
  EXPECT_EQ(errorOf(attention(R"("outputs":{"o":true})")),
            "outputs.o: unknown key; expected one of lse");
  EXPECT_EQ(errorOf(linear(R"("state":{"middle":true})")),
            "state.middle: unknown key; expected one of initial, final");
  EXPECT_EQ(errorOf(attention(R"("options":{"warps":4})")),
            "options.warps: unknown key; expected one of block_q, block_k");
  EXPECT_EQ(errorOf(linear(R"("options":{"warps":4})")),
            "options.warps: unknown key; expected one of chunk");
  EXPECT_EQ(
      errorOf(attention(R"("mask":{"a b":1})")),
      R"(mask["a b"]: unknown key; expected one of causal, window, block_sparse, documents, custom)");
  EXPECT_EQ(
      errorOf(attention(R"("mask":{"":1})")),
      R"(mask[""]: unknown key; expected one of causal, window, block_sparse, documents, custom)");
}

TEST(SpecErrors, MissingNestedKeys) {
  EXPECT_EQ(errorOf(attention(R"("mask":{"window":{"left":1}})")),
            R"(mask.window: missing required key "right")");
  EXPECT_EQ(errorOf(attention(R"("mask":{"window":{"right":1}})")),
            R"(mask.window: missing required key "left")");
  EXPECT_EQ(errorOf(attention(R"("mask":{"block_sparse":{"block_q":1}})")),
            R"(mask.block_sparse: missing required key "block_k")");
  EXPECT_EQ(errorOf(attention(R"("tensors":{"bias":{"shape":[1]}})")),
            R"(tensors.bias: missing required key "dtype")");
  EXPECT_EQ(errorOf(attention(R"("tensors":{"bias":{"dtype":"f32"}})")),
            R"(tensors.bias: missing required key "shape")");
}

TEST(SpecErrors, KindForbiddenKeys) {
  EXPECT_EQ(errorOf(linear(R"("mask":{"causal":true})")),
            "mask: not allowed for kind linear_attention");
  EXPECT_EQ(errorOf(gated(R"("score":{})")),
            "score: not allowed for kind gated_linear_attention");
  EXPECT_EQ(errorOf(linear(R"("tensors":{})")),
            "tensors: not allowed for kind linear_attention");
  EXPECT_EQ(errorOf(gated(R"("outputs":{})")),
            "outputs: not allowed for kind gated_linear_attention");
  EXPECT_EQ(errorOf(gated(R"("feature_map":"relu")")),
            "feature_map: not allowed for kind gated_linear_attention");
  EXPECT_EQ(errorOf(gated(R"("normalize":true)")),
            "normalize: not allowed for kind gated_linear_attention");
  EXPECT_EQ(errorOf(linear(R"("gate":"scalar")")),
            "gate: not allowed for kind linear_attention");
  EXPECT_EQ(errorOf(attention(R"("state":{})")),
            "state: not allowed for kind attention");
  EXPECT_EQ(errorOf(attention(R"("feature_map":"relu")")),
            "feature_map: not allowed for kind attention");
  EXPECT_EQ(
      errorOf(attention("", R"({"heads":4,"head_dim":64})")),
      "shape.heads: not allowed for kind attention; use heads_q and heads_kv");
  EXPECT_EQ(errorOf(attention("", R"({"seq":4,"head_dim":64})")),
            "shape.seq: not allowed for kind attention; use seq_q and seq_k");
  EXPECT_EQ(errorOf(linear("", R"({"heads_q":4,"head_dim":64})")),
            "shape.heads_q: not allowed for kind linear_attention; use heads");
  EXPECT_EQ(
      errorOf(gated("", R"({"seq_k":4,"head_dim":64})")),
      "shape.seq_k: not allowed for kind gated_linear_attention; use seq");
  EXPECT_EQ(errorOf(attention(R"("options":{"chunk":64})")),
            "options.chunk: not allowed for kind attention");
  EXPECT_EQ(errorOf(gated(R"("options":{"block_q":64})")),
            "options.block_q: not allowed for kind gated_linear_attention");
}

TEST(SpecErrors, HeadsMustDivide) {
  EXPECT_EQ(
      errorOf(attention("", R"({"heads_q":6,"heads_kv":4,"head_dim":64})")),
      "shape.heads_q: 6 is not a multiple of shape.heads_kv (4)");
  EXPECT_EQ(
      errorOf(attention("", R"({"heads_q":4,"heads_kv":8,"head_dim":64})")),
      "shape.heads_q: 4 is not a multiple of shape.heads_kv (8)");
  EXPECT_EQ(
      errorOf(attention("", R"({"heads_q":32,"heads_kv":8,"head_dim":64})")),
      "ok");
}

TEST(SpecErrors, TensorDeclarations) {
  const std::string use = R"(,"score":{"custom":"score"})";
  EXPECT_EQ(errorOf(attention(
                R"("tensors":{"1x":{"dtype":"f32","shape":[1]}})" + use)),
            "tensors.1x: invalid tensor name; expected an identifier "
            "([A-Za-z_][A-Za-z0-9_]*)");
  EXPECT_EQ(
      errorOf(
          attention(R"("tensors":{"a-b":{"dtype":"f32","shape":[1]}})" + use)),
      R"(tensors["a-b"]: invalid tensor name; expected an identifier ([A-Za-z_][A-Za-z0-9_]*))");
  for (const char *reserved :
       {"b", "h", "q", "k", "score", "Sq", "Sk", "select", "min", "max", "abs",
        "exp", "tanh", "true", "false"}) {
    EXPECT_EQ(errorOf(attention(R"("tensors":{")" + std::string(reserved) +
                                R"(":{"dtype":"f32","shape":[1]}})" + use)),
              "tensors." + std::string(reserved) + ": \"" + reserved +
                  "\" is a reserved name of the expression language and cannot "
                  "name a tensor");
  }
  EXPECT_EQ(
      errorOf(attention(R"("tensors":{"bias":3})")),
      R"(tensors.bias: expected an object with "dtype" and "shape", got 3)");
  EXPECT_EQ(
      errorOf(attention(R"("tensors":{"bias":{"dtype":"f16","shape":[1]}})")),
      R"(tensors.bias.dtype: expected one of "f32", "i32", got "f16")");
  EXPECT_EQ(
      errorOf(attention(R"("tensors":{"bias":{"dtype":"f32","shape":[]}})")),
      "tensors.bias.shape: expected a non-empty array of positive integers or "
      "nulls, got []");
  EXPECT_EQ(
      errorOf(attention(R"("tensors":{"bias":{"dtype":"f32","shape":16}})")),
      "tensors.bias.shape: expected a non-empty array of positive integers or "
      "nulls, got 16");
  EXPECT_EQ(
      errorOf(
          attention(R"("tensors":{"bias":{"dtype":"f32","shape":[16,-3]}})")),
      "tensors.bias.shape[1]: expected a positive integer or null, got -3");
  EXPECT_EQ(
      errorOf(
          attention(R"("tensors":{"bias":{"dtype":"f32","shape":[16,"S"]}})")),
      R"(tensors.bias.shape[1]: expected a positive integer or null, got "S")");
}

TEST(SpecErrors, UnreadTensors) {
  EXPECT_EQ(errorOf(attention(
                R"("tensors":{"bias":{"dtype":"f32","shape":[16,null]}})")),
            "tensors.bias: declared but read by neither mask.custom nor "
            "score.custom");
  EXPECT_EQ(
      errorOf(attention(
          R"("tensors":{"ids":{"dtype":"i32","shape":[null]},"bias":{"dtype":"f32","shape":[16]}},)"
          R"("mask":{"custom":"ids[q] == ids[k]"},"score":{"custom":"score * 2"})")),
      "tensors.bias: declared but read by neither mask.custom nor "
      "score.custom");
  EXPECT_EQ(
      errorOf(attention(
          R"("tensors":{"ids":{"dtype":"i32","shape":[null]}},"mask":{"custom":"ids[q] == ids[k]"})")),
      "ok");
}

TEST(SpecErrors, NormalizeWithState) {
  const char *msg =
      "normalize: cannot be combined with state.initial or state.final: the "
      "normalizer is not part of the carried state";
  EXPECT_EQ(errorOf(linear(R"("normalize":true,"state":{"initial":true})")),
            msg);
  EXPECT_EQ(errorOf(linear(R"("normalize":true,"state":{"final":true})")), msg);
}

TEST(SpecErrors, Expressions) {
  EXPECT_EQ(
      errorOf(attention(
          R"("tensors":{"bias":{"dtype":"f32","shape":[16,null]}},"mask":{"custom":"q<k &&foo"},"score":{"custom":"score + bias[h, k]"})")),
      "mask.custom: column 7: unknown name 'foo'; names are b, h, q, k, Sq, Sk "
      "and the "
      "tensors (bias)");
  EXPECT_EQ(
      errorOf(attention(R"("mask":{"custom":"score > 0"})")),
      "mask.custom: column 1: 'score' is only visible in score functions, not "
      "in mask "
      "predicates; names are b, h, q, k, Sq, Sk; no tensors are declared");
  EXPECT_EQ(errorOf(attention(R"("mask":{"custom":"q + k"})")),
            "mask.custom: column 1: expected a Bool expression (a mask "
            "predicate), got Int");
  EXPECT_EQ(errorOf(attention(R"("score":{"custom":"score > 0"})")),
            "score.custom: column 1: expected a Float expression (a score), "
            "got Bool");
  EXPECT_EQ(errorOf(attention(R"("mask":{"custom":""})")),
            "mask.custom: column 1: empty expression");
  EXPECT_EQ(errorOf(attention(R"("mask":{"custom":"q <\u0000 k"})")),
            "mask.custom: column 4: unexpected character '\\x00'");
  EXPECT_EQ(errorOf(attention(R"("mask":{"custom":"q < k < 2"})")),
            "mask.custom: column 7: comparisons cannot be chained; combine "
            "them with &&, as "
            "in a < b && b < c");
  EXPECT_EQ(
      errorOf(attention(
          R"("tensors":{"bias":{"dtype":"f32","shape":[16,null]}},"score":{"custom":"score + bias[k]"})")),
      "score.custom: column 9: tensor 'bias' has rank 2 but is indexed with 1 "
      "index");
}

TEST(SpecFile, Errors) {
  Spec spec;
  std::string error;
  std::string missing = std::string(ATTN_EXAMPLES_DIR) + "/no-such-file.json";
  EXPECT_FALSE(parseSpecFile(missing, spec, error));
  EXPECT_EQ(error, missing + ": cannot open: No such file or directory");

  std::string dir = ATTN_EXAMPLES_DIR;
  EXPECT_FALSE(parseSpecFile(dir, spec, error));
  EXPECT_EQ(error, dir + ": cannot read: Is a directory");

  std::string path = testing::TempDir() + "attn-spec-test-bad.json";
  {
    std::ofstream out(path, std::ios::binary);
    out << "{\n  \"name\": 1\n}";
  }
  EXPECT_FALSE(parseSpecFile(path, spec, error));
  EXPECT_EQ(error, path + R"(: missing required key "kind")");
  std::filesystem::remove(path);
}

//===----------------------------------------------------------------------===//
// Robustness: truncations and mutations of every example
//===----------------------------------------------------------------------===//

namespace {
/// Parses `text`; the result must be consistent whichever way it goes.
void parseQuietly(const std::string &text, size_t &accepted) {
  Spec spec;
  spec.name = "sentinel";
  std::string error;
  if (parseSpec(text, spec, error)) {
    ++accepted;
    ASSERT_EQ(error, "");
    ASSERT_FALSE(spec.canonicalJson.empty());
    ASSERT_NE(spec.name, "sentinel");
  } else {
    ASSERT_NE(error, "");
    ASSERT_EQ(spec.name, "sentinel");
    ASSERT_LT(error.size(), 1000u) << error;
  }
}
} // namespace

TEST(SpecRobustness, EveryPrefixOfEveryExample) {
  for (const auto &[name, text] : exampleTexts()) {
    size_t accepted = 0;
    for (size_t len = 0; len <= text.size(); ++len) {
      parseQuietly(text.substr(0, len), accepted);
      if (HasFatalFailure())
        FAIL() << name << " prefix " << len;
    }
    // Only the complete text (possibly minus its trailing newline) is valid.
    EXPECT_GE(accepted, 1u) << name;
    EXPECT_LE(accepted, 2u) << name;
  }
}

TEST(SpecRobustness, SingleByteMutations) {
  const unsigned char bytes[] = {0x00, '"', '{',  '}',  '[',  ']',  ',', ':',
                                 '0',  '9', '-',  'x',  ' ',  '\\', '.', 'e',
                                 'n',  't', 0xC3, 0xFF, 0x7F, '\n'};
  for (const auto &[name, text] : exampleTexts()) {
    size_t accepted = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      for (unsigned char b : bytes) {
        std::string mutated = text;
        mutated[i] = static_cast<char>(b);
        parseQuietly(mutated, accepted);
        if (HasFatalFailure())
          FAIL() << name << " byte " << i << " := " << int(b);
      }
      std::string deleted = text;
      deleted.erase(i, 1);
      parseQuietly(deleted, accepted);
      std::string doubled = text;
      doubled.insert(i, 1, text[i]);
      parseQuietly(doubled, accepted);
      if (HasFatalFailure())
        FAIL() << name << " delete/duplicate byte " << i;
    }
  }
}

TEST(SpecRobustness, RandomMultiByteMutations) {
  std::mt19937 rng(42);
  const std::string alphabet =
      "{}[],:\"\\0123456789-+.eEtrufalsn xqk<>=&|!()*%/";
  for (const auto &[name, text] : exampleTexts()) {
    size_t accepted = 0;
    for (int iter = 0; iter < 1500; ++iter) {
      std::string mutated = text;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !mutated.empty(); ++e) {
        size_t at = rng() % mutated.size();
        switch (rng() % 3) {
        case 0:
          mutated[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          mutated.erase(at, 1 + rng() % 8);
          break;
        default:
          mutated.insert(at, text.substr(rng() % text.size(), 1 + rng() % 16));
        }
      }
      parseQuietly(mutated, accepted);
      if (HasFatalFailure())
        FAIL() << name << ": " << mutated;
    }
  }
}
