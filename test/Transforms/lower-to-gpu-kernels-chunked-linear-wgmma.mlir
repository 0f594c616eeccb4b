// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1 chunked-linear-prefetch=1 chunked-linear-wgmma=1" | FileCheck %s
// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1 chunked-linear-prefetch=1" | FileCheck %s --check-prefix=OFF
// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1 chunked-linear-wgmma=1 chunked-linear-wgmma-overlap=1" | FileCheck %s --check-prefix=OVERLAP
// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1 chunked-linear-wgmma=1 chunked-linear-wgmma-vector=1" | FileCheck %s --check-prefix=VEC
// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1 chunked-linear-wgmma=1 chunked-linear-wgmma-vector=1 chunked-linear-producer-diagonal=1" | FileCheck %s --check-prefix=PDIAG
// RUN: attn-opt %s --attn-lower-to-gpu-kernels="chunked-linear=1 chunked-linear-wgmma=1 chunked-linear-wgmma-vector=1 chunked-linear-two-consumers=1" | FileCheck %s --check-prefix=TWOC


// The Hopper chunkwise linear kernel (chunked-linear-wgmma, opt-in): no,
// scalar and head-constant gates with the identity feature map and no
// normalizer. 256 threads (a producer warpgroup, one consumer warpgroup),
// register cap 128 at entry (2 blocks per SM), one TMA tensor map per Q, K, V
// (64 x 64 boxes, 128-byte swizzle), 2 stages of Q, K, V + S_bf16 + G +
// mbarriers in the dynamic shared memory.
// CHECK: memref.global "public" @attn_dynamic_smem : memref<0xi8, #gpu.address_space<workgroup>> {alignment = 1024 : i64}
// CHECK-LABEL: gpu.func @gated_scalar
// CHECK-SAME: %arg7: !llvm.ptr, %arg8: !llvm.ptr, %arg9: !llvm.ptr
// CHECK-SAME: attn.block_threads = 256
// CHECK-SAME: attn.dynamic_shared_memory = 98848
// CHECK-SAME: attn.grid_x = 2
// CHECK-SAME: attn.tensor_cores = "wgmma.chunkwise"
// CHECK-SAME: attn.tensor_maps = [{argument = 0 : i64, box_cols = 64 : i64, box_rows = 64 : i64, swizzle = 128 : i64}, {argument = 1 : i64, box_cols = 64 : i64, box_rows = 64 : i64, swizzle = 128 : i64}, {argument = 2 : i64, box_cols = 64 : i64, box_rows = 64 : i64, swizzle = 128 : i64}]
// CHECK-SAME: nvvm.maxntid = array<i32: 256, 1, 1>, nvvm.minctasm = 2
// Full barriers: the expect_tx arrival plus the 32 gate lanes'.
// CHECK: "mbarrier.init.shared::cta.b64 [$0], $1;", "r,r" %{{.*}}, %c33_i32
// CHECK: gpu.barrier
// Producer: per chunk, wait for the stage, expect 40960 bytes, 5 TMA boxes
// (Q, K: 2 each; V: 1 at column 64 blockIdx.x), the gate scan, arrive.
// CHECK: setmaxnreg.dec.sync.aligned.u32 40
// CHECK: scf.for
// CHECK: mbarrier.try_wait.parity
// CHECK: mbarrier.arrive.expect_tx.shared::cta.b64 _, [$0], $1;", "r,r" %{{.*}}, %c40960_i32
// CHECK-COUNT-5: cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes
// CHECK: gpu.shuffle  up
// CHECK: "mbarrier.arrive.shared::cta.b64 _, [$0];"
// Consumer: the (initial) state rounded into S_bf16 before the first chunk.
// CHECK: setmaxnreg.inc.sync.aligned.u32 216
// CHECK: fence.proxy.async.shared::cta;
// CHECK: "bar.sync $0, 128;"
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> ({{(f32, ){63}f32}})
// CHECK: mbarrier.try_wait.parity
// A = Q K^T (K-major A and B), then OQ = Q S_bf16 (B MN-major), two groups.
// CHECK: wgmma.fence.sync.aligned;
// CHECK-COUNT-8: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {{.*}}p, 1, 1, 0, 0;
// CHECK: wgmma.commit_group.sync.aligned;
// CHECK-COUNT-8: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {{.*}}p, 1, 1, 0, 1;
// CHECK: wgmma.commit_group.sync.aligned;
// A's decay 2^(G_t - G_s) while both run, then wait for A.
// CHECK: llvm.nvvm.ex2.approx.ftz.f32
// CHECK: wgmma.wait_group.sync.aligned 1;
// CHECK-NOT: llvm.nvvm.ex2.approx.ftz.f32
// CHECK: wgmma.wait_group.sync.aligned 0;
// O = 2^G OQ + A V, A from registers (no transpose immediate for A).
// CHECK: wgmma.fence.sync.aligned;
// CHECK-COUNT-4: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {{.*}}}, {$64, $65, $66, $67}, $68, p, 1, 1, 1;
// CHECK: wgmma.commit_group.sync.aligned;
// K scaled in place, then made visible to the async proxy.
// CHECK: vector.load {{.*}} vector<8xbf16>
// CHECK: vector.store {{.*}} vector<8xbf16>
// CHECK: fence.proxy.async.shared::cta;
// CHECK: "bar.sync $0, 128;"
// S = 2^G_last S + K^T V: A = K^T from shared memory, transposed (MN-major).
// CHECK: wgmma.fence.sync.aligned;
// CHECK-COUNT-8: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {{.*}}p, 1, 1, 1, 1;
// CHECK: wgmma.commit_group.sync.aligned;
// Output pairs (4-byte aligned) once A V is done, while the state update
// runs; then the new S_bf16, release the stage.
// CHECK: wgmma.wait_group.sync.aligned 1;
// CHECK: vector.store {{.*}} {alignment = 4 : i64} : memref<?x4x?x128xbf16>, vector<2xbf16>
// CHECK: wgmma.wait_group.sync.aligned 0;
// CHECK: vector.store {{.*}} {alignment = 4 : i64} : memref<8192xbf16, #gpu.address_space<workgroup>>, vector<2xbf16>
// CHECK: fence.proxy.async.shared::cta;
// CHECK: "bar.sync $0, 128;"
// CHECK: "mbarrier.arrive.shared::cta.b64 _, [$0];"
// CHECK: scf.yield
// Final state.
// CHECK: memref.store {{.*}} : memref<?x4x128x128xf32>
// CHECK: gpu.return

// Ungated, head dim 64, f16, a scale: one Q / K box, one state half; no gate
// scan and no K scaling (full barriers count the expect_tx arrival only).
// CHECK-LABEL: gpu.func @linear_plain
// CHECK-SAME: attn.dynamic_shared_memory = 57888
// CHECK-SAME: attn.grid_x = 1
// CHECK-SAME: attn.tensor_cores = "wgmma.chunkwise"
// CHECK-NOT: %c33_i32
// CHECK: mbarrier.arrive.expect_tx.shared::cta.b64 _, [$0], $1;", "r,r" %{{.*}}, %c24576_i32
// CHECK-COUNT-3: cp.async.bulk.tensor.4d
// CHECK-NOT: gpu.shuffle
// CHECK: setmaxnreg.inc
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> ({{(f32, ){31}f32}})
// CHECK-COUNT-4: wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {{.*}}p, 1, 1, 0, 0;
// CHECK-COUNT-4: wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {{.*}}p, 1, 1, 0, 1;
// CHECK-NOT: llvm.nvvm.ex2
// CHECK-COUNT-4: wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {{.*}}p, 1, 1, 1;
// CHECK-NOT: fence.proxy.async
// CHECK-COUNT-4: wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {{.*}}p, 1, 1, 1, 1;
// CHECK: arith.constant 1.250000e-01 : f32
// CHECK: gpu.return

// Outside its scope, the mma.sync kernel as before: vector gates, a feature
// map.
// CHECK-LABEL: gpu.func @gated_vector
// CHECK-SAME: attn.tensor_cores = "mma.sync.chunkwise"
// CHECK-NOT: wgmma
// CHECK: nvvm.mma.sync
// CHECK: gpu.return
// CHECK-LABEL: gpu.func @linear_elu
// CHECK-SAME: attn.tensor_cores = "mma.sync.chunkwise"
// CHECK-NOT: wgmma
// CHECK: nvvm.mma.sync
// CHECK: gpu.return

// Without the option: the mma.sync kernel everywhere.
// OFF-LABEL: gpu.func @gated_scalar
// OFF-SAME: attn.tensor_cores = "mma.sync.chunkwise"
// OFF-LABEL: gpu.func @linear_plain
// OFF-SAME: attn.tensor_cores = "mma.sync.chunkwise"
// OFF-NOT: wgmma

func.func @gated_scalar(%q: memref<?x4x?x128xbf16>, %k: memref<?x4x?x128xbf16>,
                        %v: memref<?x4x?x128xbf16>, %g: memref<?x4x?xf32>,
                        %h0: memref<?x4x128x128xf32>, %o: memref<?x4x?x128xbf16>,
                        %ht: memref<?x4x128x128xf32>) {
  attn.gated_linear_attention ins(%q, %k, %v, %g : memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?xf32>)
      initial_state(%h0 : memref<?x4x128x128xf32>) outs(%o : memref<?x4x?x128xbf16>)
      final_state(%ht : memref<?x4x128x128xf32>) {gate = #attn.gate<scalar>}
  return
}

func.func @linear_plain(%q: memref<?x4x?x64xf16>, %k: memref<?x4x?x64xf16>,
                        %v: memref<?x4x?x64xf16>, %o: memref<?x4x?x64xf16>) {
  attn.linear_attention ins(%q, %k, %v : memref<?x4x?x64xf16>, memref<?x4x?x64xf16>, memref<?x4x?x64xf16>)
      outs(%o : memref<?x4x?x64xf16>) {scale = 0.125 : f32}
  return
}

func.func @gated_vector(%q: memref<?x4x?x128xbf16>, %k: memref<?x4x?x128xbf16>,
                        %v: memref<?x4x?x128xbf16>, %g: memref<?x4x?x128xf32>,
                        %o: memref<?x4x?x128xbf16>) {
  attn.gated_linear_attention ins(%q, %k, %v, %g : memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xf32>)
      outs(%o : memref<?x4x?x128xbf16>) {gate = #attn.gate<vector>}
  return
}

func.func @linear_elu(%q: memref<?x4x?x64xf16>, %k: memref<?x4x?x64xf16>,
                      %v: memref<?x4x?x64xf16>, %o: memref<?x4x?x64xf16>) {
  attn.linear_attention ins(%q, %k, %v : memref<?x4x?x64xf16>, memref<?x4x?x64xf16>, memref<?x4x?x64xf16>)
      outs(%o : memref<?x4x?x64xf16>) {feature_map = #attn.feature_map<elu_plus_one>}
  return
}

// Overlap: chunk 0's A = Q K^T before the loop (waited for, copied), which
// carries the next chunk's 32 A values after the state; per chunk OQ (8),
// A V (4), the state update (8), O's stores after wait_group 1 (the state
// update in flight), then the next chunk's Q K^T (8), wait_group 1 (the
// state), S_bf16, the barrier, wait_group 0 (the next A).
// OVERLAP-LABEL: gpu.func @gated_scalar
// OVERLAP-SAME: attn.overlap
// OVERLAP: setmaxnreg.inc
// OVERLAP-COUNT-8: p, 1, 1, 0, 0;
// OVERLAP: wgmma.wait_group.sync.aligned 0;
// OVERLAP: "mov.b32 $0, $1;", "=f,f"
// OVERLAP: scf.for {{.*}} iter_args({{.*}}) -> ({{(f32, ){95}f32}})
// OVERLAP-COUNT-8: p, 1, 1, 0, 1;
// OVERLAP-NOT: wgmma.wait_group.sync.aligned 1;
// OVERLAP: wgmma.wait_group.sync.aligned 0;
// OVERLAP-COUNT-4: p, 1, 1, 1;
// OVERLAP-COUNT-8: p, 1, 1, 1, 1;
// OVERLAP: wgmma.commit_group.sync.aligned;
// OVERLAP: wgmma.wait_group.sync.aligned 1;
// OVERLAP: vector.store {{.*}} : memref<?x4x?x128xbf16>, vector<2xbf16>
// OVERLAP: arith.select
// OVERLAP: mbarrier.try_wait.parity
// OVERLAP-COUNT-8: p, 1, 1, 0, 0;
// OVERLAP: wgmma.commit_group.sync.aligned;
// OVERLAP: wgmma.wait_group.sync.aligned 1;
// OVERLAP: memref<8192xbf16, #gpu.address_space<workgroup>>, vector<2xbf16>
// OVERLAP: "bar.sync $0, 128;"
// OVERLAP: mbarrier.arrive.shared::cta.b64
// OVERLAP: wgmma.wait_group.sync.aligned 0;
// OVERLAP: scf.yield
// OVERLAP-LABEL: gpu.func @linear_plain
// OVERLAP-SAME: attn.overlap

// chunked-linear-wgmma-vector: vector gates get the wgmma kernel. Shared
// memory 2 x 40960 (Q, K, V) + 16384 (S_bf16) + 2 x 34816 (G [64][136] f32)
// + 16384 (K~) + 3072 (D [6][128] f32) + 32 = 187424: 1 block per SM, 40 /
// 248 registers. The full
// barriers count the expect_tx arrival and the 128 gate-scan threads; the
// 128 producer threads loop (thread 0: TMA; thread d: G's column d).
// Per chunk: K~ = K ⊙ 2^(G_r − G_s) (r = the 8-step block's last step),
// then per k16 step one group of O += (Q ⊙ 2^G) S_bf16 (A from registers)
// and 7 x m64n8k16 A_j += (Q ⊙ 2^(G − G_r(j))) K~_j^T (one exp2 per value,
// then the D table down the reference blocks), the 8 x 8
// diagonal blocks in f32, A V, K scaled in place, S = 2^G_last S + K^T V.
// VEC-LABEL: gpu.func @gated_vector
// VEC-SAME: attn.dynamic_shared_memory = 187424
// VEC-SAME: attn.tensor_cores = "wgmma.chunkwise"
// VEC-SAME: nvvm.minctasm = 1
// VEC: "mbarrier.init.shared::cta.b64 [$0], $1;", "r,r" %{{.*}}, %c129_i32
// VEC: setmaxnreg.dec.sync.aligned.u32 40
// VEC: scf.for
// VEC: mbarrier.try_wait.parity
// VEC-COUNT-5: cp.async.bulk.tensor.4d
// VEC: memref.store {{.*}} : memref<17408xf32, #gpu.address_space<workgroup>>
// VEC: "mbarrier.arrive.shared::cta.b64 _, [$0];"
// VEC: setmaxnreg.inc.sync.aligned.u32 248
// VEC: scf.for {{.*}} iter_args({{.*}}) -> ({{(f32, ){63}f32}})
// VEC: mbarrier.try_wait.parity
// VEC: llvm.nvvm.ex2.approx.ftz.f32
// VEC: vector.store {{.*}} vector<8xbf16>
// VEC: fence.proxy.async.shared::cta;
// VEC: "bar.sync $0, 128;"
// VEC: wgmma.fence.sync.aligned;
// VEC: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {{.*}}, p, 1, 1, 1;
// VEC-COUNT-7: wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16 {{.*}}, p, 1, 1, 0;
// VEC: wgmma.commit_group.sync.aligned;
// VEC: wgmma.wait_group.sync.aligned 0;
// VEC: scf.for {{.*}} -> (f32, f32, f32, f32)
// VEC: vector.reduction <add>
// VEC: wgmma.fence.sync.aligned;
// VEC-COUNT-4: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {{.*}}}, {$64, $65, $66, $67}, $68, p, 1, 1, 1;
// VEC: "bar.sync $0, 128;"
// VEC: vector.store {{.*}} vector<8xbf16>
// VEC: fence.proxy.async.shared::cta;
// VEC: "bar.sync $0, 128;"
// VEC-COUNT-8: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {{.*}}p, 1, 1, 1, 1;
// VEC: wgmma.wait_group.sync.aligned 0;
// VEC: "mbarrier.arrive.shared::cta.b64 _, [$0];"
// VEC: scf.yield
// VEC: gpu.return
// The other kernels do not change with the option.
// VEC-LABEL: gpu.func @linear_elu
// VEC-SAME: attn.tensor_cores = "mma.sync.chunkwise"

// chunked-linear-producer-diagonal: the producer warpgroup (setmaxnreg 168)
// computes the diagonal triangles: full[stage] counts its 128 threads, a
// loaded[stage] barrier (count 1) takes the TMA; after the gate scan a
// producer barrier, the wait on loaded, 4 warp-uniform quarters of the
// triangle (4-dim units, the dim quarters met by xor shuffles), lane quarter
// 0 stores diag[stage] (4096 bytes more shared memory), then every thread
// arrives on full. The consumer waits on loaded and full and reads its 4
// diagonal values back (2 x vector<2xf32>) instead of its f32 loop.
// PDIAG-LABEL: gpu.func @gated_vector
// PDIAG-SAME: attn.dynamic_shared_memory = 191536
// PDIAG: "mbarrier.init.shared::cta.b64 [$0], $1;", "r,r" %{{.*}}, %c128_i32
// PDIAG: "mbarrier.init.shared::cta.b64 [$0], $1;", "r,r" %{{.*}}, %c1_i32
// PDIAG: setmaxnreg.dec.sync.aligned.u32 168
// PDIAG: cp.async.bulk.tensor.4d
// PDIAG: "bar.sync $0, 128;"
// PDIAG: mbarrier.try_wait.parity
// PDIAG: vector.load {{.*}} : memref<8192xbf16, #gpu.address_space<workgroup>>, vector<4xbf16>
// PDIAG: gpu.shuffle  xor
// PDIAG: memref.store {{.*}} : memref<1024xf32, #gpu.address_space<workgroup>>
// PDIAG: "mbarrier.arrive.shared::cta.b64 _, [$0];"
// PDIAG: setmaxnreg.inc.sync.aligned.u32 248
// PDIAG: mbarrier.try_wait.parity
// PDIAG: mbarrier.try_wait.parity
// PDIAG: vector.load {{.*}} : memref<1024xf32, #gpu.address_space<workgroup>>, vector<2xf32>
// PDIAG-NOT: vector.reduction
// PDIAG: wgmma.fence.sync.aligned;
// PDIAG: gpu.return

// chunked-linear-two-consumers (Dk = Dv = 128): one block per (batch, head)
// (grid x 1) of 384 threads, the consumer warpgroups one value half each.
// Shared memory: 2 stages of Q, K and both V boxes, two S_bf16 tiles, G with
// rows of Dk + 4 floats, K~, an 8-row ratio table and the A exchange
// [2][12][128] words: 231456 bytes. empty[stage] counts one thread of each
// consumer warpgroup; the producer (setmaxnreg 32) loads 6 boxes a chunk
// (V's two halves); the consumers (240) meet on barrier 5 (256 threads)
// after K~ / D, at the exchange and after K's in-place scaling, and each
// chunk's k16 step issues 4 m64n8k16 sub-blocks (not 7).
// TWOC-LABEL: gpu.func @gated_vector
// TWOC-SAME: attn.block_threads = 384
// TWOC-SAME: attn.consumer_warpgroups = 2
// TWOC-SAME: attn.dynamic_shared_memory = 231456
// TWOC-SAME: attn.grid_x = 1
// TWOC-SAME: nvvm.maxntid = array<i32: 384, 1, 1>
// TWOC: "mbarrier.init.shared::cta.b64 [$0], $1;", "r,r" %{{.*}}, %c129_i32
// TWOC: "mbarrier.init.shared::cta.b64 [$0], $1;", "r,r" %{{.*}}, %c2_i32
// TWOC: setmaxnreg.dec.sync.aligned.u32 24
// TWOC-COUNT-6: cp.async.bulk.tensor.4d
// TWOC: setmaxnreg.inc.sync.aligned.u32 240
// TWOC: scf.for {{.*}} iter_args({{.*}}) -> ({{(f32, ){63}f32}})
// TWOC: "bar.sync $0, 256;", "r" %c5_i32
// TWOC: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16
// TWOC-COUNT-4: wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16
// TWOC-NOT: m64n8k16
// TWOC: wgmma.commit_group.sync.aligned;
// The diagonal blocks: two exponent slots and the diagonal slot per lane,
// 8-wide accumulators, 16 exp2 per 8-dim step, the partial sums stored to
// the exchange.
// TWOC: scf.for {{.*}} -> (vector<8xf32>, vector<8xf32>, vector<8xf32>)
// TWOC-COUNT-16: llvm.nvvm.ex2.approx.ftz.f32
// TWOC-NOT: llvm.nvvm.ex2.approx.ftz.f32
// TWOC: scf.yield
// TWOC-COUNT-3: memref.store {{.*}} : memref<3072xf32, #gpu.address_space<workgroup>>
// TWOC: memref.store {{.*}} : memref<3072xi32, #gpu.address_space<workgroup>>
// TWOC: "bar.sync $0, 256;", "r" %c5_i32
// TWOC-COUNT-16: memref.load {{.*}} : memref<3072xi32, #gpu.address_space<workgroup>>
// TWOC-COUNT-4: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {{.*}}}, {$64, $65, $66, $67}, $68, p, 1, 1, 1;
// TWOC: "bar.sync $0, 256;", "r" %c5_i32
// TWOC: "bar.sync $0, 128;"
// TWOC: gpu.return
// The other kernels (Dk = 64 or Dv = 64, other gates) do not change.
// TWOC-LABEL: gpu.func @linear_elu
// TWOC-SAME: attn.tensor_cores = "mma.sync.chunkwise"
