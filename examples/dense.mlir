// The 'dense' example variant, as attn-opt --spec examples/dense.json prints it.
// Run it through the pipeline with: attn-opt examples/dense.mlir --attn-tile
module {
  func.func @dense(%arg0: memref<?x16x?x128xbf16>, %arg1: memref<?x16x?x128xbf16>, %arg2: memref<?x16x?x128xbf16>, %arg3: memref<?x16x?x128xbf16>, %arg4: memref<?x16x?xf32>) {
    attn.attention ins(%arg0, %arg1, %arg2 : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>) outs(%arg3 : memref<?x16x?x128xbf16>) lse(%arg4 : memref<?x16x?xf32>)
    return
  }
}

