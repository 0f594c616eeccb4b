// RUN: attn-opt %s --attn-tile-linear="chunk=16" --canonicalize --cse --split-input-file | FileCheck %s

// Gated (vector gates): a parallel loop over (batch, head) carrying the f32
// state through a loop over chunks; decays are exp2 of in-chunk differences.
// CHECK-LABEL: func @gated_vector
// CHECK: scf.parallel (%[[B:.*]], %[[H:.*]]) =
// CHECK: %[[STATE:.*]] = memref.alloca() : memref<64x32xf32>
// CHECK: memref.load %arg4[%[[B]], %[[H]]
// CHECK: memref.alloca() : memref<16x64xf32>
// CHECK: scf.for %[[C:.*]] = %c0 to %{{.*}} step %c1 {
// CHECK: arith.mulf %{{.*}}, %cst{{.*}} : f32
// CHECK: arith.subf
// CHECK: math.exp2
// CHECK: memref.store %{{.*}}, %[[STATE]]
// CHECK: memref.store %{{.*}}, %arg6[%[[B]], %[[H]]
// CHECK-NOT: attn.gated_linear_attention
func.func @gated_vector(%q: memref<?x4x?x64xbf16>, %k: memref<?x4x?x64xbf16>,
                        %v: memref<?x4x?x32xbf16>, %g: memref<?x4x?x64xf32>,
                        %h0: memref<?x4x64x32xf32>, %o: memref<?x4x?x32xbf16>,
                        %ht: memref<?x4x64x32xf32>) {
  attn.gated_linear_attention ins(%q, %k, %v, %g : memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>, memref<?x4x?x32xbf16>, memref<?x4x?x64xf32>)
      initial_state(%h0 : memref<?x4x64x32xf32>) outs(%o : memref<?x4x?x32xbf16>)
      final_state(%ht : memref<?x4x64x32xf32>) {gate = #attn.gate<vector>}
  return
}

// -----

// Linear attention with elu+1 and the normalizer: no gates, a running z.
// CHECK-LABEL: func @linear_normalized
// CHECK: scf.parallel
// CHECK: memref.alloca() : memref<64xf32>
// CHECK: math.exp
// CHECK: arith.divf
// CHECK-NOT: math.exp2
func.func @linear_normalized(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                             %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  attn.linear_attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>) {feature_map = #attn.feature_map<elu_plus_one>, normalize}
  return
}
