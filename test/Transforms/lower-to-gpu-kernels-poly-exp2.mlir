// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 poly-exp2=4" | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1" | FileCheck %s --check-prefix=OFF
// RUN: not attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 poly-exp2=9" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 kv-stages=1" 2>&1 | FileCheck %s --check-prefix=BADSTAGES

// poly-exp2=4: half of each thread's softmax weights (4 in every 8) come from
// the FMA-pipe polynomial: round by adding 1.5 * 2^23, three FMAs on the
// fraction, the rounded integer shifted into the exponent bits, 0 below -125.
// CHECK-LABEL: gpu.func @dense
// CHECK: arith.constant 0x4B400000 : f32
// CHECK: math.fma
// CHECK: math.fma
// CHECK: math.fma
// CHECK: arith.shli %{{.*}}, %c23_i32
// CHECK: arith.cmpf ult, %{{.*}}, %cst
// CHECK: llvm.nvvm.ex2.approx.ftz.f32

// Off by default: every weight on MUFU.EX2.
// OFF-LABEL: gpu.func @dense
// OFF-NOT: 0x4B400000
// OFF: gpu.return

// BAD: error: attn-lower-to-gpu-kernels: poly-exp2=9 is not in 0..8 (elements in every 8)
// BADSTAGES: error: attn-lower-to-gpu-kernels: kv-stages=1 is not in 2..4
func.func @dense(%q: memref<?x16x?x128xbf16>, %k: memref<?x16x?x128xbf16>,
                 %v: memref<?x16x?x128xbf16>, %o: memref<?x16x?x128xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>)
      outs(%o : memref<?x16x?x128xbf16>)
  return
}
