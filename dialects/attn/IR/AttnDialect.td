//===- AttnDialect.td - the attn dialect and its attributes -*- tablegen -*-===//
//
// The attn dialect describes *what* attention variant to compute; passes decide
// how. Attributes here are the closed vocabulary of masks and gate kinds.
//
//===----------------------------------------------------------------------===//

#ifndef ATTN_DIALECT_TD
#define ATTN_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Attn_Dialect : Dialect {
  let name = "attn";
  let cppNamespace = "::attn";
  let summary = "Attention variants: softmax, linear and gated linear attention";
  let description = [{
    The `attn` dialect describes one attention computation per op, precisely
    enough that a compiler can reason about it: which (query, key) pairs are
    visible, how scores are modified, which heads share keys. Ops work on
    memrefs in destination-passing style, so a strided memref type describes
    both the `[B, H, S, D]` and the `[B, S, H, D]` layout without a copy: the
    logical dimension order of every 4-D operand is always `[B, H, S, D]`, the
    layout (strides) says where the elements are.

    Conventions shared by every op:

    * `Sq` and `Sk` are the query and key sequence lengths. Masks are aligned
      bottom-right, as in FlashAttention >= 2.1: query row `i` corresponds to
      key position `i + Sk - Sq`.
    * Element types are f16, bf16 or f32 (f32 for reference and CPU use);
      products accumulate in f32; recurrent state is f32.
    * The head dimension must be static and contiguous (innermost stride 1).
  }];
  let useDefaultAttributePrinterParser = 1;
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect"
  ];
}

class Attn_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Attn_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

def Attn_WindowAttr : Attn_Attr<"Window", "window"> {
  let summary = "Sliding-window mask bounds (inclusive, bottom-right aligned)";
  let description = [{
    Query `i` sees key `j` iff
    `i + Sk - Sq - left <= j <= i + Sk - Sq + right`. Both bounds are
    inclusive and non-negative; `left = 1023, right = 0` is a causal window of
    1024 keys. Combined with `causal`, the right bound is clamped to 0.

    ```mlir
    #attn.window<left = 1023, right = 0>
    ```
  }];
  let parameters = (ins "int64_t":$left, "int64_t":$right);
  let assemblyFormat = "`<` struct(params) `>`";
}

def Attn_BlockSparseAttr : Attn_Attr<"BlockSparse", "block_sparse"> {
  let summary = "Block sizes of a run-time block-sparse layout";
  let description = [{
    The `block_mask` operand holds one byte per (query block, key block):
    non-zero means the block is computed. Query block `r` covers query rows
    `[r * block_q, (r + 1) * block_q)`, key block `c` covers keys
    `[c * block_k, (c + 1) * block_k)`. The block sizes are the layout's own,
    independent of the tile sizes a kernel chooses.

    ```mlir
    #attn.block_sparse<block_q = 128, block_k = 128>
    ```
  }];
  let parameters = (ins "int64_t":$block_q, "int64_t":$block_k);
  let assemblyFormat = "`<` struct(params) `>`";
}

def Attn_FeatureMap : I32EnumAttr<"FeatureMap", "feature map of linear attention", [
    I32EnumAttrCase<"Identity", 0, "identity">,
    I32EnumAttrCase<"EluPlusOne", 1, "elu_plus_one">,
    I32EnumAttrCase<"Relu", 2, "relu">
  ]> {
  let cppNamespace = "::attn";
  let genSpecializedAttr = 0;
}
def Attn_FeatureMapAttr : EnumAttr<Attn_Dialect, Attn_FeatureMap, "feature_map"> {
  let assemblyFormat = "`<` $value `>`";
  let summary = "Feature map phi applied to queries and keys";
  let description = [{
    `identity`: phi(x) = x; `elu_plus_one`: phi(x) = elu(x) + 1 (positive);
    `relu`: phi(x) = max(x, 0).
  }];
}

def Attn_GateKind : I32EnumAttr<"GateKind", "shape of the decay gates", [
    I32EnumAttrCase<"Scalar", 0, "scalar">,
    I32EnumAttrCase<"Vector", 1, "vector">,
    I32EnumAttrCase<"HeadConstant", 2, "head_constant">
  ]> {
  let cppNamespace = "::attn";
  let genSpecializedAttr = 0;
}
def Attn_GateKindAttr : EnumAttr<Attn_Dialect, Attn_GateKind, "gate"> {
  let assemblyFormat = "`<` $value `>`";
  let summary = "How the log-space decay gates are shaped";
  let description = [{
    `scalar`: one gate per head and step, `g : [B, H, S]` (RetNet/Mamba2-like);
    `vector`: one gate per head, step and key channel, `g : [B, H, S, Dqk]`
    (GLA); `head_constant`: one constant gate per head, `g : [H]` (RetNet).
  }];
}

def Attn_TilePlanAttr : Attn_Attr<"TilePlan", "tile_plan"> {
  let summary = "Tile sizes and the symbolic classification of (q-tile, k-tile) pairs";
  let description = [{
    Written by `attn-plan-tiles`, read by `attn-tile-softmax`. For the q tile
    `t` (rows `[t * block_q, (t + 1) * block_q)`), the k tiles in
    `[kv_begin, kv_end)` may hold visible pairs; those outside are *empty* and
    never visited. Within that range the tiles in `[full_begin, full_end)` are
    *full* as far as the static masks (causal, window, recognized diagonal
    bounds, the sequence ends) go; the others are *partial* and get element
    masks. Each bound is an affine map `(t)[Sq, Sk]`: begin bounds are the
    maximum of the map's results, end bounds the minimum.

    `data_masks` lists the masks known only at run time (`block_sparse`,
    `documents`): each visited tile is classified again from the data (skip
    when empty, element mask when partial). `element_mask_everywhere` is set
    when a custom mask could not be summarized: every tile then applies it.

    ```mlir
    #attn.tile_plan<block_q = 64, block_k = 64,
      kv_begin = affine_map<(d0)[s0, s1] -> (0)>,
      full_begin = affine_map<(d0)[s0, s1] -> (0)>,
      full_end = affine_map<(d0)[s0, s1] -> (d0 + (s1 - s0) floordiv 64 ..., s1 floordiv 64)>,
      kv_end = affine_map<...>, data_masks = [], element_mask_everywhere = false>
    ```
  }];
  let parameters = (ins "int64_t":$block_q, "int64_t":$block_k,
                        "::mlir::AffineMapAttr":$kv_begin,
                        "::mlir::AffineMapAttr":$full_begin,
                        "::mlir::AffineMapAttr":$full_end,
                        "::mlir::AffineMapAttr":$kv_end,
                        "::mlir::ArrayAttr":$data_masks,
                        "bool":$element_mask_everywhere);
  let assemblyFormat = "`<` struct(params) `>`";
  // Hand-written plans (attn-opt on IR) are checked as attn-plan-tiles' are
  // built: tile sizes in [1, 4096], bound maps (t)[Sq, Sk] with at least one
  // result, data masks from the known set.
  let genVerifyDecl = 1;
}

#endif // ATTN_DIALECT_TD
