// The 'custom' example variant, as attn-opt --spec examples/custom.json prints it.
// Run it through the pipeline with: attn-opt examples/custom.mlir --attn-tile
module {
  func.func @custom(%arg0: memref<?x16x?x128xbf16>, %arg1: memref<?x16x?x128xbf16>, %arg2: memref<?x16x?x128xbf16>, %arg3: memref<16x?xf32>, %arg4: memref<?x16x?x128xbf16>) {
    attn.attention ins(%arg0, %arg1, %arg2 : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>) captures(%arg3 : memref<16x?xf32>) outs(%arg4 : memref<?x16x?x128xbf16>) score_mod {
    ^bb0(%arg5: index, %arg6: index, %arg7: index, %arg8: index, %arg9: f32, %arg10: memref<16x?xf32>):
      %0 = memref.load %arg10[%arg6, %arg8] : memref<16x?xf32>
      %1 = arith.addf %arg9, %0 : f32
      attn.yield %1 : f32
    } mask_mod {
    ^bb0(%arg5: index, %arg6: index, %arg7: index, %arg8: index, %arg9: memref<16x?xf32>):
      %query_len, %key_len = attn.seq_lens : index, index
      %0 = arith.addi %arg7, %key_len : index
      %1 = arith.subi %0, %query_len : index
      %2 = arith.cmpi sle, %arg8, %1 : index
      %3 = arith.subi %arg7, %arg8 : index
      %c256 = arith.constant 256 : index
      %4 = arith.cmpi slt, %3, %c256 : index
      %5 = arith.andi %2, %4 : i1
      attn.yield %5 : i1
    }
    return
  }
}

