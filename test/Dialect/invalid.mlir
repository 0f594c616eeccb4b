// RUN: attn-opt %s -split-input-file -verify-diagnostics -allow-unregistered-dialect

// One case per verifier message of the attn ops.

func.func @case1(%q: memref<2x4x100xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{query must be a rank-4 memref [B, H, S, D], got 'memref<2x4x100xbf16>'}}
  attn.attention ins(%q, %k, %v : memref<2x4x100xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case2(%q: memref<2x4x100x64xi32>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{element type of query must be f16, bf16 or f32, got 'i32'}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xi32>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case3(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{element type of key ('f16') must equal the element type of query ('bf16')}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case4(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x?xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{head dimension of key must be static}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x?xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case5(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16, strided<[?, ?, ?, 2]>>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{head dimension of value must be contiguous (innermost stride 1)}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16, strided<[?, ?, ?, 2]>>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case6(%q: memref<2x4x100x64xbf16>, %k: memref<3x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{batch size of key (3) must equal batch size of query (2)}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<3x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case7(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x96xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{head dim of key (96) must equal head dim of query (64)}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x96xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case8(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x2x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{head count of value (2) must equal head count of key (4)}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x2x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case9(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x120x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{sequence length of value (120) must equal sequence length of key (130)}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x120x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case10(%q: memref<2x6x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x6x100x64xbf16>) {
  // expected-error @+1 {{query heads (6) must be a multiple of key/value heads (4)}}
  attn.attention ins(%q, %k, %v : memref<2x6x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x6x100x64xbf16>)
  return
}

// -----

func.func @case11(%q: memref<2x4x100x64xbf16>, %k: memref<2x0x130x64xbf16>, %v: memref<2x0x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{key must have at least one head, got 0}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x0x130x64xbf16>, memref<2x0x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case12(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x32xbf16>) {
  // expected-error @+1 {{out must be a 'bf16' memref [B, Hq, Sq, Dv] = [2, 4, 100, 64], got 'memref<2x4x100x32xbf16>'}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x32xbf16>)
  return
}

// -----

func.func @case13(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>, %l: memref<2x4x100xf16>) {
  // expected-error @+1 {{lse must be a 'f32' memref [B, Hq, Sq] = [2, 4, 100], got 'memref<2x4x100xf16>'}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>) lse(%l : memref<2x4x100xf16>)
  return
}

// -----

func.func @case14(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{scale must be a positive finite number, got -1}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>) {scale = -1.0 : f32}
  return
}

// -----

func.func @case15(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{softcap must be a positive finite number, got 0}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>) {softcap = 0.0 : f32}
  return
}

// -----

func.func @case16(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{window left bound must be non-negative, got -1}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>) {window = #attn.window<left = -1, right = 0>}
  return
}

// -----

func.func @case17(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{window right bound must be non-negative, got -2}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>) {window = #attn.window<left = 3, right = -2>}
  return
}

// -----

func.func @case18(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>, %bm: memref<?x?x2x3xi8>) {
  // expected-error @+1 {{block_mask operand requires the block_sparse attribute (its block sizes)}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>) block_mask(%bm : memref<?x?x2x3xi8>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case19(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{block_sparse attribute requires a block_mask operand}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>) {block_sparse = #attn.block_sparse<block_q = 64, block_k = 64>}
  return
}

// -----

func.func @case20(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>, %bm: memref<?x?x2x3xi8>) {
  // expected-error @+1 {{block_sparse block sizes must be positive, got block_q = 0, block_k = 64}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>) block_mask(%bm : memref<?x?x2x3xi8>)
      outs(%o : memref<2x4x100x64xbf16>) {block_sparse = #attn.block_sparse<block_q = 0, block_k = 64>}
  return
}

// -----

func.func @case21(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>, %bm: memref<?x?x2x3xi32>) {
  // expected-error @+1 {{block_mask must be an i8 memref of rank 4 [B or 1, Hq or 1, ceil(Sq / block_q), ceil(Sk / block_k)], got 'memref<?x?x2x3xi32>'}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>) block_mask(%bm : memref<?x?x2x3xi32>)
      outs(%o : memref<2x4x100x64xbf16>) {block_sparse = #attn.block_sparse<block_q = 64, block_k = 64>}
  return
}

// -----

func.func @case22(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>, %bm: memref<3x?x2x3xi8>) {
  // expected-error @+1 {{dimension 0 of block_mask (3) must be 1 or the batch size (2)}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>) block_mask(%bm : memref<3x?x2x3xi8>)
      outs(%o : memref<2x4x100x64xbf16>) {block_sparse = #attn.block_sparse<block_q = 64, block_k = 64>}
  return
}

// -----

func.func @case23(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>, %bm: memref<1x2x2x3xi8>) {
  // expected-error @+1 {{dimension 1 of block_mask (2) must be 1 or the query head count (4)}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>) block_mask(%bm : memref<1x2x2x3xi8>)
      outs(%o : memref<2x4x100x64xbf16>) {block_sparse = #attn.block_sparse<block_q = 64, block_k = 64>}
  return
}

// -----

func.func @case24(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>, %bm: memref<1x1x1x3xi8>) {
  // expected-error @+1 {{dimension 2 of block_mask (1) must be ceil(Sq / block_q) = ceil(100 / 64) = 2}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>) block_mask(%bm : memref<1x1x1x3xi8>)
      outs(%o : memref<2x4x100x64xbf16>) {block_sparse = #attn.block_sparse<block_q = 64, block_k = 64>}
  return
}

// -----

func.func @case25(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>, %bm: memref<1x1x2x2xi8>) {
  // expected-error @+1 {{dimension 3 of block_mask (2) must be ceil(Sk / block_k) = ceil(130 / 64) = 3}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>) block_mask(%bm : memref<1x1x2x2xi8>)
      outs(%o : memref<2x4x100x64xbf16>) {block_sparse = #attn.block_sparse<block_q = 64, block_k = 64>}
  return
}

// -----

func.func @case26(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>, %qd: memref<2x100xi32>) {
  // expected-error @+1 {{q_doc_ids and kv_doc_ids must be given together}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>) q_doc_ids(%qd : memref<2x100xi32>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case27(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>, %qd: memref<2x101xi32>, %kd: memref<2x130xi32>) {
  // expected-error @+1 {{q_doc_ids must be a 'i32' memref [B, Sq] = [2, 100], got 'memref<2x101xi32>'}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>) q_doc_ids(%qd : memref<2x101xi32>) kv_doc_ids(%kd : memref<2x130xi32>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case28(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>, %qd: memref<2x100xi32>, %kd: memref<2x130xi64>) {
  // expected-error @+1 {{kv_doc_ids must be a 'i32' memref [B, Sk] = [2, 130], got 'memref<2x130xi64>'}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>) q_doc_ids(%qd : memref<2x100xi32>) kv_doc_ids(%kd : memref<2x130xi64>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case29(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>, %s: memref<8xf32>) {
  // expected-error @+1 {{alibi_slopes must be a 'f32' memref [Hq] = [4], got 'memref<8xf32>'}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>) alibi_slopes(%s : memref<8xf32>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case30(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>, %s: memref<3x4xf32>) {
  // expected-error @+1 {{alibi_slopes must be a 'f32' memref [B, Hq] = [2, 4], got 'memref<3x4xf32>'}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>) alibi_slopes(%s : memref<3x4xf32>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case31(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>, %t: memref<4xf32>) {
  // expected-error @+1 {{captures are read only by score_mod or mask_mod regions, and this op has neither}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>) captures(%t : memref<4xf32>)
      outs(%o : memref<2x4x100x64xbf16>)
  return
}

// -----

func.func @case32(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{score_mod region must have exactly one block}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>)  score_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index, %s: f32):
        cf.br ^bb1
      ^bb1:
        attn.yield %s : f32
      }
  return
}

// -----

func.func @case33(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{score_mod region must take (b: index, h: index, q: index, k: index, score: f32): expected 5 arguments, got 4}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>)  score_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index):
        %c = arith.constant 0.0 : f32
        attn.yield %c : f32
      }
  return
}

// -----

func.func @case34(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>, %t: memref<4xf32>) {
  // expected-error @+1 {{argument #4 of the mask_mod region must be 'memref<4xf32>', got 'memref<8xf32>'; the region takes (b: index, h: index, q: index, k: index) followed by the 1 capture type(s)}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>) captures(%t : memref<4xf32>)
      outs(%o : memref<2x4x100x64xbf16>)  mask_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index, %tt: memref<8xf32>):
        %c = arith.constant true
        attn.yield %c : i1
      }
  return
}

// -----

func.func @case35(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{argument #3 of the mask_mod region must be 'index', got 'i64'}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>)  mask_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: i64):
        %c = arith.constant true
        attn.yield %c : i1
      }
  return
}

// -----

func.func @case36(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{mask_mod region must yield exactly one 'i1', got 1 value(s) of type(s) ('f32')}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>)  mask_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index):
        %c = arith.constant 1.0 : f32
        attn.yield %c : f32
      }
  return
}

// -----

func.func @case37(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{score_mod region must yield exactly one 'f32', got 2 value(s) of type(s) ('f32', 'f32')}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>)  score_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index, %s: f32):
        attn.yield %s, %s : f32, f32
      }
  return
}

// -----

func.func @case38(%q: memref<2x4x100x64xbf16>, %k: memref<2x4x130x64xbf16>, %v: memref<2x4x130x64xbf16>, %o: memref<2x4x100x64xbf16>) {
  // expected-error @+1 {{score_mod region must end with attn.yield}}
  attn.attention ins(%q, %k, %v : memref<2x4x100x64xbf16>, memref<2x4x130x64xbf16>, memref<2x4x130x64xbf16>)
      outs(%o : memref<2x4x100x64xbf16>)  score_mod {
      ^bb0(%b: index, %h: index, %i: index, %j: index, %s: f32):
        ub.unreachable
      }
  return
}

// -----

func.func @case39() {
  // expected-error @+1 {{expects parent op 'attn.attention'}}
  %a, %b = attn.seq_lens : index, index
  return
}

// -----

func.func @case40(%x: f32) -> f32 {
  // expected-error @+1 {{expects parent op 'attn.attention'}}
  attn.yield %x : f32
}

// -----

func.func @case41() {
  // expected-error @+2 {{expected ::attn::FeatureMap to be one of: identity, elu_plus_one, relu}}
  // expected-error @+1 {{failed to parse Attn_FeatureMapAttr parameter 'value' which is to be a `::attn::FeatureMap`}}
  "test.use"() {fm = #attn.feature_map<sigmoid>} : () -> ()
  return
}

// -----

func.func @case42(%q: memref<2x4x50x64xf32>, %k: memref<2x2x50x64xf32>, %v: memref<2x4x50x64xf32>, %o: memref<2x4x50x64xf32>) {
  // expected-error @+1 {{head count of key (2) must equal head count of query (4)}}
  attn.linear_attention ins(%q, %k, %v : memref<2x4x50x64xf32>, memref<2x2x50x64xf32>, memref<2x4x50x64xf32>)
      outs(%o : memref<2x4x50x64xf32>)
  return
}

// -----

func.func @case43(%q: memref<2x4x50x64xf32>, %k: memref<2x4x60x64xf32>, %v: memref<2x4x50x64xf32>, %o: memref<2x4x50x64xf32>) {
  // expected-error @+1 {{sequence length of key (60) must equal sequence length of query (50)}}
  attn.linear_attention ins(%q, %k, %v : memref<2x4x50x64xf32>, memref<2x4x60x64xf32>, memref<2x4x50x64xf32>)
      outs(%o : memref<2x4x50x64xf32>)
  return
}

// -----

func.func @case44(%q: memref<2x4x50x64xf32>, %k: memref<2x4x50x64xf32>, %v: memref<2x4x50x32xf32>, %o: memref<2x4x50x64xf32>) {
  // expected-error @+1 {{out must be a 'f32' memref [B, H, S, Dv] = [2, 4, 50, 32], got 'memref<2x4x50x64xf32>'}}
  attn.linear_attention ins(%q, %k, %v : memref<2x4x50x64xf32>, memref<2x4x50x64xf32>, memref<2x4x50x32xf32>)
      outs(%o : memref<2x4x50x64xf32>)
  return
}

// -----

func.func @case45(%q: memref<2x4x50x64xf32>, %k: memref<2x4x50x64xf32>, %v: memref<2x4x50x64xf32>, %o: memref<2x4x50x64xf32>, %h0: memref<2x4x64x64xf16>) {
  // expected-error @+1 {{initial_state must be a 'f32' memref [B, H, Dqk, Dv] = [2, 4, 64, 64], got 'memref<2x4x64x64xf16>'}}
  attn.linear_attention ins(%q, %k, %v : memref<2x4x50x64xf32>, memref<2x4x50x64xf32>, memref<2x4x50x64xf32>) initial_state(%h0 : memref<2x4x64x64xf16>)
      outs(%o : memref<2x4x50x64xf32>)
  return
}

// -----

func.func @case46(%q: memref<2x4x50x64xf32>, %k: memref<2x4x50x64xf32>, %v: memref<2x4x50x64xf32>, %o: memref<2x4x50x64xf32>, %ht: memref<2x4x32x64xf32>) {
  // expected-error @+1 {{final_state must be a 'f32' memref [B, H, Dqk, Dv] = [2, 4, 64, 64], got 'memref<2x4x32x64xf32>'}}
  attn.linear_attention ins(%q, %k, %v : memref<2x4x50x64xf32>, memref<2x4x50x64xf32>, memref<2x4x50x64xf32>)
      outs(%o : memref<2x4x50x64xf32>) final_state(%ht : memref<2x4x32x64xf32>)
  return
}

// -----

func.func @case47(%q: memref<2x4x50x64xf32>, %k: memref<2x4x50x64xf32>, %v: memref<2x4x50x64xf32>, %o: memref<2x4x50x64xf32>, %ht: memref<2x4x64x64xf32>) {
  // expected-error @+1 {{normalize cannot be combined with initial_state or final_state: the normalizer is not part of the carried state}}
  attn.linear_attention ins(%q, %k, %v : memref<2x4x50x64xf32>, memref<2x4x50x64xf32>, memref<2x4x50x64xf32>)
      outs(%o : memref<2x4x50x64xf32>) final_state(%ht : memref<2x4x64x64xf32>) {normalize}
  return
}

// -----

func.func @case48(%q: memref<2x4x50x64xf32>, %k: memref<2x4x50x64xf32>, %v: memref<2x4x50x64xf32>, %o: memref<2x4x50x64xf32>) {
  // expected-error @+1 {{scale must be a positive finite number, got INF}}
  attn.linear_attention ins(%q, %k, %v : memref<2x4x50x64xf32>, memref<2x4x50x64xf32>, memref<2x4x50x64xf32>)
      outs(%o : memref<2x4x50x64xf32>) {scale = 0x7F800000 : f32}
  return
}

// -----

func.func @case49(%q: memref<2x4x50x64xf32>, %k: memref<2x4x50x64xf32>, %v: memref<2x4x50x64xf32>, %g: memref<2x4x64xf32>, %o: memref<2x4x50x64xf32>) {
  // expected-error @+1 {{gates must be a 'f32' memref [B, H, S] (gate = scalar) = [2, 4, 50], got 'memref<2x4x64xf32>'}}
  attn.gated_linear_attention ins(%q, %k, %v, %g : memref<2x4x50x64xf32>, memref<2x4x50x64xf32>, memref<2x4x50x64xf32>, memref<2x4x64xf32>)
      outs(%o : memref<2x4x50x64xf32>) {gate = #attn.gate<scalar>}
  return
}

// -----

func.func @case50(%q: memref<2x4x50x64xf32>, %k: memref<2x4x50x64xf32>, %v: memref<2x4x50x64xf32>, %g: memref<2x4x50xf32>, %o: memref<2x4x50x64xf32>) {
  // expected-error @+1 {{gates must be a 'f32' memref [B, H, S, Dqk] (gate = vector) = [2, 4, 50, 64], got 'memref<2x4x50xf32>'}}
  attn.gated_linear_attention ins(%q, %k, %v, %g : memref<2x4x50x64xf32>, memref<2x4x50x64xf32>, memref<2x4x50x64xf32>, memref<2x4x50xf32>)
      outs(%o : memref<2x4x50x64xf32>) {gate = #attn.gate<vector>}
  return
}

// -----

func.func @case51(%q: memref<2x4x50x64xf32>, %k: memref<2x4x50x64xf32>, %v: memref<2x4x50x64xf32>, %g: memref<4xf16>, %o: memref<2x4x50x64xf32>) {
  // expected-error @+1 {{gates must be a 'f32' memref [H] (gate = head_constant) = [4], got 'memref<4xf16>'}}
  attn.gated_linear_attention ins(%q, %k, %v, %g : memref<2x4x50x64xf32>, memref<2x4x50x64xf32>, memref<2x4x50x64xf32>, memref<4xf16>)
      outs(%o : memref<2x4x50x64xf32>) {gate = #attn.gate<head_constant>}
  return
}

// -----

func.func @case52(%q: memref<2x4x50x64xf16>, %k: memref<2x4x50x64xf32>, %v: memref<2x4x50x64xf32>, %g: memref<2x4x50xf32>, %o: memref<2x4x50x64xf32>) {
  // expected-error @+1 {{element type of key ('f32') must equal the element type of query ('f16')}}
  attn.gated_linear_attention ins(%q, %k, %v, %g : memref<2x4x50x64xf16>, memref<2x4x50x64xf32>, memref<2x4x50x64xf32>, memref<2x4x50xf32>)
      outs(%o : memref<2x4x50x64xf32>) {gate = #attn.gate<scalar>}
  return
}

// -----

// Tiled-level ops.
func.func @online_scores(%s: memref<?x?xf16>, %v: memref<?x64xf32>, %m: memref<?xf32>, %l: memref<?xf32>, %a: memref<?x64xf32>) {
  // expected-error @+1 {{scores must be a rank-2 f32 memref, got 'memref<?x?xf16>'}}
  attn.online_softmax %s, %v, %m, %l, %a : memref<?x?xf16>, memref<?x64xf32>, memref<?xf32>, memref<?xf32>, memref<?x64xf32>
  return
}

// -----

func.func @online_value_rank(%s: memref<?x?xf32>, %v: memref<64xf32>, %m: memref<?xf32>, %l: memref<?xf32>, %a: memref<?x64xf32>) {
  // expected-error @+1 {{value must be a rank-2 memref [c, Dv], got 'memref<64xf32>'}}
  attn.online_softmax %s, %v, %m, %l, %a : memref<?x?xf32>, memref<64xf32>, memref<?xf32>, memref<?xf32>, memref<?x64xf32>
  return
}

// -----

func.func @online_value_rows(%s: memref<?x32xf32>, %v: memref<16x64xf32>, %m: memref<?xf32>, %l: memref<?xf32>, %a: memref<?x64xf32>) {
  // expected-error @+1 {{value rows (16) must equal score columns (32)}}
  attn.online_softmax %s, %v, %m, %l, %a : memref<?x32xf32>, memref<16x64xf32>, memref<?xf32>, memref<?xf32>, memref<?x64xf32>
  return
}

// -----

func.func @online_acc_cols(%s: memref<?x?xf32>, %v: memref<?x64xf32>, %m: memref<?xf32>, %l: memref<?xf32>, %a: memref<?x32xf32>) {
  // expected-error @+1 {{acc columns (32) must equal value columns (64)}}
  attn.online_softmax %s, %v, %m, %l, %a : memref<?x?xf32>, memref<?x64xf32>, memref<?xf32>, memref<?xf32>, memref<?x32xf32>
  return
}

// -----

func.func @finalize_out(%m: memref<?xf32>, %l: memref<?xf32>, %a: memref<?x64xf32>, %o: memref<?x64xi32>) {
  // expected-error @+1 {{out must be a rank-2 float memref [r, Dv], got 'memref<?x64xi32>'}}
  attn.softmax_finalize %m, %l, %a, %o : memref<?xf32>, memref<?xf32>, memref<?x64xf32>, memref<?x64xi32>
  return
}

// -----

func.func @finalize_cols(%m: memref<?xf32>, %l: memref<?xf32>, %a: memref<?x64xf32>, %o: memref<?x32xbf16>) {
  // expected-error @+1 {{out columns (32) must equal acc columns (64)}}
  attn.softmax_finalize %m, %l, %a, %o : memref<?xf32>, memref<?xf32>, memref<?x64xf32>, memref<?x32xbf16>
  return
}

// -----

func.func @finalize_lse(%m: memref<?xf32>, %l: memref<?xf32>, %a: memref<?x64xf32>, %o: memref<?x64xbf16>, %lse: memref<?x2xf32>) {
  // expected-error @+1 {{lse must be a rank-1 f32 memref, got 'memref<?x2xf32>'}}
  attn.softmax_finalize %m, %l, %a, %o lse(%lse) : memref<?xf32>, memref<?xf32>, memref<?x64xf32>, memref<?x64xbf16>, memref<?x2xf32>
  return
}
