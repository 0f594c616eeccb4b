// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 fast-tanh=1" | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1" | FileCheck %s --check-prefix=OFF
// RUN: attn-opt %s --attn-plan-tiles="block-q=64 block-k=64" --attn-lower-to-gpu-kernels="tensor-cores=1 fast-tanh=1" | FileCheck %s --check-prefix=MMA

// fast-tanh=1: soft-cap's tanh (and score_mod's) is one tanh.approx.f32 per
// score, a pure inline asm, instead of math.tanh (libdevice's tanhf); the
// scaling by 1/cap before and by cap after stays.
// CHECK-LABEL: gpu.func @softcap
// CHECK-NOT: math.tanh
// CHECK: arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK: llvm.inline_asm asm_dialect = att "tanh.approx.f32 $0, $1;", "=f,f" %{{.*}} : (f32) -> f32
// CHECK-NOT: math.tanh
// CHECK: gpu.return

// Off by default in the pass (attn-compile turns it on): math.tanh stays.
// OFF-LABEL: gpu.func @softcap
// OFF: math.tanh
// OFF-NOT: tanh.approx.f32
// OFF: gpu.return

// The mma.sync kernel (sm_80 and up) takes it too.
// MMA-LABEL: gpu.func @softcap
// MMA-NOT: math.tanh
// MMA: "tanh.approx.f32 $0, $1;"
// MMA-NOT: math.tanh
// MMA: gpu.return
func.func @softcap(%q: memref<?x16x?x128xbf16>, %k: memref<?x16x?x128xbf16>,
                   %v: memref<?x16x?x128xbf16>, %o: memref<?x16x?x128xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>)
      outs(%o : memref<?x16x?x128xbf16>) {softcap = 50.0 : f32}
  return
}
