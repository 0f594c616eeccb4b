// RUN: attn-opt %s -split-input-file --attn-lower-to-gpu-kernels -verify-diagnostics

// The GPU lowering needs the plan (tile sizes and k-tile ranges).
func.func @no_plan(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                   %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  // expected-error @+1 {{has no tile_plan; run attn-plan-tiles first}}
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>)
  return
}

// -----

// Head dims past the GPU kernels' 512 (the SIMT kernels unroll a row's columns;
// 2^31 of them never finished building).
func.func @too_wide(%q: memref<?x2x?x64xf32>, %k: memref<?x2x?x64xf32>, %v: memref<?x2x?x1024xf32>, %o: memref<?x2x?x1024xf32>) {
  // expected-error @+1 {{has a value head dim of 1024; the GPU kernels take static head dims up to 512}}
  attn.attention ins(%q, %k, %v : memref<?x2x?x64xf32>, memref<?x2x?x64xf32>, memref<?x2x?x1024xf32>) outs(%o : memref<?x2x?x1024xf32>) {tile_plan = #attn.tile_plan<block_q = 64, block_k = 32, kv_begin = affine_map<(d0)[s0, s1] -> (0)>, full_begin = affine_map<(d0)[s0, s1] -> (0)>, full_end = affine_map<(d0)[s0, s1] -> (s1 floordiv 32)>, kv_end = affine_map<(d0)[s0, s1] -> ((s1 + 31) floordiv 32)>, data_masks = [], element_mask_everywhere = false>}
  return
}
