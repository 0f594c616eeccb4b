// RUN: attn-opt %s --attn-plan-tiles="block-q=64 block-k=32" --split-input-file --mlir-print-local-scope | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles --split-input-file --mlir-print-local-scope | FileCheck %s --check-prefix=DEFAULT

// Dense: every k tile is visited; only the sequence end is partial.
// CHECK-LABEL: func @dense
// CHECK: tile_plan = #attn.tile_plan<block_q = 64, block_k = 32,
// CHECK-SAME: kv_begin = affine_map<(d0)[s0, s1] -> (0)>
// CHECK-SAME: full_begin = affine_map<(d0)[s0, s1] -> (0)>
// CHECK-SAME: full_end = affine_map<(d0)[s0, s1] -> (s1 floordiv 32)>
// CHECK-SAME: kv_end = affine_map<(d0)[s0, s1] -> (s1 ceildiv 32)>
// CHECK-SAME: data_masks = [], element_mask_everywhere = false>
// DEFAULT-LABEL: func @dense
// DEFAULT: block_q = 64, block_k = 64
func.func @dense(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                 %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>)
  return
}

// -----

// Causal: k tiles beyond the diagonal are empty, tiles wholly below it full.
// CHECK-LABEL: func @causal
// CHECK: attn.attention
// CHECK-SAME: full_end = affine_map<(d0)[s0, s1] -> (s1 floordiv 32, (d0 * 64 + s1 - s0 + 1) floordiv 32)>
// CHECK-SAME: kv_end = affine_map<(d0)[s0, s1] -> (s1 ceildiv 32, (d0 * 64 + s1 - s0 + 63) floordiv 32 + 1)>
func.func @causal(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                  %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>) {causal}
  return
}

// -----

// Window: tiles before the band are never visited either.
// CHECK-LABEL: func @window
// CHECK: attn.attention
// CHECK-SAME: kv_begin = affine_map<(d0)[s0, s1] -> (0, d0 * 2 + (s1 - s0 - 100) floordiv 32)>
// CHECK-SAME: full_begin = affine_map<(d0)[s0, s1] -> (0, (d0 * 64 + s1 - s0 - 100 + 63) ceildiv 32)>
func.func @window(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                  %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>) {window = #attn.window<left = 100, right = 0>}
  return
}

// -----

// Block layout and document ids are data: classified again at run time.
// CHECK-LABEL: func @data
// CHECK: attn.attention
// CHECK-SAME: data_masks = ["block_sparse", "documents"]
func.func @data(%q: memref<2x4x100x64xf32>, %k: memref<2x4x100x64xf32>,
                %v: memref<2x4x100x64xf32>, %bm: memref<1x1x2x2xi8>,
                %qd: memref<2x100xi32>, %kd: memref<2x100xi32>, %o: memref<2x4x100x64xf32>) {
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xf32>, memref<2x4x100x64xf32>, memref<2x4x100x64xf32>)
      block_mask(%bm : memref<1x1x2x2xi8>) q_doc_ids(%qd : memref<2x100xi32>)
      kv_doc_ids(%kd : memref<2x100xi32>) outs(%o : memref<2x4x100x64xf32>)
      {block_sparse = #attn.block_sparse<block_q = 64, block_k = 64>}
  return
}

// -----

// A custom mask that cannot be summarized is applied on every tile; its
// recognizable conjunct (k <= q) still bounds the visited range.
// CHECK-LABEL: func @custom
// CHECK: attn.attention
// CHECK-SAME: full_end = affine_map<(d0)[s0, s1] -> (s1 floordiv 32, d0 * 2)>
// CHECK-SAME: kv_end = affine_map<(d0)[s0, s1] -> (s1 ceildiv 32, d0 * 2 + 2)>
// CHECK-SAME: element_mask_everywhere = true
func.func @custom(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                  %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>)
      mask_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index):
        %0 = arith.cmpi sle, %j, %i : index
        %1 = arith.cmpi ne, %j, %b : index
        %2 = arith.andi %0, %1 : i1
        attn.yield %2 : i1
      }
  return
}

// -----

// Without pass options the tile sizes come from the spec's options.
// DEFAULT-LABEL: func @from_options
// DEFAULT: block_q = 128, block_k = 16
func.func @from_options(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                        %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>)
    attributes {attn.options = {block_q = 128 : i64, block_k = 16 : i64}} {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>)
  return
}
