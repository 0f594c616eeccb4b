// RUN: attn-opt %s --attn-plan-tiles="block-q=64 block-k=32" --attn-tile-softmax --canonicalize --cse --split-input-file | FileCheck %s

// Causal: one parallel loop over (batch, head, q tile); per q tile, partial
// tiles before and after the full range and a full range without masks.
// CHECK-LABEL: func @causal
// CHECK-DAG: %[[SCALE:.*]] = arith.constant 0.180336878 : f32
// CHECK: scf.parallel (%[[B:.*]], %[[H:.*]], %[[T:.*]]) =
// CHECK: memref.subview %arg0[%[[B]], %[[H]],
// CHECK: linalg.fill
// CHECK: %[[KVE:.*]] = affine.min
// CHECK: %[[FE:.*]] = affine.min
// Causal has no partial tiles before the full ones (the range starts at 0).
// CHECK: scf.for %{{.*}} = %c0 to %[[FB:.*]] step
// CHECK: scf.for %{{.*}} = %[[FB]] to %[[FE2:.*]] step
// The full tile: one multiply by scale * log2(e) = 0.125 * 1.4427, no mask.
// CHECK-NOT: arith.select
// CHECK: arith.mulf %{{.*}}, %[[SCALE]] : f32
// CHECK-NEXT: memref.store
// CHECK: attn.online_softmax
// The partial (diagonal) tiles compare keys with the bottom-right diagonal.
// CHECK: scf.for %{{.*}} = %[[FE2]] to %[[KVE]]
// CHECK: arith.cmpi sle
// CHECK: arith.select
// CHECK: attn.online_softmax
// CHECK: attn.softmax_finalize
// CHECK-NOT: attn.attention
func.func @causal(%q: memref<?x4x?x64xf16>, %k: memref<?x4x?x64xf16>,
                  %v: memref<?x4x?x64xf16>, %o: memref<?x4x?x64xf16>, %lse: memref<?x4x?xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf16>, memref<?x4x?x64xf16>, memref<?x4x?x64xf16>)
      outs(%o : memref<?x4x?x64xf16>) lse(%lse : memref<?x4x?xf32>) {causal}
  return
}

// -----

// GQA: query head h reads key/value head h / (Hq / Hkv).
// CHECK-LABEL: func @gqa
// CHECK: scf.parallel (%[[B:.*]], %[[H:.*]], %{{.*}}) =
// CHECK: %[[KVH:.*]] = arith.divui %[[H]], %c4 : index
// CHECK: memref.subview %arg1[%[[B]], %[[KVH]],
func.func @gqa(%q: memref<?x8x?x64xf32>, %k: memref<?x2x?x64xf32>,
               %v: memref<?x2x?x64xf32>, %o: memref<?x8x?x64xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x8x?x64xf32>, memref<?x2x?x64xf32>, memref<?x2x?x64xf32>)
      outs(%o : memref<?x8x?x64xf32>)
  return
}

// -----

// Soft-cap and a score region are applied in natural-log units, then log2(e).
// CHECK-LABEL: func @modifiers
// CHECK-DAG: %[[LOG2E:.*]] = arith.constant 1.44269502 : f32
// CHECK: math.tanh
// CHECK: memref.load %arg3
// CHECK: %[[S:.*]] = arith.addf
// CHECK: arith.mulf %[[S]], %[[LOG2E]]
func.func @modifiers(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                     %v: memref<?x4x?x64xf32>, %bias: memref<?xf32>, %o: memref<?x4x?x64xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      captures(%bias : memref<?xf32>) outs(%o : memref<?x4x?x64xf32>) {softcap = 30.0 : f32}
      score_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index, %s: f32, %t: memref<?xf32>):
        %x = memref.load %t[%j] : memref<?xf32>
        %r = arith.addf %s, %x : f32
        attn.yield %r : f32
      }
  return
}

// -----

// Block layout: every visited tile is classified from the data (skip / full / partial).
// CHECK-LABEL: func @block_sparse
// CHECK: scf.for {{.*}} iter_args
// CHECK: arith.ori
// CHECK: scf.if
func.func @block_sparse(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                        %v: memref<?x4x?x64xf32>, %bm: memref<?x?x?x?xi8>, %o: memref<?x4x?x64xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      block_mask(%bm : memref<?x?x?x?xi8>) outs(%o : memref<?x4x?x64xf32>)
      {block_sparse = #attn.block_sparse<block_q = 32, block_k = 32>}
  return
}

