//===- AttnOps.td - attn dialect operations ----------------*- tablegen -*-===//
//
// One op per attention family. Every op is in destination-passing style on
// memrefs and has a verifier whose messages name the operand, what was found
// and what was expected.
//
//===----------------------------------------------------------------------===//

#ifndef ATTN_OPS_TD
#define ATTN_OPS_TD

include "AttnDialect.td"
include "mlir/IR/OpBase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"

class Attn_Op<string mnemonic, list<Trait> traits = []>
    : Op<Attn_Dialect, mnemonic, traits>;

def Attn_AttentionOp : Attn_Op<"attention", [AttrSizedOperandSegments]> {
  let summary = "Softmax attention with masks, score modifiers and grouped heads";
  let description = [{
    Computes `out = softmax(S) V` per batch `b` and query head `h`, where
    query head `h` reads key/value head `h / (Hq / Hkv)` (grouped-query and
    multi-query attention when `Hkv < Hq`).

    Shapes (logical order; strides give the layout):
    `query [B, Hq, Sq, Dqk]`, `key [B, Hkv, Sk, Dqk]`, `value [B, Hkv, Sk, Dv]`,
    `out [B, Hq, Sq, Dv]`, optional `lse [B, Hq, Sq]` (f32).

    **Scores, in this order** (`i` a query row, `j` a key position):
    1. `s = scale * dot(q_i, k_j)`; `scale` defaults to `1 / sqrt(Dqk)`.
    2. soft-cap (`softcap = c`): `s = c * tanh(s / c)`.
    3. ALiBi (`alibi_slopes` operand, f32 `[Hq]` or `[B, Hq]`):
       `s = s - slope[b, h] * |i + Sk - Sq - j|`.
    4. the `score_mod` region, which receives that `s`.

    **Visibility**: key `j` is visible to query `i` iff every present mask
    admits it:
    * `causal`: `j <= i + Sk - Sq` (bottom-right aligned, FlashAttention >= 2.1);
    * `window = #attn.window<left = L, right = R>`:
      `i + Sk - Sq - L <= j <= i + Sk - Sq + R` (inclusive);
    * `block_sparse = #attn.block_sparse<block_q = BQ, block_k = BK>` with the
      `block_mask` operand (i8 `[B or 1, Hq or 1, ceil(Sq/BQ), ceil(Sk/BK)]`):
      `block_mask[b, h, i / BQ, j / BK] != 0`;
    * document ids (`q_doc_ids` i32 `[B, Sq]`, `kv_doc_ids` i32 `[B, Sk]`):
      `q_doc_ids[b, i] == kv_doc_ids[b, j]`;
    * the `mask_mod` region returns true.

    Then `P = softmax_j(s)` over the visible keys, `out_i = sum_j P_ij v_j`,
    and `lse_i = log(sum_j exp(s_ij))` over the visible keys (natural log,
    as FlashAttention). A row with no visible key gets `out_i = 0` and
    `lse_i = -inf`, never NaN.

    **Regions.** `score_mod` has arguments `(b, h, q, k : index, score : f32)`
    and yields one f32; `mask_mod` has arguments `(b, h, q, k : index)` and
    yields one i1. `h` is the query head. Both regions then take one argument
    per `captures` operand (extra run-time tensors such as a bias table) with
    the same memref type. `attn.seq_lens` inside a region gives `Sq` and `Sk`.

    ```mlir
    attn.attention ins(%q, %k, %v : memref<?x16x?x128xbf16>,
                       memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>)
        outs(%o : memref<?x16x?x128xbf16>) lse(%lse : memref<?x16x?xf32>)
        {causal, window = #attn.window<left = 1023, right = 0>}
    ```
  }];

  let arguments = (ins
    Arg<AnyMemRef, "queries [B, Hq, Sq, Dqk]", [MemRead]>:$query,
    Arg<AnyMemRef, "keys [B, Hkv, Sk, Dqk]", [MemRead]>:$key,
    Arg<AnyMemRef, "values [B, Hkv, Sk, Dv]", [MemRead]>:$value,
    Arg<Optional<AnyMemRef>, "block layout", [MemRead]>:$block_mask,
    Arg<Optional<AnyMemRef>, "query document ids [B, Sq]", [MemRead]>:$q_doc_ids,
    Arg<Optional<AnyMemRef>, "key document ids [B, Sk]", [MemRead]>:$kv_doc_ids,
    Arg<Optional<AnyMemRef>, "ALiBi slopes [Hq] or [B, Hq]", [MemRead]>:$alibi_slopes,
    Arg<Variadic<AnyMemRef>, "tensors read by the regions", [MemRead]>:$captures,
    Arg<AnyMemRef, "output [B, Hq, Sq, Dv]", [MemWrite]>:$out,
    Arg<Optional<AnyMemRef>, "log-sum-exp [B, Hq, Sq], natural log", [MemWrite]>:$lse,
    OptionalAttr<F32Attr>:$scale,
    UnitAttr:$causal,
    OptionalAttr<Attn_WindowAttr>:$window,
    OptionalAttr<Attn_BlockSparseAttr>:$block_sparse,
    OptionalAttr<F32Attr>:$softcap,
    OptionalAttr<Attn_TilePlanAttr>:$tile_plan
  );
  let regions = (region AnyRegion:$score_mod, AnyRegion:$mask_mod);

  let assemblyFormat = [{
    `ins` `(` $query `,` $key `,` $value `:` type($query) `,` type($key) `,` type($value) `)`
    (`block_mask` `(` $block_mask^ `:` type($block_mask) `)`)?
    (`q_doc_ids` `(` $q_doc_ids^ `:` type($q_doc_ids) `)`)?
    (`kv_doc_ids` `(` $kv_doc_ids^ `:` type($kv_doc_ids) `)`)?
    (`alibi_slopes` `(` $alibi_slopes^ `:` type($alibi_slopes) `)`)?
    (`captures` `(` $captures^ `:` type($captures) `)`)?
    `outs` `(` $out `:` type($out) `)`
    (`lse` `(` $lse^ `:` type($lse) `)`)?
    attr-dict
    (`score_mod` $score_mod^)?
    (`mask_mod` $mask_mod^)?
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;

  let extraClassDeclaration = [{
    /// The scale applied to q.k, with the 1/sqrt(Dqk) default resolved.
    double getEffectiveScale();
    /// Hq / Hkv: how many query heads share one key/value head.
    int64_t getGroupSize();
    static constexpr unsigned kNumIndexArgs = 4; // b, h, q, k
  }];
}

def Attn_LinearAttentionOp : Attn_Op<"linear_attention", [AttrSizedOperandSegments]> {
  let summary = "Causal linear attention with a feature map";
  let description = [{
    With `phi` the feature map applied to queries and keys and state
    `S_t = S_{t-1} + phi(k_t) v_t^T` (f32, `[Dqk, Dv]`, `S_0` the optional
    `initial_state` or zero):

    * unnormalized: `out_t = scale * phi(q_t)^T S_t`, `scale` defaulting to
      `1 / sqrt(Dqk)`;
    * with `normalize`: `out_t = phi(q_t)^T S_t / (phi(q_t) . z_t)` with
      `z_t = sum_{s <= t} phi(k_s)`; the scale cancels; a zero denominator
      gives `out_t = 0`. The normalizer is not part of the carried state, so
      `normalize` cannot be combined with `initial_state` / `final_state`.

    `final_state` receives `S_Sq`. Shapes: `query`, `key [B, H, S, Dqk]`,
    `value`, `out [B, H, S, Dv]`, states f32 `[B, H, Dqk, Dv]`.

    ```mlir
    attn.linear_attention ins(%q, %k, %v : memref<?x?x?x64xf16>,
        memref<?x?x?x64xf16>, memref<?x?x?x64xf16>)
        outs(%o : memref<?x?x?x64xf16>)
        {feature_map = #attn.feature_map<elu_plus_one>, normalize}
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "queries [B, H, S, Dqk]", [MemRead]>:$query,
    Arg<AnyMemRef, "keys [B, H, S, Dqk]", [MemRead]>:$key,
    Arg<AnyMemRef, "values [B, H, S, Dv]", [MemRead]>:$value,
    Arg<Optional<AnyMemRef>, "initial state [B, H, Dqk, Dv], f32", [MemRead]>:$initial_state,
    Arg<AnyMemRef, "output [B, H, S, Dv]", [MemWrite]>:$out,
    Arg<Optional<AnyMemRef>, "final state [B, H, Dqk, Dv], f32", [MemWrite]>:$final_state,
    DefaultValuedAttr<Attn_FeatureMapAttr, "FeatureMap::Identity">:$feature_map,
    UnitAttr:$normalize,
    OptionalAttr<F32Attr>:$scale
  );
  let assemblyFormat = [{
    `ins` `(` $query `,` $key `,` $value `:` type($query) `,` type($key) `,` type($value) `)`
    (`initial_state` `(` $initial_state^ `:` type($initial_state) `)`)?
    `outs` `(` $out `:` type($out) `)`
    (`final_state` `(` $final_state^ `:` type($final_state) `)`)?
    attr-dict
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    double getEffectiveScale();
  }];
}

def Attn_GatedLinearAttentionOp : Attn_Op<"gated_linear_attention", [AttrSizedOperandSegments]> {
  let summary = "Causal linear attention with log-space decay gates";
  let description = [{
    With gates `g` in natural-log space and f32 state `S` (`[Dqk, Dv]`,
    `S_0` the optional `initial_state` or zero):

    * `gate = scalar` (`g : [B, H, S]`): `S_t = exp(g_t) S_{t-1} + k_t v_t^T`;
    * `gate = vector` (`g : [B, H, S, Dqk]`):
      `S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T` (GLA);
    * `gate = head_constant` (`g : [H]`): as scalar with `g_t = g[h]` (RetNet);

    and `out_t = scale * q_t^T S_t`, `scale` defaulting to `1 / sqrt(Dqk)`.
    `final_state` receives `S_Sq`. Gates are f32 and should be <= 0 (decay).

    ```mlir
    attn.gated_linear_attention ins(%q, %k, %v, %g : memref<?x?x?x128xbf16>,
        memref<?x?x?x128xbf16>, memref<?x?x?x128xbf16>, memref<?x?x?x128xf32>)
        outs(%o : memref<?x?x?x128xbf16>) {gate = #attn.gate<vector>}
    ```
  }];
  let arguments = (ins
    Arg<AnyMemRef, "queries [B, H, S, Dqk]", [MemRead]>:$query,
    Arg<AnyMemRef, "keys [B, H, S, Dqk]", [MemRead]>:$key,
    Arg<AnyMemRef, "values [B, H, S, Dv]", [MemRead]>:$value,
    Arg<AnyMemRef, "log-space gates", [MemRead]>:$gates,
    Arg<Optional<AnyMemRef>, "initial state [B, H, Dqk, Dv], f32", [MemRead]>:$initial_state,
    Arg<AnyMemRef, "output [B, H, S, Dv]", [MemWrite]>:$out,
    Arg<Optional<AnyMemRef>, "final state [B, H, Dqk, Dv], f32", [MemWrite]>:$final_state,
    Attn_GateKindAttr:$gate,
    OptionalAttr<F32Attr>:$scale
  );
  let assemblyFormat = [{
    `ins` `(` $query `,` $key `,` $value `,` $gates `:` type($query) `,` type($key) `,` type($value) `,` type($gates) `)`
    (`initial_state` `(` $initial_state^ `:` type($initial_state) `)`)?
    `outs` `(` $out `:` type($out) `)`
    (`final_state` `(` $final_state^ `:` type($final_state) `)`)?
    attr-dict
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    double getEffectiveScale();
  }];
}

def Attn_YieldOp : Attn_Op<"yield", [Pure, Terminator, ReturnLike,
    ParentOneOf<["AttentionOp"]>]> {
  let summary = "Yields the value of a score_mod or mask_mod region";
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "$values attr-dict `:` type($values)";
}

def Attn_SeqLensOp : Attn_Op<"seq_lens", [Pure, HasParent<"AttentionOp">]> {
  let summary = "The query and key sequence lengths inside a region";
  let description = [{
    Gives `Sq` and `Sk` of the enclosing `attn.attention` to its regions, so
    that a custom predicate such as `k <= q + Sk - Sq` needs no captured
    operand.

    ```mlir
    %sq, %sk = attn.seq_lens : index, index
    ```
  }];
  let results = (outs Index:$query_len, Index:$key_len);
  let assemblyFormat = "attr-dict `:` type($query_len) `,` type($key_len)";
}

//===----------------------------------------------------------------------===//
// Tiled level: the online-softmax state as first-class ops.
//===----------------------------------------------------------------------===//

def Attn_OnlineSoftmaxOp : Attn_Op<"online_softmax"> {
  let summary = "Folds one tile of scores into the running (max, sum, acc) state";
  let description = [{
    `scores` is an `[r, c]` tile of scores already in the base-2 domain
    (multiplied by log2(e)), masked entries `-inf`; `value` is the matching
    `[c, Dv]` tile of V. The state is the running row maximum `max [r]`, the
    running sum `sum [r]` and the unnormalized output `acc [r, Dv]`, all f32,
    updated in place:

    ```
    m' = max(m, rowmax(S));  alpha = exp2(m - m')  (1 when m' = -inf)
    P  = exp2(S - m')        (0 where S = -inf)
    sum' = alpha * sum + rowsum(P);  acc' = alpha * acc + P V
    ```

    ```mlir
    attn.online_softmax %s, %v, %m, %l, %acc : memref<?x?xf32>,
        memref<?x64xbf16, strided<[64, 1], offset: ?>>, memref<?xf32>,
        memref<?xf32>, memref<?x64xf32>
    ```
  }];
  let arguments = (ins Arg<AnyMemRef, "", [MemRead]>:$scores,
                       Arg<AnyMemRef, "", [MemRead]>:$value,
                       Arg<AnyMemRef, "", [MemRead, MemWrite]>:$max,
                       Arg<AnyMemRef, "", [MemRead, MemWrite]>:$sum,
                       Arg<AnyMemRef, "", [MemRead, MemWrite]>:$acc);
  let assemblyFormat = [{
    $scores `,` $value `,` $max `,` $sum `,` $acc attr-dict `:`
    type($scores) `,` type($value) `,` type($max) `,` type($sum) `,` type($acc)
  }];
  let hasVerifier = 1;
}

def Attn_SoftmaxFinalizeOp : Attn_Op<"softmax_finalize"> {
  let summary = "Normalizes the accumulator and computes the log-sum-exp";
  let description = [{
    `out = acc / sum` and `lse = (max + log2(sum)) * ln(2)` (natural log). A
    row whose sum is 0 (no visible key) gets `out = 0` and `lse = -inf`, never
    NaN. `out` may have any float element type (rounded from f32).

    ```mlir
    attn.softmax_finalize %m, %l, %acc, %out lse(%lse) : memref<?xf32>,
        memref<?xf32>, memref<?x64xf32>, memref<?x64xbf16, strided<[64, 1], offset: ?>>,
        memref<?xf32, strided<[1], offset: ?>>
    ```
  }];
  let arguments = (ins Arg<AnyMemRef, "", [MemRead]>:$max,
                       Arg<AnyMemRef, "", [MemRead]>:$sum,
                       Arg<AnyMemRef, "", [MemRead]>:$acc,
                       Arg<AnyMemRef, "", [MemWrite]>:$out,
                       Arg<Optional<AnyMemRef>, "", [MemWrite]>:$lse);
  let assemblyFormat = [{
    $max `,` $sum `,` $acc `,` $out (`lse` `(` $lse^ `)`)? attr-dict `:`
    type($max) `,` type($sum) `,` type($acc) `,` type($out) (`,` type($lse)^)?
  }];
  let hasVerifier = 1;
}

#endif // ATTN_OPS_TD
