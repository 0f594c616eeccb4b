// RUN: attn-opt %s --split-input-file --attn-plan-tiles="block-q=64 block-k=32" --attn-lower-to-gpu-kernels | FileCheck %s

// Softmax: a kernel with the function's name and arguments, Q/K/V tiles in
// workgroup memory, the plan's k-tile range, per-key online softmax.
// CHECK: module attributes {gpu.container_module}
// CHECK: gpu.module @attn_kernels
// CHECK: memref.global "private" @causal_smem0 : memref<64x128xbf16, #gpu.address_space<workgroup>> = uninitialized {alignment = 16 : i64}
// CHECK: memref.global "private" @causal_smem1 : memref<32x128xbf16, #gpu.address_space<workgroup>>
// CHECK: memref.global "private" @causal_smem2 : memref<32x128xbf16, #gpu.address_space<workgroup>>
// CHECK: gpu.func @causal(%{{.*}}: memref<?x4x?x128xbf16>, %{{.*}}: memref<?x4x?x128xbf16>, %{{.*}}: memref<?x4x?x128xbf16>, %{{.*}}: memref<?x4x?x128xbf16>) kernel attributes {attn.block_threads = 256 : i64}
// CHECK: memref.get_global @causal_smem0
// CHECK: gpu.block_id x
// CHECK: gpu.thread_id x
// 16-byte staging of the Q tile.
// CHECK: vector.load {{.*}} {alignment = 16 : i64} : memref<?x4x?x128xbf16>, vector<8xbf16>
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

// -----

// With tensor-cores, f16/bf16 softmax with 64x32 tiles gets the mma.sync
// kernel: 4 warps, ldmatrix fragments, nvvm.mma.sync for both products.
// RUN: attn-opt %s --split-input-file --attn-plan-tiles="block-q=64 block-k=32" --attn-lower-to-gpu-kernels="tensor-cores=1" | FileCheck %s --check-prefix=MMA
// MMA-LABEL: gpu.func @mma_causal
// MMA-SAME: attn.block_threads = 128 : i64, attn.tensor_cores
// MMA: nvgpu.ldmatrix {{.*}} {numTiles = 2 : i32, transpose = false}
// MMA: nvvm.mma.sync {{.*}} {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>, shape = #nvvm.shape<m = 16, n = 8, k = 16>}
// MMA: gpu.shuffle  xor
// MMA: nvgpu.ldmatrix {{.*}} {numTiles = 2 : i32, transpose = true}
// MMA: nvvm.mma.sync
func.func @mma_causal(%q: memref<?x4x?x64xbf16>, %k: memref<?x4x?x64xbf16>,
                      %v: memref<?x4x?x64xbf16>, %o: memref<?x4x?x64xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>)
      outs(%o : memref<?x4x?x64xbf16>) {causal}
  return
}
