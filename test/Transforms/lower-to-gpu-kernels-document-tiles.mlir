// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 document-tiles=1" | FileCheck %s
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1" | FileCheck %s --check-prefix=OFF
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 document-tiles=1 persistent=1 document-item-order=1" | FileCheck %s --check-prefix=ORDER
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 document-tiles=1 persistent=1 document-item-order=1 document-item-order-entries=100" | FileCheck %s --check-prefix=ORDER100
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 document-tiles=1 persistent=1" | FileCheck %s --check-prefix=NOORDER
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 document-tiles=1 document-item-order=1" | FileCheck %s --check-prefix=NOORDER
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 document-tiles=1 persistent=1 document-item-order=1 document-item-order-phases=1" | FileCheck %s --check-prefix=PHASES1
// RUN: attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 document-tiles=1 persistent=1 document-item-order=1 document-item-order-phases=2" | FileCheck %s --check-prefix=PHASES2
// RUN: not attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 document-tiles=1 persistent=1 document-item-order=1 document-item-order-phases=3" 2>&1 | FileCheck %s --check-prefix=BADPHASES
// RUN: not attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 document-tiles=1 persistent=1 document-item-order=1 document-item-order-entries=0" 2>&1 | FileCheck %s --check-prefix=BADORDER
// RUN: not attn-opt %s --attn-plan-tiles="block-q=128 block-k=128" --attn-lower-to-gpu-kernels="tensor-cores=1 wgmma=1 document-tiles=1 persistent=1 document-tile-summary=1 document-tile-summary-entries=-5" 2>&1 | FileCheck %s --check-prefix=BADSUMMARY

// Document tiles classified at run time, by the producer only. Each of its
// four warps reduces the q tile's document ids to [lo, hi] (4 per lane, then
// xor shuffles), then the warpgroup walks the causal k tiles in key order, 16
// per round: each warp takes 4 (16 id loads per lane in flight, then per tile
// two warp votes: any id inside: live; every id the q tile's single id:
// full), posts its bits to shared memory, and after a named barrier over the
// 128 producer threads every warp reads all four. Thread 0 loads the live
// tiles and writes each one's word (kt << 2 | full << 1 | last) next to its
// stage; an item without live tiles gets -1. The producer keeps 40 registers
// for the loads in flight. The consumers follow the words (a while loop on
// the stage's word): no document reduction, no votes on document ids, no
// dead tiles.
// CHECK-LABEL: gpu.func @document
// CHECK: setmaxnreg.dec.sync.aligned.u32 40
// CHECK: memref.load %{{.*}} : memref<?x?xi32>
// CHECK: gpu.shuffle  xor
// CHECK: arith.minsi
// CHECK: arith.maxsi
// CHECK: scf.for {{.*}} step %c16
// CHECK-NOT: gpu.shuffle
// CHECK-COUNT-16: memref.load %{{.*}} : memref<?x?xi32>
// CHECK-COUNT-4: nvvm.vote.sync  all
// CHECK: st.shared.u32
// CHECK: st.shared.u32
// CHECK: bar.sync $0, 128;", "r" %c8_i32
// CHECK-COUNT-8: ld.shared.u32
// CHECK: scf.for
// CHECK: st.shared.u32
// CHECK: cp.async.bulk.tensor.4d
// CHECK: st.shared.u32 [$0], $1;", "r,r" %{{.*}}, %c-1_i32
// CHECK: setmaxnreg.inc.sync.aligned.u32 232
// CHECK-NOT: gpu.shuffle
// CHECK-NOT: nvvm.vote.sync  all
// CHECK: scf.while
// CHECK: mbarrier.try_wait.parity
// CHECK: ld.shared.u32
// CHECK: scf.condition
// CHECK-NOT: nvvm.vote.sync  all
// CHECK: wgmma.mma_async
// CHECK-NOT: nvvm.vote.sync  all
// CHECK: gpu.return

// The item order (persistent blocks, document-item-order): 16 header bytes and
// 4 bytes an entry (2048 by default) above the persistent kernel's 196776. The
// producer waits on the block-wide barrier before its first item. The
// consumers write the header (st.shared.v4) and the k tiles' first and last
// key ids (st.shared.v2), meet on their 256-thread barrier, count each q
// tile's k tiles, meet, rank, fence the async proxy (the scratch lies over the K / V
// stages) and release the producer. Their barriers are the non-aligned
// `barrier.sync`: each thread takes its own entries, and with `bar.sync`
// (aligned) a warp whose lanes reached two copies of a barrier hung on the
// H200. itemOf reads the header at each item: in the producer and the
// consumers (item start, epilogue).
// ORDER-LABEL: gpu.func @document
// ORDER-SAME: attn.dynamic_shared_memory = 204992 : i64
// ORDER: bar.sync $0, 384;
// ORDER: ld.shared.v4.u32
// ORDER: st.shared.v4.u32 [$0], {$1, $2, $3, $4};
// ORDER: st.shared.v2.u32 [$0], {$1, $2};
// ORDER: barrier.sync $0, 256;
// ORDER: ld.shared.v2.u32
// ORDER: barrier.sync $0, 256;
// ORDER: fence.proxy.async.shared::cta;
// ORDER: barrier.sync $0, 256;
// ORDER: bar.arrive $0, 384;
// ORDER: ld.shared.v4.u32
// ORDER: ld.shared.v4.u32
// ORDER: gpu.return
// ORDER100-LABEL: gpu.func @document
// ORDER100-SAME: attn.dynamic_shared_memory = 197200 : i64
// The header's phase-one ranks (its first word after the address): with one
// phase every q tile, the same value as its q-tile count (third word); with
// two, ceil(tiles / 2) where the order fits.
// PHASES1: "st.shared.v4.u32 [$0], {$1, $2, $3, $4};", "r,r,r,r,r" %{{[0-9]+}}, %[[TILES:[0-9]+]], %{{[0-9]+}}, %[[TILES]], %{{[0-9]+}}
// PHASES2: %[[HALF:[0-9]+]] = arith.divui %{{[0-9]+}}, %c2_i32 : i32
// PHASES2-NEXT: %[[LONG:[0-9]+]] = arith.select %{{[0-9]+}}, %[[HALF]], %[[TILES2:[0-9]+]] : i32
// PHASES2: "st.shared.v4.u32 [$0], {$1, $2, $3, $4};", "r,r,r,r,r" %{{[0-9]+}}, %[[LONG]], %{{[0-9]+}}, %[[TILES2]], %{{[0-9]+}}
// BADPHASES: error: attn-lower-to-gpu-kernels: document-item-order-phases=3 is not 1 or 2
// BADORDER: error: attn-lower-to-gpu-kernels: document-item-order-entries=0 is not a positive number of entries
// BADSUMMARY: error: attn-lower-to-gpu-kernels: document-tile-summary-entries=-5 is not a positive number of entries
// Without persistent blocks (one item a block) or the option: none of it.
// NOORDER-LABEL: gpu.func @document
// NOORDER-NOT: ld.shared.v4.u32
// NOORDER: gpu.return

// Off by default: no reduction of document ids.
// OFF-LABEL: gpu.func @document
// OFF-NOT: gpu.shuffle  xor {{.*}} : i32
// OFF: gpu.return
func.func @document(%q: memref<?x16x?x128xbf16>, %k: memref<?x16x?x128xbf16>,
                    %v: memref<?x16x?x128xbf16>, %qd: memref<?x?xi32>, %kd: memref<?x?xi32>,
                    %o: memref<?x16x?x128xbf16>) {
  attn.attention ins(%q, %k, %v : memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>, memref<?x16x?x128xbf16>)
      q_doc_ids(%qd : memref<?x?xi32>) kv_doc_ids(%kd : memref<?x?xi32>)
      outs(%o : memref<?x16x?x128xbf16>) {causal}
  return
}
