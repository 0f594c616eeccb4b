// The 'block_sparse' example variant, as attn-opt --spec examples/block_sparse.json prints it.
// Run it through the pipeline with: attn-opt examples/block_sparse.mlir --attn-tile
module {
  func.func @block_sparse(%arg0: memref<?x16x?x128xbf16>, %arg1: memref<?x16x?x128xbf16>, %arg2: memref<?x16x?x128xbf16>, %arg3: memref<?x?x?x?xi8>, %arg4: memref<?x16x?x128xbf16>) {
    attn.attention ins(%arg0, %arg1, %arg2 : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>) block_mask(%arg3 : memref<?x?x?x?xi8>) outs(%arg4 : memref<?x16x?x128xbf16>) {block_sparse = #attn.block_sparse<block_q = 128, block_k = 128>}
    return
  }
}

