// The 'gated_vector' example variant, as attn-opt --spec examples/gated_vector.json prints it.
// Run it through the pipeline with: attn-opt examples/gated_vector.mlir --attn-tile
module {
  func.func @gated_vector(%arg0: memref<?x16x?x128xbf16>, %arg1: memref<?x16x?x128xbf16>, %arg2: memref<?x16x?x128xbf16>, %arg3: memref<?x16x?x128xf32>, %arg4: memref<?x16x?x128xbf16>, %arg5: memref<?x16x128x128xf32>) {
    attn.gated_linear_attention ins(%arg0, %arg1, %arg2, %arg3 : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xf32>) outs(%arg4 : memref<?x16x?x128xbf16>) final_state(%arg5 : memref<?x16x128x128xf32>) {gate = #attn.gate<vector>}
    return
  }
}

