// RUN: attn-opt %s --attn-normalize-masks --split-input-file | FileCheck %s

// causal + window<L, R> is one band: window<L, 0>.
// CHECK-LABEL: func @causal_window
// CHECK: attn.attention
// CHECK-SAME: {window = #attn.window<left = 127, right = 0>}
func.func @causal_window(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                         %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>) {causal, window = #attn.window<left = 127, right = 5>}
  return
}

// -----

// A region that is exactly the bottom-right causal predicate becomes causal;
// the captures only it read are dropped.
// CHECK-LABEL: func @region_causal
// CHECK: attn.attention ins({{.*}}) outs({{.*}}) {causal}
// CHECK-NOT: captures
// CHECK-NOT: mask_mod
func.func @region_causal(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                         %v: memref<?x4x?x64xf32>, %t: memref<4xf32>, %o: memref<?x4x?x64xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      captures(%t : memref<4xf32>) outs(%o : memref<?x4x?x64xf32>)
      mask_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index, %tt: memref<4xf32>):
        %sq, %sk = attn.seq_lens : index, index
        %0 = arith.addi %i, %sk : index
        %1 = arith.subi %0, %sq : index
        %2 = arith.cmpi sle, %j, %1 : index
        attn.yield %2 : i1
      }
  return
}

// -----

// Written the other way round (q + Sk - Sq >= k) and with a lower bound: a window.
// CHECK-LABEL: func @region_window
// CHECK: {window = #attn.window<left = 15, right = 0>}
// CHECK-NOT: mask_mod
func.func @region_window(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                         %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>)
      mask_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index):
        %sq, %sk = attn.seq_lens : index, index
        %d = arith.subi %sk, %sq : index
        %diag = arith.addi %i, %d : index
        %c16 = arith.constant 16 : index
        %lo = arith.subi %diag, %c16 : index
        %0 = arith.cmpi sge, %diag, %j : index
        %1 = arith.cmpi sgt, %j, %lo : index
        %2 = arith.andi %0, %1 : i1
        attn.yield %2 : i1
      }
  return
}

// -----

// A bound relative to q alone (not bottom-right aligned) is not a window
// unless Sq == Sk: the region stays.
// CHECK-LABEL: func @region_unaligned
// CHECK: mask_mod
func.func @region_unaligned(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                            %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>)
      mask_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index):
        %0 = arith.cmpi sle, %j, %i : index
        attn.yield %0 : i1
      }
  return
}

// -----

// A region that reads the batch index is data: it stays.
// CHECK-LABEL: func @region_opaque
// CHECK: {causal}
// CHECK: mask_mod
func.func @region_opaque(%q: memref<?x4x?x64xf32>, %k: memref<?x4x?x64xf32>,
                         %v: memref<?x4x?x64xf32>, %o: memref<?x4x?x64xf32>) {
  attn.attention ins(%q, %k, %v : memref<?x4x?x64xf32>, memref<?x4x?x64xf32>, memref<?x4x?x64xf32>)
      outs(%o : memref<?x4x?x64xf32>) {causal}
      mask_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index):
        %0 = arith.cmpi sle, %j, %b : index
        attn.yield %0 : i1
      }
  return
}
