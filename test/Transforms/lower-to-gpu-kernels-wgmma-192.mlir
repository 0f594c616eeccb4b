// RUN: attn-opt %s --attn-plan-tiles="block-q=192 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 ping-pong=1" | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles="block-q=192 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 ping-pong=1 persistent=1" | FileCheck %s --check-prefix=PERS
// RUN: attn-opt %s --attn-plan-tiles="block-q=192 block-k=64" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 ping-pong=1 persistent=1" | FileCheck %s --check-prefix=PERS64

// 192-row Hopper tiles at head dim 64: three consumer warpgroups (512
// threads), a 192-row Q box for TMA, consumers raised to 160 registers
// (128 * 24 + 384 * 160 = 64512). Ping-pong over three groups: the last
// group (2) lets group 0 start on barrier 1; group i waits on barrier i + 1
// and hands over to barrier (i + 1) % 3 + 1; every turn barrier counts 256
// threads (one waiting group, one arriving group).
// CHECK-LABEL: gpu.func @dense_d64
// CHECK-SAME: attn.block_threads = 512 : i64
// CHECK-SAME: box_rows = 192
// CHECK: setmaxnreg.dec.sync.aligned.u32 24
// CHECK: setmaxnreg.inc.sync.aligned.u32 160
// CHECK: %[[NEXT:.*]] = arith.remui %{{.*}}, %c3_i32
// CHECK: arith.addi %[[NEXT]], %c1_i32
// CHECK: %[[LAST:.*]] = arith.cmpi eq, %{{.*}}, %c2
// CHECK: scf.if %[[LAST]]
// CHECK: "bar.arrive $0, 256;"
// CHECK: scf.for
// CHECK: "bar.sync $0, 256;"
// CHECK: wgmma.mma_async
// CHECK: "bar.arrive $0, 256;"
// CHECK: gpu.return

// The persistent producer walks the items with 32 registers; the consumers
// get 160 as without it (128 * 32 + 384 * 160 = 65536, the pool of 512
// threads at the entry cap of 128).
// PERS-LABEL: gpu.func @dense_d64
// PERS-SAME: attn.block_threads = 512 : i64
// PERS: setmaxnreg.dec.sync.aligned.u32 32
// PERS: setmaxnreg.inc.sync.aligned.u32 160
// With 64-key tiles the consumers fit 152 and the producer's walk keeps 40
// (128 * 40 + 384 * 152 = 63488; at 32 the causal walk spills).
// PERS64-LABEL: gpu.func @dense_d64
// PERS64: setmaxnreg.dec.sync.aligned.u32 40
// PERS64: setmaxnreg.inc.sync.aligned.u32 152
func.func @dense_d64(%q: memref<?x4x?x64xbf16>, %k: memref<?x4x?x64xbf16>,
                     %v: memref<?x4x?x64xbf16>, %o: memref<?x4x?x64xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>)
      outs(%o : memref<?x4x?x64xbf16>)
  return
}

// Head dim 128 does not fit three consumer warpgroups' registers: no wgmma
// kernel for 192 rows (the mma.sync kernel takes the op instead).
// CHECK-LABEL: gpu.func @dense_d128
// CHECK-NOT: wgmma.mma_async
// CHECK: gpu.return
func.func @dense_d128(%q: memref<?x4x?x128xbf16>, %k: memref<?x4x?x128xbf16>,
                      %v: memref<?x4x?x128xbf16>, %o: memref<?x4x?x128xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>, memref<?x4x?x128xbf16>)
      outs(%o : memref<?x4x?x128xbf16>)
  return
}
