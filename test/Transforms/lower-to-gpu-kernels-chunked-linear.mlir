// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1" | FileCheck %s
// RUN: attn-opt %s --attn-lower-to-gpu-kernels | FileCheck %s --check-prefix=DEFAULT
// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1" \
// RUN:   | FileCheck %s --check-prefix=BARRIER --strict-whitespace
// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1" \
// RUN:   | FileCheck %s --check-prefix=BARRIERS --strict-whitespace

// Every gpu.barrier (bar.sync, an aligned barrier: the whole block, each warp
// converged) sits directly in the chunk loop's body (gpu.module > gpu.func >
// scf.for: 8 spaces of indentation), never in a nested scf.if / scf.for
// whose condition or trip count depends on the thread (the gate scan's
// `tid < 64`, the staging loops from tid, the `pos < T` output guards): one
// there could deadlock or release the block early. The first prefix: no
// deeper one anywhere in the output; the second: the chunk loops' barriers
// are at the indentation the first one assumes.
// BARRIER-NOT: {{^}}          {{ *}}gpu.barrier
// BARRIERS-LABEL: gpu.func @gated_scalar
// BARRIERS-COUNT-5: {{^}}        gpu.barrier
// BARRIERS-LABEL: gpu.func @linear_normalized
// BARRIERS-COUNT-3: {{^}}        gpu.barrier
// BARRIERS-LABEL: gpu.func @gated_vector
// BARRIERS-COUNT-5: {{^}}        gpu.barrier
// BARRIERS-NOT: gpu.barrier
// BARRIERS: gpu.return

// The chunkwise tensor-core kernel (opt-in): grid (Dv / 64, H, B) with the
// x extent in attn.grid_x, 4 warps, the shared buffers carved from the
// dynamic shared memory; per chunk of 64 steps (the scf.for carrying the f32
// state: 2 m tiles x 8 n tiles x 4 values per lane at Dk = 128) the gates'
// prefix scan (shuffle up), A = Q K^T and Q S on mma.sync with ldmatrix
// operands, the state update with K^T from ldmatrix .x4 .trans.
// CHECK: memref.global "public" @attn_dynamic_smem : memref<0xi8, #gpu.address_space<workgroup>> {alignment = 1024 : i64}
// CHECK-LABEL: gpu.func @gated_scalar
// CHECK-SAME: attn.block_threads = 128
// CHECK-SAME: attn.dynamic_shared_memory = 63232
// CHECK-SAME: attn.grid_x = 2
// CHECK-SAME: attn.tensor_cores = "mma.sync.chunkwise"
// CHECK: memref.view
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> ({{(f32, )+}}f32)
// The next chunk's raw gate, loaded before this chunk's first barrier and
// carried to the next iteration (the scan never waits on global memory).
// CHECK: memref.load %arg3
// CHECK: gpu.barrier
// CHECK: gpu.shuffle up
// CHECK: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false}
// CHECK: nvvm.mma.sync
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// CHECK: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = true}
// CHECK: nvvm.mma.sync
// CHECK: scf.yield
// CHECK: gpu.return
func.func @gated_scalar(%q: memref<?x4x?x128xbf16>, %k: memref<?x4x?x128xbf16>,
                        %v: memref<?x4x?x128xbf16>, %g: memref<?x4x?xf32>,
                        %h0: memref<?x4x128x128xf32>, %o: memref<?x4x?x128xbf16>,
                        %ht: memref<?x4x128x128xf32>) {
  attn.gated_linear_attention ins(%q, %k, %v, %g : memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?xf32>)
      initial_state(%h0 : memref<?x4x128x128xf32>) outs(%o : memref<?x4x?x128xbf16>)
      final_state(%ht : memref<?x4x128x128xf32>) {gate = #attn.gate<scalar>}
  return
}

// Head dim 64, one value-column block, the normalizer (elu + 1): no gate scan.
// CHECK-LABEL: gpu.func @linear_normalized
// CHECK-SAME: attn.grid_x = 1
// CHECK-SAME: attn.tensor_cores = "mma.sync.chunkwise"
// CHECK-NOT: gpu.shuffle up
// CHECK: nvvm.mma.sync
// CHECK: gpu.shuffle xor
// CHECK: gpu.return
func.func @linear_normalized(%q: memref<?x4x?x64xf16>, %k: memref<?x4x?x64xf16>,
                             %v: memref<?x4x?x64xf16>, %o: memref<?x4x?x64xf16>) {
  attn.linear_attention ins(%q, %k, %v : memref<?x4x?x64xf16>, memref<?x4x?x64xf16>, memref<?x4x?x64xf16>)
      outs(%o : memref<?x4x?x64xf16>) {feature_map = #attn.feature_map<elu_plus_one>, normalize}
  return
}

// Vector gates (GLA): per-dimension cumulative gates G [64, Dk + 8] f32 and
// K~ in shared memory (115200 bytes). Staging: Q, K, V's 20 predicated
// 16-byte loads per thread all before their stores; then thread d sums the
// gates of dimension d in registers from scalar global loads (no staged raw
// gates, no scan over shared memory). The off-diagonal 16-step sub-blocks on
// mma.sync (Q scaled against the sub-block's last step); of the diagonal
// ones, the two 8 x 8 triangles in f32 (a loop over the dims, 8 at a time,
// 4 (row, key) pairs per lane) and the lower-left 8 x 8 quadrant on mma.sync
// (a loop over k16 steps, both sides scaled to step 16w + 7).
// CHECK-LABEL: gpu.func @gated_vector
// CHECK-SAME: attn.dynamic_shared_memory = 115200
// CHECK-SAME: attn.grid_x = 2
// CHECK-SAME: attn.tensor_cores = "mma.sync.chunkwise"
// CHECK: memref.view {{.*}} to memref<64x136xf32, #gpu.address_space<workgroup>>
// CHECK: scf.for
// CHECK: gpu.barrier
// CHECK-COUNT-20: vector.load {{.*}} : memref<?x4x?x128xbf16>, vector<8xbf16>
// CHECK: vector.store
// CHECK: memref.load %arg3[{{.*}}, %thread_id_x] : memref<?x4x?x128xf32>
// CHECK-NOT: vector<4xf32>
// CHECK: gpu.barrier
// CHECK: nvvm.mma.sync
// CHECK: scf.for {{.*}} step %c8{{.*}} -> (f32, f32, f32, f32)
// CHECK-COUNT-8: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// CHECK: vector.from_elements {{.*}} : vector<8xf32>
// CHECK: vector.reduction <add>
// CHECK: scf.for {{.*}} step %c16{{.*}} -> (f32, f32, f32, f32)
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// CHECK: nvvm.mma.sync
// CHECK: scf.yield
// CHECK: gpu.return
func.func @gated_vector(%q: memref<?x4x?x128xbf16>, %k: memref<?x4x?x128xbf16>,
                        %v: memref<?x4x?x128xbf16>, %g: memref<?x4x?x128xf32>,
                        %o: memref<?x4x?x128xbf16>) {
  attn.gated_linear_attention ins(%q, %k, %v, %g : memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xf32>)
      outs(%o : memref<?x4x?x128xbf16>) {gate = #attn.gate<vector>}
  return
}

// Not covered, so the recurrent kernel (one thread per value column): f32,
// head dim 32.
// CHECK-LABEL: gpu.func @linear_f32
// CHECK-NOT: nvvm.mma.sync
// CHECK: gpu.return
func.func @linear_f32(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                      %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  attn.linear_attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>)
  return
}
// CHECK-LABEL: gpu.func @linear_d32
// CHECK-SAME: attn.block_threads = 32
// CHECK-NOT: nvvm.mma.sync
// CHECK: gpu.return
func.func @linear_d32(%q: memref<?x4x?x32xbf16>, %k: memref<?x4x?x32xbf16>,
                      %v: memref<?x4x?x32xbf16>, %o: memref<?x4x?x32xbf16>) {
  attn.linear_attention ins(%q, %k, %v : memref<?x4x?x32xbf16>, memref<?x4x?x32xbf16>, memref<?x4x?x32xbf16>)
      outs(%o : memref<?x4x?x32xbf16>)
  return
}

// Off by default: the recurrent kernel, no tensor cores.
// DEFAULT-LABEL: gpu.func @gated_scalar
// DEFAULT-NOT: attn.grid_x
// DEFAULT-NOT: nvvm.mma.sync
// DEFAULT: gpu.return
