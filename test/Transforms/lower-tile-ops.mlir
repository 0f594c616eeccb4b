// RUN: attn-opt %s --attn-lower-tile-ops | FileCheck %s

// CHECK-LABEL: func @update
// CHECK-NOT: attn.online_softmax
// CHECK: arith.maximumf
// A row that has seen only -inf keeps alpha = 1 (no 0 * inf).
// CHECK: arith.cmpf oeq
// CHECK: arith.select
// CHECK: math.exp2
// CHECK: math.fma
func.func @update(%s: memref<?x?xf32>, %v: memref<?x64xbf16>, %m: memref<?xf32>,
                  %l: memref<?xf32>, %acc: memref<?x64xf32>) {
  attn.online_softmax %s, %v, %m, %l, %acc : memref<?x?xf32>, memref<?x64xbf16>, memref<?xf32>, memref<?xf32>, memref<?x64xf32>
  return
}

// A zero sum (no visible key) gives out = 0 and lse = -inf, never NaN.
// CHECK-LABEL: func @finalize
// CHECK-NOT: attn.softmax_finalize
// CHECK: arith.cmpf oeq
// CHECK: arith.divf
// CHECK: arith.truncf %{{.*}} : f32 to bf16
// CHECK: math.log2
// CHECK: arith.constant 0.693147182 : f32
// CHECK: arith.select %{{.*}}, %cst{{.*}}, %{{.*}} : f32
func.func @finalize(%m: memref<?xf32>, %l: memref<?xf32>, %acc: memref<?x64xf32>,
                    %o: memref<?x64xbf16>, %lse: memref<?xf32>) {
  attn.softmax_finalize %m, %l, %acc, %o lse(%lse) : memref<?xf32>, memref<?xf32>, memref<?x64xf32>, memref<?x64xbf16>, memref<?xf32>
  return
}
