// RUN: attn-opt %s -split-input-file -verify-diagnostics

// #attn.tile_plan's verifier: hand-written plans are held to what
// attn-plan-tiles builds (fuzzing lowered block_q = 0 and unknown data masks
// silently before it existed).

func.func @zero_block(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>, %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  // expected-error @+1 {{tile_plan block_q must be between 1 and 4096, got 0}}
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>) outs(%o : memref<?x4x?x64xf32>) {tile_plan = #attn.tile_plan<block_q = 0, block_k = 32, kv_begin = affine_map<(d0)[s0, s1] -> (0)>, full_begin = affine_map<(d0)[s0, s1] -> (0)>, full_end = affine_map<(d0)[s0, s1] -> (s1 floordiv 32)>, kv_end = affine_map<(d0)[s0, s1] -> ((s1 + 31) floordiv 32)>, data_masks = [], element_mask_everywhere = false>}
  return
}

// -----

func.func @huge_block(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>, %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  // expected-error @+1 {{tile_plan block_k must be between 1 and 4096, got 8192}}
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>) outs(%o : memref<?x4x?x64xf32>) {tile_plan = #attn.tile_plan<block_q = 64, block_k = 8192, kv_begin = affine_map<(d0)[s0, s1] -> (0)>, full_begin = affine_map<(d0)[s0, s1] -> (0)>, full_end = affine_map<(d0)[s0, s1] -> (0)>, kv_end = affine_map<(d0)[s0, s1] -> (1)>, data_masks = [], element_mask_everywhere = false>}
  return
}

// -----

func.func @map_shape(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>, %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  // expected-error @+1 {{tile_plan kv_end must be a map (t)[Sq, Sk] with at least one result, got affine_map<(d0, d1) -> (d0)>}}
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>) outs(%o : memref<?x4x?x64xf32>) {tile_plan = #attn.tile_plan<block_q = 64, block_k = 32, kv_begin = affine_map<(d0)[s0, s1] -> (0)>, full_begin = affine_map<(d0)[s0, s1] -> (0)>, full_end = affine_map<(d0)[s0, s1] -> (0)>, kv_end = affine_map<(d0, d1) -> (d0)>, data_masks = [], element_mask_everywhere = false>}
  return
}

// -----

func.func @no_results(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>, %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  // expected-error @+1 {{tile_plan kv_begin must be a map (t)[Sq, Sk] with at least one result}}
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>) outs(%o : memref<?x4x?x64xf32>) {tile_plan = #attn.tile_plan<block_q = 64, block_k = 32, kv_begin = affine_map<(d0)[s0, s1] -> ()>, full_begin = affine_map<(d0)[s0, s1] -> (0)>, full_end = affine_map<(d0)[s0, s1] -> (0)>, kv_end = affine_map<(d0)[s0, s1] -> (1)>, data_masks = [], element_mask_everywhere = false>}
  return
}

// -----

func.func @unknown_data_mask(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>, %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  // expected-error @+1 {{tile_plan data_masks holds "block_sparse" and "documents" only, got "stripes"}}
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>) outs(%o : memref<?x4x?x64xf32>) {tile_plan = #attn.tile_plan<block_q = 64, block_k = 32, kv_begin = affine_map<(d0)[s0, s1] -> (0)>, full_begin = affine_map<(d0)[s0, s1] -> (0)>, full_end = affine_map<(d0)[s0, s1] -> (0)>, kv_end = affine_map<(d0)[s0, s1] -> (1)>, data_masks = ["stripes"], element_mask_everywhere = false>}
  return
}
