// RUN: attn-opt %s | FileCheck %s
// RUN: attn-opt %s | attn-opt | FileCheck %s
// RUN: attn-opt %s --mlir-print-op-generic | attn-opt | FileCheck %s

// Every op and attribute of the attn dialect survives print -> parse.

// CHECK-LABEL: func @dense
// CHECK: attn.attention ins(%{{.*}}, %{{.*}}, %{{.*}} : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>) outs(%{{.*}} : memref<?x16x?x128xbf16>) lse(%{{.*}} : memref<?x16x?xf32>)
// CHECK-NOT: {
func.func @dense(%q: memref<?x16x?x128xbf16>, %k: memref<?x16x?x128xbf16>,
                 %v: memref<?x16x?x128xbf16>, %o: memref<?x16x?x128xbf16>,
                 %lse: memref<?x16x?xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>)
      outs(%o : memref<?x16x?x128xbf16>) lse(%lse : memref<?x16x?xf32>)
  return
}

// CHECK-LABEL: func @causal_window_scale_softcap
// CHECK: attn.attention
// CHECK-SAME: {causal, scale = 1.250000e-01 : f32, softcap = 5.000000e+01 : f32, window = #attn.window<left = 1023, right = 0>}
func.func @causal_window_scale_softcap(%q: memref<2x8x100x64xf16>, %k: memref<2x8x130x64xf16>,
                                       %v: memref<2x8x130x32xf16>, %o: memref<2x8x100x32xf16>) {
  attn.attention ins(%q, %k, %v : memref<2x8x100x64xf16>, memref<2x8x130x64xf16>, memref<2x8x130x32xf16>)
      outs(%o : memref<2x8x100x32xf16>)
      {causal, window = #attn.window<left = 1023, right = 0>, scale = 0.125 : f32, softcap = 50.0 : f32}
  return
}

// CHECK-LABEL: func @gqa_block_sparse_docs_alibi
// CHECK: attn.attention ins({{.*}}) block_mask(%{{.*}} : memref<?x?x2x3xi8>) q_doc_ids(%{{.*}} : memref<2x100xi32>) kv_doc_ids(%{{.*}} : memref<2x130xi32>) alibi_slopes(%{{.*}} : memref<2x16xf32>) outs
// CHECK-SAME: block_sparse = #attn.block_sparse<block_q = 64, block_k = 64>
func.func @gqa_block_sparse_docs_alibi(%q: memref<2x16x100x64xf32>, %k: memref<2x4x130x64xf32>,
    %v: memref<2x4x130x64xf32>, %bm: memref<?x?x2x3xi8>, %qd: memref<2x100xi32>,
    %kd: memref<2x130xi32>, %slopes: memref<2x16xf32>, %o: memref<2x16x100x64xf32>) {
  attn.attention ins(%q, %k, %v : memref<2x16x100x64xf32>, memref<2x4x130x64xf32>, memref<2x4x130x64xf32>)
      block_mask(%bm : memref<?x?x2x3xi8>) q_doc_ids(%qd : memref<2x100xi32>)
      kv_doc_ids(%kd : memref<2x130xi32>) alibi_slopes(%slopes : memref<2x16xf32>)
      outs(%o : memref<2x16x100x64xf32>)
      {block_sparse = #attn.block_sparse<block_q = 64, block_k = 64>}
  return
}

// The [B, S, H, D] layout is a strided memref of the logical [B, H, S, D] shape.
// CHECK-LABEL: func @bshd
// CHECK: memref<?x8x?x64xf16, strided<[?, 64, 512, 1]>>
func.func @bshd(%q: memref<?x8x?x64xf16, strided<[?, 64, 512, 1]>>,
                %k: memref<?x8x?x64xf16, strided<[?, 64, 512, 1]>>,
                %v: memref<?x8x?x64xf16, strided<[?, 64, 512, 1]>>,
                %o: memref<?x8x?x64xf16, strided<[?, 64, 512, 1]>>) {
  attn.attention ins(%q, %k, %v : memref<?x8x?x64xf16, strided<[?, 64, 512, 1]>>, memref<?x8x?x64xf16, strided<[?, 64, 512, 1]>>, memref<?x8x?x64xf16, strided<[?, 64, 512, 1]>>)
      outs(%o : memref<?x8x?x64xf16, strided<[?, 64, 512, 1]>>) {causal}
  return
}

// CHECK-LABEL: func @regions
// CHECK: captures(%{{.*}} : memref<16x?xf32>)
// CHECK: score_mod {
// CHECK: ^bb0(%{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: f32, %{{.*}}: memref<16x?xf32>):
// CHECK: attn.yield %{{.*}} : f32
// CHECK: mask_mod {
// CHECK: attn.seq_lens : index, index
// CHECK: attn.yield %{{.*}} : i1
func.func @regions(%q: memref<?x16x?x64xbf16>, %k: memref<?x16x?x64xbf16>,
                   %v: memref<?x16x?x64xbf16>, %bias: memref<16x?xf32>,
                   %o: memref<?x16x?x64xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x16x?x64xbf16>, memref<?x16x?x64xbf16>, memref<?x16x?x64xbf16>)
      captures(%bias : memref<16x?xf32>) outs(%o : memref<?x16x?x64xbf16>)
      score_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index, %s: f32, %t: memref<16x?xf32>):
        %x = memref.load %t[%h, %j] : memref<16x?xf32>
        %r = arith.addf %s, %x : f32
        attn.yield %r : f32
      }
      mask_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index, %t: memref<16x?xf32>):
        %sq, %sk = attn.seq_lens : index, index
        %d = arith.subi %sk, %sq : index
        %lim = arith.addi %i, %d : index
        %ok = arith.cmpi sle, %j, %lim : index
        attn.yield %ok : i1
      }
  return
}

// CHECK-LABEL: func @linear
// CHECK: attn.linear_attention ins({{.*}}) initial_state(%{{.*}} : memref<?x4x64x32xf32>) outs(%{{.*}} : memref<?x4x?x32xf16>) final_state(%{{.*}} : memref<?x4x64x32xf32>) {feature_map = #attn.feature_map<relu>, scale = 5.000000e-01 : f32}
func.func @linear(%q: memref<?x4x?x64xf16>, %k: memref<?x4x?x64xf16>, %v: memref<?x4x?x32xf16>,
                  %h0: memref<?x4x64x32xf32>, %o: memref<?x4x?x32xf16>, %ht: memref<?x4x64x32xf32>) {
  attn.linear_attention ins(%q, %k, %v : memref<?x4x?x64xf16>, memref<?x4x?x64xf16>, memref<?x4x?x32xf16>)
      initial_state(%h0 : memref<?x4x64x32xf32>) outs(%o : memref<?x4x?x32xf16>)
      final_state(%ht : memref<?x4x64x32xf32>) {feature_map = #attn.feature_map<relu>, scale = 0.5 : f32}
  return
}

// CHECK-LABEL: func @linear_normalized
// CHECK: {feature_map = #attn.feature_map<elu_plus_one>, normalize}
func.func @linear_normalized(%q: memref<?x?x?x64xf32>, %k: memref<?x?x?x64xf32>,
                             %v: memref<?x?x?x64xf32>, %o: memref<?x?x?x64xf32>) {
  attn.linear_attention ins(%q, %k, %v : memref<?x?x?x64xf32>, memref<?x?x?x64xf32>, memref<?x?x?x64xf32>)
      outs(%o : memref<?x?x?x64xf32>) {feature_map = #attn.feature_map<elu_plus_one>, normalize}
  return
}

// The default feature map (identity) is not printed.
// CHECK-LABEL: func @linear_identity
// CHECK: attn.linear_attention
// CHECK-NOT: feature_map
func.func @linear_identity(%q: memref<?x?x?x64xf32>, %k: memref<?x?x?x64xf32>,
                           %v: memref<?x?x?x64xf32>, %o: memref<?x?x?x64xf32>) {
  attn.linear_attention ins(%q, %k, %v : memref<?x?x?x64xf32>, memref<?x?x?x64xf32>, memref<?x?x?x64xf32>)
      outs(%o : memref<?x?x?x64xf32>)
  return
}

// CHECK-LABEL: func @gated
// CHECK: attn.gated_linear_attention ins({{.*}} : {{.*}}, memref<?x8x?xf32>) outs(%{{.*}} : memref<?x8x?x128xbf16>) final_state(%{{.*}} : memref<?x8x128x128xf32>) {gate = #attn.gate<scalar>}
// CHECK: {gate = #attn.gate<vector>}
// CHECK: {gate = #attn.gate<head_constant>, scale = 1.000000e+00 : f32}
func.func @gated(%q: memref<?x8x?x128xbf16>, %k: memref<?x8x?x128xbf16>, %v: memref<?x8x?x128xbf16>,
                 %gs: memref<?x8x?xf32>, %gv: memref<?x8x?x128xf32>, %gc: memref<8xf32>,
                 %o: memref<?x8x?x128xbf16>, %ht: memref<?x8x128x128xf32>) {
  attn.gated_linear_attention ins(%q, %k, %v, %gs : memref<?x8x?x128xbf16>, memref<?x8x?x128xbf16>, memref<?x8x?x128xbf16>, memref<?x8x?xf32>)
      outs(%o : memref<?x8x?x128xbf16>) final_state(%ht : memref<?x8x128x128xf32>) {gate = #attn.gate<scalar>}
  attn.gated_linear_attention ins(%q, %k, %v, %gv : memref<?x8x?x128xbf16>, memref<?x8x?x128xbf16>, memref<?x8x?x128xbf16>, memref<?x8x?x128xf32>)
      outs(%o : memref<?x8x?x128xbf16>) {gate = #attn.gate<vector>}
  attn.gated_linear_attention ins(%q, %k, %v, %gc : memref<?x8x?x128xbf16>, memref<?x8x?x128xbf16>, memref<?x8x?x128xbf16>, memref<8xf32>)
      outs(%o : memref<?x8x?x128xbf16>) {gate = #attn.gate<head_constant>, scale = 1.0 : f32}
  return
}
