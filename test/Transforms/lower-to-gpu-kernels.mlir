// RUN: attn-opt %s --split-input-file --attn-plan-tiles="block-q=64 block-k=32" --attn-lower-to-gpu-kernels | FileCheck %s

// Softmax: a kernel with the function's name and arguments, Q/K/V tiles in
// workgroup memory, the plan's k-tile range, per-key online softmax.
// CHECK: module attributes {gpu.container_module}
// CHECK: gpu.module @attn_kernels
// CHECK: gpu.func @causal(%{{.*}}: memref<?x4x?x128xbf16>, %{{.*}}: memref<?x4x?x128xbf16>, %{{.*}}: memref<?x4x?x128xbf16>, %{{.*}}: memref<?x4x?x128xbf16>) workgroup(%{{.*}} : memref<64x128xbf16, #gpu.address_space<workgroup>>, %{{.*}} : memref<32x128xbf16, #gpu.address_space<workgroup>>, %{{.*}} : memref<32x128xbf16, #gpu.address_space<workgroup>>) kernel attributes {attn.block_threads = 256 : i64}
// CHECK: gpu.block_id x
// CHECK: gpu.thread_id x
// CHECK: gpu.barrier
// CHECK: affine.max
// CHECK: affine.min
// CHECK: scf.for {{.*}} iter_args
// CHECK: vector.reduction <add>
// CHECK: math.exp2
// CHECK: vector.fma
// CHECK: vector.store
// CHECK-NOT: func.func @causal
func.func @causal(%q: memref<?x4x?x128xbf16>, %k: memref<?x4x?x128xbf16>,
                  %v: memref<?x4x?x128xbf16>, %o: memref<?x4x?x128xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>)
      outs(%o : memref<?x4x?x128xbf16>) {causal}
  return
}

// -----

// Gated linear attention: one thread per value column, state in registers.
// CHECK: gpu.func @gated(
// CHECK-SAME: kernel attributes {attn.block_threads = 32 : i64}
// CHECK: gpu.block_id y
// CHECK: gpu.thread_id x
// CHECK: scf.for {{.*}} iter_args
// CHECK: math.exp2 {{.*}} : vector<32xf32>
// CHECK: vector.fma
func.func @gated(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>, %v: memref<?x4x?x32xf32>,
                 %g: memref<?x4x?x64xf32>, %o: memref<?x4x?x32xf32>) {
  attn.gated_linear_attention ins(%q, %k, %v, %g : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x32xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x32xf32>) {gate = #attn.gate<vector>}
  return
}
