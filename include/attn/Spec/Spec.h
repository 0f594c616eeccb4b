//===- Spec.h - the JSON spec of one attention variant ----------*- C++ -*-===//
//
// A spec is the user-facing description of one variant (README "Spec
// format"). Parsing validates every key and reports the key path of the first
// problem; it needs no MLIR, so the runtime-only build and the float64
// reference use the same parser as the compiler.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_SPEC_SPEC_H
#define ATTN_SPEC_SPEC_H

#include "attn/Spec/Expr.h"
#include "attn/Spec/Limits.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace attn {

enum class VariantKind { Attention, LinearAttention, GatedLinearAttention };
enum class ElementType { F16, BF16, F32 };
enum class Layout { BHSD, BSHD };
enum class FeatureMapKind { Identity, EluPlusOne, Relu };
enum class GateKindSpec { Scalar, Vector, HeadConstant };
enum class AlibiShape { None, PerHead, PerBatchHead };

const char *variantKindName(VariantKind k);
const char *elementTypeName(ElementType t);
const char *layoutName(Layout l);
const char *featureMapName(FeatureMapKind f);
const char *gateKindName(GateKindSpec g);

constexpr int64_t kDynamic = -1;

struct Spec {
  std::string name;
  VariantKind kind = VariantKind::Attention;
  ElementType dtype = ElementType::F32;
  Layout layout = Layout::BHSD;

  // Shape; kDynamic where left to run time. Linear kinds have one head count
  // and one sequence length: headsKV == headsQ and seqK == seqQ there.
  int64_t batch = kDynamic, headsQ = kDynamic, headsKV = kDynamic;
  int64_t seqQ = kDynamic, seqK = kDynamic;
  int64_t headDim = 0, headDimV = 0;

  std::optional<double> scale; ///< default 1/sqrt(headDim)

  // Softmax attention.
  bool causal = false;
  std::optional<std::pair<int64_t, int64_t>> window; ///< (left, right)
  std::optional<std::pair<int64_t, int64_t>> blockSparse; ///< (block_q, block_k)
  bool documents = false;
  std::optional<double> softcap;
  AlibiShape alibi = AlibiShape::None;
  std::string maskText, scoreText;
  std::unique_ptr<Expr> maskExpr, scoreExpr;
  std::vector<TensorDecl> tensors;
  bool returnLse = false;

  // Linear and gated linear attention.
  FeatureMapKind featureMap = FeatureMapKind::Identity;
  bool normalize = false;
  GateKindSpec gate = GateKindSpec::Scalar;
  bool initialState = false, finalState = false;

  /// Compiler options (tile sizes, chunk size); validated keys only, within
  /// kMaxSpecTile / kMaxSpecChunk (attn/Spec/Limits.h).
  nlohmann::ordered_json options = nlohmann::ordered_json::object();

  /// The spec as given, re-serialized canonically (for manifests and hashes).
  std::string canonicalJson;

  double effectiveScale() const;
};

/// Parses a spec from JSON text. On failure returns false and sets `error` to
/// "<key path>: <problem>" (or "line L, column C: <problem>" for bad JSON).
/// Never throws or aborts, whatever the input.
bool parseSpec(const std::string &text, Spec &spec, std::string &error);

/// Reads and parses a spec file; errors are prefixed with the file name.
bool parseSpecFile(const std::string &path, Spec &spec, std::string &error);

} // namespace attn

#endif // ATTN_SPEC_SPEC_H
