// RUN: attn-opt %s --split-input-file --attn-plan-tiles="block-q=64 block-k=32" --attn-lower-to-gpu-kernels="tensor-cores=1" | FileCheck %s
// RUN: attn-opt %s --split-input-file --attn-plan-tiles="block-q=64 block-k=32" --attn-lower-to-gpu-kernels="tensor-cores=1" | FileCheck %s --check-prefix=FORM

// ALiBi in the tensor-core softmax (FragmentSoftmax, shared by the mma.sync
// and wgmma kernels). Where every visible key lies on or below the diagonal
// (causal; a window, or a mask_mod bound, with right <= 0), the bias
// -slope * (i + Sk - Sq - j) drops its per-row part: per tile one conversion
// and one multiply, one FFMA per column (shared by the lane's two rows), and
// per element one FFMA s * scale * log2(e) + column bias: no |.|, no
// per-element subtraction. Row 1's lse (8 rows below the lane's base row)
// takes the dropped slope * log2(e) * 8 back out. Otherwise (keys above the
// diagonal, soft-cap, an unaligned bound) the distance form stays.

// CHECK-LABEL: gpu.func @alibi_causal(
// The slope once per block, in base 2.
// CHECK: %[[SLOPE:.*]] = memref.load %arg3[%block_id_y] : memref<4xf32>
// CHECK: %[[SLOPE2:.*]] = arith.mulf %[[SLOPE]], %{{.*}} : f32
// CHECK: scf.for {{.*}} iter_args
// The lane's first key of the tile relative to its first row's diagonal.
// CHECK: %[[REL:.*]] = arith.sitofp %{{.*}} : i64 to f32
// CHECK: %[[TILE:.*]] = arith.mulf %[[SLOPE2]], %[[REL]] : f32
// Key offset 0 uses the tile's bias; the next column gets one FFMA, shared by
// rows g and g + 8 (16 elements, 7 more columns: 23 FFMAs per 32-key tile).
// CHECK: math.fma %{{.*}}, %{{.*}}, %[[TILE]] : f32
// CHECK: %[[COL1:.*]] = math.fma %[[SLOPE2]], %{{.*}}, %[[TILE]] : f32
// CHECK: math.fma %{{.*}}, %{{.*}}, %[[COL1]] : f32
// CHECK: math.fma %{{.*}}, %{{.*}}, %[[TILE]] : f32
// CHECK: math.fma %{{.*}}, %{{.*}}, %[[COL1]] : f32
// CHECK-COUNT-18: math.fma
// CHECK-NOT: math.fma
// Row 0's lse as is; row 1's less slope * log2(e) * (row 1 - row 0).
// CHECK: llvm.call_intrinsic "llvm.nvvm.lg2.approx.ftz.f"
// CHECK: %[[ROWS:.*]] = arith.sitofp %{{.*}} : i64 to f32
// CHECK: %[[SHIFT:.*]] = arith.mulf %[[SLOPE2]], %[[ROWS]] : f32
// CHECK: arith.subf %{{.*}}#1, %[[SHIFT]] : f32
// CHECK: llvm.call_intrinsic "llvm.nvvm.lg2.approx.ftz.f"
// FORM-LABEL: gpu.func @alibi_causal(
// FORM-NOT: math.absf
// FORM-NOT: arith.subf
// FORM: llvm.call_intrinsic "llvm.nvvm.lg2.approx.ftz.f"
// FORM: arith.subf
// FORM-NOT: math.absf
// FORM: gpu.return
func.func @alibi_causal(%q: memref<?x4x?x64xbf16>, %k: memref<?x4x?x64xbf16>,
                        %v: memref<?x4x?x64xbf16>, %slopes: memref<4xf32>,
                        %o: memref<?x4x?x64xbf16>, %lse: memref<?x4x?xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>)
      alibi_slopes(%slopes : memref<4xf32>)
      outs(%o : memref<?x4x?x64xbf16>) lse(%lse : memref<?x4x?xf32>) {causal}
  return
}

// -----

// A window with right = 0 (what causal + window normalize to); per batch and
// head slopes.
// CHECK-LABEL: gpu.func @alibi_band(
// FORM-LABEL: gpu.func @alibi_band(
// FORM: memref.load %arg3[%block_id_z, %block_id_y] : memref<?x4xf32>
// FORM-NOT: math.absf
// FORM-COUNT-23: math.fma
// FORM-NOT: math.absf
// FORM: gpu.return
func.func @alibi_band(%q: memref<?x4x?x64xbf16>, %k: memref<?x4x?x64xbf16>,
                      %v: memref<?x4x?x64xbf16>, %slopes: memref<?x4xf32>,
                      %o: memref<?x4x?x64xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>)
      alibi_slopes(%slopes : memref<?x4xf32>)
      outs(%o : memref<?x4x?x64xbf16>) {window = #attn.window<left = 100, right = 0>}
  return
}

// -----

// A mask_mod region with the bound j <= i + Sk - Sq - 1 among conjuncts the
// analysis does not recognize: the bound still holds on every visible key.
// FORM-LABEL: gpu.func @alibi_region(
// FORM-NOT: math.absf
// FORM-COUNT-23: math.fma
// FORM-NOT: math.absf
// FORM: gpu.return
func.func @alibi_region(%q: memref<?x4x?x64xbf16>, %k: memref<?x4x?x64xbf16>,
                        %v: memref<?x4x?x64xbf16>, %slopes: memref<4xf32>,
                        %o: memref<?x4x?x64xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>)
      alibi_slopes(%slopes : memref<4xf32>)
      outs(%o : memref<?x4x?x64xbf16>)
      mask_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index):
        %sq, %sk = attn.seq_lens : index, index
        %d = arith.subi %sk, %sq : index
        %diag = arith.addi %i, %d : index
        %0 = arith.cmpi slt, %j, %diag : index
        %s = arith.addi %i, %j : index
        %c7 = arith.constant 7 : index
        %m = arith.remui %s, %c7 : index
        %c3 = arith.constant 3 : index
        %1 = arith.cmpi ne, %m, %c3 : index
        %2 = arith.andi %0, %1 : i1
        attn.yield %2 : i1
      }
  return
}

// -----

// No mask: keys on both sides of the diagonal, |distance| per element.
// FORM-LABEL: gpu.func @alibi_full(
// FORM-NOT: math.fma
// FORM-COUNT-16: math.absf
// FORM-NOT: math.fma
// FORM: gpu.return
func.func @alibi_full(%q: memref<?x4x?x64xbf16>, %k: memref<?x4x?x64xbf16>,
                      %v: memref<?x4x?x64xbf16>, %slopes: memref<4xf32>,
                      %o: memref<?x4x?x64xbf16>, %lse: memref<?x4x?xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>)
      alibi_slopes(%slopes : memref<4xf32>)
      outs(%o : memref<?x4x?x64xbf16>) lse(%lse : memref<?x4x?xf32>)
  return
}

// -----

// A window reaching 3 keys past the diagonal.
// FORM-LABEL: gpu.func @alibi_window_right(
// FORM-COUNT-16: math.absf
// FORM: gpu.return
func.func @alibi_window_right(%q: memref<?x4x?x64xbf16>, %k: memref<?x4x?x64xbf16>,
                              %v: memref<?x4x?x64xbf16>, %slopes: memref<4xf32>,
                              %o: memref<?x4x?x64xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>)
      alibi_slopes(%slopes : memref<4xf32>)
      outs(%o : memref<?x4x?x64xbf16>) {window = #attn.window<left = 100, right = 3>}
  return
}

// -----

// An unaligned bound j <= i: below the aligned diagonal only when Sk >= Sq.
// FORM-LABEL: gpu.func @alibi_unaligned(
// FORM-COUNT-16: math.absf
// FORM: gpu.return
func.func @alibi_unaligned(%q: memref<?x4x?x64xbf16>, %k: memref<?x4x?x64xbf16>,
                           %v: memref<?x4x?x64xbf16>, %slopes: memref<4xf32>,
                           %o: memref<?x4x?x64xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>)
      alibi_slopes(%slopes : memref<4xf32>)
      outs(%o : memref<?x4x?x64xbf16>)
      mask_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index):
        %0 = arith.cmpi sle, %j, %i : index
        attn.yield %0 : i1
      }
  return
}

// -----

// Soft-cap is not linear: the row's part does not split off after it.
// FORM-LABEL: gpu.func @alibi_causal_softcap(
// FORM: math.tanh
// FORM: math.absf
// FORM: gpu.return
func.func @alibi_causal_softcap(%q: memref<?x4x?x64xbf16>, %k: memref<?x4x?x64xbf16>,
                                %v: memref<?x4x?x64xbf16>, %slopes: memref<4xf32>,
                                %o: memref<?x4x?x64xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>, memref<?x4x?x64xbf16>)
      alibi_slopes(%slopes : memref<4xf32>)
      outs(%o : memref<?x4x?x64xbf16>) {causal, softcap = 30.0 : f32}
  return
}
