// The 'document' example variant, as attn-opt --spec examples/document.json prints it.
// Run it through the pipeline with: attn-opt examples/document.mlir --attn-tile
module {
  func.func @document(%arg0: memref<?x16x?x128xbf16>, %arg1: memref<?x16x?x128xbf16>, %arg2: memref<?x16x?x128xbf16>, %arg3: memref<?x?xi32>, %arg4: memref<?x?xi32>, %arg5: memref<?x16x?x128xbf16>) {
    attn.attention ins(%arg0, %arg1, %arg2 : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>) q_doc_ids(%arg3 : memref<?x?xi32>) kv_doc_ids(%arg4 : memref<?x?xi32>) outs(%arg5 : memref<?x16x?x128xbf16>) {causal}
    return
  }
}

