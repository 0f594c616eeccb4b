#!/usr/bin/env bash
# On the machine with the compiler: compile every example and GPU test spec
# for sm_90a (PTX + cubin, ptxas gate) and sm_80 (portable PTX, which the
# driver compiles for the GPU at load), and copy the nlohmann/json headers the
# runtime-only build on the GPU machine needs. Outputs (git-ignored):
# gpu-kernels/ and third_party/, which the GPU run carries.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/build.sh >/dev/null
rm -rf gpu-kernels
# Head dims past the tensor-core kernels (test/gpu/specs/wide_heads_*.json: the SIMT
# kernel, which spills there by design) are compiled into the same folders without
# the spill gate.
specs=(examples/*.json $(ls test/gpu/specs/*.json | grep -v '/wide_heads_'))
wide=(test/gpu/specs/wide_heads_*.json)
build/bin/attn-compile "${specs[@]}" -o gpu-kernels/sm_90a --chip sm_90a --cubin --fail-on-spills --tensor-cores=false
build/bin/attn-compile "${specs[@]}" -o gpu-kernels/sm_80 --chip sm_80 --cubin --fail-on-spills --tensor-cores=false -q
# The default kernels: tensor cores where they apply (f16/bf16 softmax): wgmma + TMA
# with ping-pong and run-time document tiles on sm_90a, mma.sync with cp.async on sm_80;
# the chunkwise tensor-core kernel for f16/bf16 linear and gated linear attention.
build/bin/attn-compile "${specs[@]}" -o gpu-kernels/tc_sm_90a --chip sm_90a --cubin --fail-on-spills -q
build/bin/attn-compile "${specs[@]}" -o gpu-kernels/tc_sm_80 --chip sm_80 --cubin --fail-on-spills -q
for dir_chip in sm_90a:sm_90a sm_80:sm_80 tc_sm_90a:sm_90a tc_sm_80:sm_80; do
  build/bin/attn-compile "${wide[@]}" -o "gpu-kernels/${dir_chip%%:*}" --chip "${dir_chip##*:}" --cubin -q
done
# The benchmark's kernels (bench/bench.py): every bench/specs/*.json (softmax variants at
# D=128, dense/causal at D=64, gated linear attention with vector and scalar gates).
build/bin/attn-compile bench/specs/*.json -o gpu-kernels/bench --chip sm_90a --cubin --fail-on-spills -q
# The persistent Hopper kernel (one block per SM over the work items, longest
# first; the default for dense and window at D = 128, block-sparse of whole tiles,
# causal at D = 64) for every variant: verify with CHECKS=tc_sm_90a_persistent/,
# bench with --kernels gpu-kernels/bench_persistent.
build/bin/attn-compile examples/{dense,causal,gqa,bshd,block_sparse,document,alibi,softcap,window}.json \
  test/gpu/specs/{dense_d64,causal_gqa_d64,window_f16_d64,alibi_causal_lse}.json \
  -o gpu-kernels/tc_sm_90a_persistent --chip sm_90a --cubin --fail-on-spills --persistent -q
build/bin/attn-compile bench/specs/b_{dense,causal,dense_d64,causal_d64,window,block_sparse,document,alibi,softcap}.json \
  -o gpu-kernels/bench_persistent --chip sm_90a --cubin --fail-on-spills --persistent -q
# The persistent kernels with item overlap (--item-overlap, experimental: at D = 64
# only, where it fits the registers), against bench_persistent in the same call.
build/bin/attn-compile bench/specs/b_{dense_d64,causal_d64}.json \
  -o gpu-kernels/bench_persistent_overlap --chip sm_90a --cubin --fail-on-spills --persistent --item-overlap -q
# The dynamic tile scheduler (--persistent --dynamic-scheduler, experimental, off by
# default): persistent blocks take their items from a global counter (manifest role
# tile_counter, zeroed by the runtime before every launch). Checks
# (CHECKS=tc_sm_90a_dynsched/, the tc_sm_90a_persistent specs) and same-call bench
# comparisons against bench_persistent and bench (--kernels gpu-kernels/bench_dynsched).
build/bin/attn-compile examples/{dense,causal,gqa,bshd,block_sparse,document,alibi,softcap,window}.json \
  test/gpu/specs/{dense_d64,causal_gqa_d64,window_f16_d64,alibi_causal_lse}.json \
  -o gpu-kernels/tc_sm_90a_dynsched --chip sm_90a --cubin --fail-on-spills --persistent --dynamic-scheduler -q
build/bin/attn-compile bench/specs/b_{causal,causal_d64,dense_d64,document,alibi,softcap,dense,window,block_sparse}.json \
  -o gpu-kernels/bench_dynsched --chip sm_90a --cubin --fail-on-spills --persistent --dynamic-scheduler -q
# The D = 128 softmax bench specs on the one-item grid (--persistent=false), against
# the persistent defaults (dense, window, block-sparse) in the same call.
build/bin/attn-compile bench/specs/b_{dense,window,block_sparse}.json \
  -o gpu-kernels/bench_grid --chip sm_90a --cubin --fail-on-spills --persistent=false -q
# Every softmax bench spec without ping-pong (a same-call comparison).
build/bin/attn-compile bench/specs/b_{dense,causal,dense_d64,causal_d64,window,block_sparse,document,alibi,softcap}.json \
  -o gpu-kernels/bench_pp0 --chip sm_90a --cubin --fail-on-spills --ping-pong=false -q
# Head dim 64 in the other shapes: 128-row tiles (before the 192-row
# default) and 192 rows without ping-pong.
# Dense D = 64 on persistent blocks with 192-row tiles (spill-free at 32 / 160 registers
# since session 12): persistence won S = 1k by 11% with 128-row tiles and lost 4k / 16k;
# does it keep the 192-row tiles' 4k / 16k and take the 1k gain? Checks:
# CHECKS=tc_sm_90a_p192/; bench: --kernels gpu-kernels/bench_d64_p192.
build/bin/attn-compile test/gpu/specs/dense_d64.json \
  -o gpu-kernels/tc_sm_90a_p192 --chip sm_90a --cubin --fail-on-spills --persistent --block-q 192 --block-k 128 -q
build/bin/attn-compile bench/specs/b_dense_d64.json -o gpu-kernels/bench_d64_p192 \
  --chip sm_90a --cubin --fail-on-spills --persistent --block-q 192 --block-k 128 -q
build/bin/attn-compile bench/specs/b_dense_d64.json -o gpu-kernels/bench_d64_p192dyn \
  --chip sm_90a --cubin --fail-on-spills --persistent --dynamic-scheduler --block-q 192 --block-k 128 -q
build/bin/attn-compile bench/specs/b_{dense,causal}_d64.json -o gpu-kernels/bench_d64_bq128 \
  --chip sm_90a --cubin --fail-on-spills --block-q 128 -q
# Session 16: dense / causal D = 64 on persistent blocks with 128-row tiles, for a per-S
# kernel choice at S = 1k (session 11: dense D = 64 1k +11%, 4k / 16k -5-10%).
build/bin/attn-compile bench/specs/b_{dense,causal}_d64.json -o gpu-kernels/bench_d64_p128 \
  --chip sm_90a --cubin --fail-on-spills --persistent --block-q 128 -q
build/bin/attn-compile bench/specs/b_{dense,causal}_d64.json -o gpu-kernels/bench_d64_pp0 \
  --chip sm_90a --cubin --fail-on-spills --block-q 192 --ping-pong=false -q
build/bin/attn-compile bench/specs/b_{dense,causal}_d64.json -o gpu-kernels/bench_d64_bk64 \
  --chip sm_90a --cubin --fail-on-spills --block-q 192 --block-k 64 -q
# Softmax weights partly on the FMA pipe (--poly-exp2=N of every 8): checks
# (CHECKS=tc_sm_90a_poly4/) and same-call bench comparisons (bench_poly2, bench_poly4).
build/bin/attn-compile examples/{dense,causal,alibi,softcap,window}.json test/gpu/specs/{dense_d64,causal_gqa_d64}.json \
  -o gpu-kernels/tc_sm_90a_poly4 --chip sm_90a --cubin --fail-on-spills --poly-exp2=4 -q
for n in 2 4; do
  build/bin/attn-compile bench/specs/b_{dense,causal,dense_d64,causal_d64,alibi,softcap,window}.json \
    -o gpu-kernels/bench_poly$n --chip sm_90a --cubin --fail-on-spills --poly-exp2=$n -q
done
# Soft-cap with libdevice's tanhf (--fast-tanh=false; the default before
# 2026-12-03's session 9): same-call bench comparison against bench's b_softcap.
build/bin/attn-compile bench/specs/b_softcap.json -o gpu-kernels/bench_libdevice_tanh \
  --chip sm_90a --cubin --fail-on-spills --fast-tanh=false -q
# Block-sparse 90% at 16k waits on its next K / V stage for 12.6% of the samples
# (session 14's c5 profile): three stages, which fit only the one-item grid at
# D = 128 (229492 bytes; the persistent default's two Q buffers leave room for
# two). Session 15 (c1, c2): block90 16k +3% against the persistent default, 4k
# -12%; window -3-5%: defaults kept. Checks CHECKS=tc_sm_90a_grid_kv3/; bench
# --kernels gpu-kernels/bench_grid_kv3 --only block50,block90,window --seq 4096,16384.
build/bin/attn-compile examples/{block_sparse,window}.json -o gpu-kernels/tc_sm_90a_grid_kv3 \
  --chip sm_90a --cubin --fail-on-spills --persistent=false --kv-stages=3 -q
build/bin/attn-compile bench/specs/b_{block_sparse,window}.json -o gpu-kernels/bench_grid_kv3 \
  --chip sm_90a --cubin --fail-on-spills --persistent=false --kv-stages=3 -q
# Per-sequence-length kernels (--seq-dispatch, the default since session 16: block-sparse
# gets the grid + 3-stage kernel above for Sk >= 16384, causal D = 64 the dynamic scheduler
# from Sk = 4096): the bench kernels with one kernel for every length, for
# same-call comparisons (--kernels gpu-kernels/bench_noseqdispatch).
build/bin/attn-compile bench/specs/b_{block_sparse,causal_d64}.json -o gpu-kernels/bench_noseqdispatch \
  --chip sm_90a --cubin --fail-on-spills --seq-dispatch=false -q
# Documents with the key ids loaded from global memory by the masked softmax (before
# session 16's --document-ids-in-shared): --kernels gpu-kernels/bench_docglobal --only document.
build/bin/attn-compile bench/specs/b_document.json -o gpu-kernels/bench_docglobal \
  --chip sm_90a --cubin --fail-on-spills --document-ids-in-shared=false -q
# Documents without the per-block tile summary (session 17's --document-tile-summary, by
# default the documents' kernel for Sk >= 16384): --kernels gpu-kernels/bench_docnosummary
# --only document --seq 16384.
build/bin/attn-compile bench/specs/b_document.json -o gpu-kernels/bench_docnosummary \
  --chip sm_90a --cubin --fail-on-spills --document-tile-summary=false -q
# The summary at every length (bench_docsum2, what the Sk >= 16384 kernel is) and with 4
# entries a consumer warp per round of block-start loads (bench_docsum4, compiled
# spill-free, unmeasured): --only document --seq 4096,16384 against bench and
# bench_docnosummary (session 17: the block-start work ate the 4k gain).
build/bin/attn-compile bench/specs/b_document.json -o gpu-kernels/bench_docsum2 \
  --chip sm_90a --cubin --fail-on-spills --document-tile-summary -q
build/bin/attn-compile bench/specs/b_document.json -o gpu-kernels/bench_docsum4 \
  --chip sm_90a --cubin --fail-on-spills --document-tile-summary --document-tile-summary-unroll=4 -q
# O straight from the accumulator fragments (4-byte pairs, 8 rows a warp store), as before
# session 18's staged output: --kernels gpu-kernels/bench_pairs against bench.
build/bin/attn-compile bench/specs/b_{dense,causal,dense_d64,causal_d64,window,block_sparse,document,alibi,softcap}.json \
  -o gpu-kernels/bench_pairs --chip sm_90a --cubin --fail-on-spills --staged-output-store=false -q
# The summary's run-time fallback (batch x k tiles over its capacity: the walk from the
# first tile), checked with a capacity of 8 entries: CHECKS=tc_sm_90a_docsum8/.
build/bin/attn-compile examples/document.json -o gpu-kernels/tc_sm_90a_docsum8 \
  --chip sm_90a --cubin --fail-on-spills --document-tile-summary --document-tile-summary-entries=8 -q
# Documents' item order (session 19's --document-item-order: every pair's longer half of
# q tiles first, ranked at block start; by default the documents' kernel for Sk >= 16384):
# in q-tile-descending order at every length (bench_docorder0), the order at every length
# (bench_docorder), and its one-phase form at every length (bench_docorder1p:
# --document-item-order-phases=1, longest first inside each L2 group only). Same-round
# A/Bs: --only document --ab-kernels gpu-kernels/bench_docorder0 (bench.py).
build/bin/attn-compile bench/specs/b_document.json -o gpu-kernels/bench_docorder0 \
  --chip sm_90a --cubin --fail-on-spills --document-item-order=false -q
build/bin/attn-compile bench/specs/b_document.json -o gpu-kernels/bench_docorder \
  --chip sm_90a --cubin --fail-on-spills --document-item-order -q
build/bin/attn-compile bench/specs/b_document.json -o gpu-kernels/bench_docorder1p \
  --chip sm_90a --cubin --fail-on-spills --document-item-order --document-item-order-phases=1 -q
build/bin/attn-compile examples/document.json -o gpu-kernels/tc_sm_90a_docorder1p \
  --chip sm_90a --cubin --fail-on-spills --document-item-order --document-item-order-phases=1 -q
# The item order's run-time fallback (batch x q or k tiles over its capacity: one phase,
# q tiles descending) next to launches that fit, with a capacity of 8 entries, with and
# without the tile summary: CHECKS=tc_sm_90a_docorder8/.
build/bin/attn-compile examples/document.json -o gpu-kernels/tc_sm_90a_docorder8 \
  --chip sm_90a --cubin --fail-on-spills --document-item-order --document-item-order-entries=8 -q
build/bin/attn-compile examples/document.json -o gpu-kernels/tc_sm_90a_docorder8/summary \
  --chip sm_90a --cubin --fail-on-spills --document-item-order --document-item-order-entries=8 --document-tile-summary -q
# Cross-head tiles (session 20's --cross-head-tiles; the default for dense D = 64 since):
# the query rows of every (batch, head) as one sequence of 64-row slices, so that 192-row
# tiles at S = 1k (5 1/3 a head) compute no rows of zeros. Checks of the shapes the default
# does not build: CHECKS=tc_sm_90a_crosshead/ (192 rows static and dynamic, 128 rows at
# D = 64; GQA, bshd, Sq of 1 and 130-513 rows). Same-round A/B against the 192-row tiles
# without: --only dense --head-dims 64 --ab-kernels gpu-kernels/bench_crosshead0.
ch_specs=(test/gpu/specs/{dense_d64,dense_gqa_bshd_d64}.json)
build/bin/attn-compile "${ch_specs[@]}" -o gpu-kernels/tc_sm_90a_crosshead \
  --chip sm_90a --cubin --fail-on-spills --persistent --block-q 192 --cross-head-tiles -q
build/bin/attn-compile "${ch_specs[@]}" -o gpu-kernels/tc_sm_90a_crosshead/dyn \
  --chip sm_90a --cubin --fail-on-spills --persistent --dynamic-scheduler --block-q 192 --cross-head-tiles -q
build/bin/attn-compile "${ch_specs[@]}" -o gpu-kernels/tc_sm_90a_crosshead/bq128 \
  --chip sm_90a --cubin --fail-on-spills --persistent --block-q 128 --cross-head-tiles -q
build/bin/attn-compile bench/specs/b_dense_d64.json -o gpu-kernels/bench_crosshead0 \
  --chip sm_90a --cubin --fail-on-spills --cross-head-tiles=false -q
build/bin/attn-compile bench/specs/b_dense_d64.json -o gpu-kernels/bench_crosshead_dyn \
  --chip sm_90a --cubin --fail-on-spills --dynamic-scheduler --cross-head-tiles -q
# Half diagonal keys (session 21's --half-diagonal-keys, the default for plain causal
# since): on an item's last (diagonal) k tile, the warpgroup whose rows see only its
# first 64 keys computes half the products, the tile peeled off the loop. Checks of every
# causal / window spec with it on the default scheduler and on the one-item grid
# (CHECKS=tc_sm_90a_halfdiag/); bench A/Bs: ALiBi / soft-cap / window with it
# (--kernels gpu-kernels/bench_halfdiag --ab-kernels gpu-kernels/bench), causal without
# it (--kernels gpu-kernels/bench_nohalf --ab-kernels gpu-kernels/bench).
hd_specs=(examples/{causal,gqa,bshd,window}.json
  test/gpu/specs/{causal_gqa_d64,alibi_causal_lse,window_f16_d64,alibi_band_f16_d64}.json)
build/bin/attn-compile "${hd_specs[@]}" -o gpu-kernels/tc_sm_90a_halfdiag \
  --chip sm_90a --cubin --fail-on-spills --half-diagonal-keys -q
build/bin/attn-compile "${hd_specs[@]}" -o gpu-kernels/tc_sm_90a_halfdiag/grid \
  --chip sm_90a --cubin --fail-on-spills --half-diagonal-keys --persistent=false -q
build/bin/attn-compile bench/specs/b_{causal,causal_d64,window,alibi,softcap}.json \
  -o gpu-kernels/bench_halfdiag --chip sm_90a --cubin --fail-on-spills --half-diagonal-keys -q
build/bin/attn-compile bench/specs/b_{causal,causal_d64}.json \
  -o gpu-kernels/bench_nohalf --chip sm_90a --cubin --fail-on-spills --half-diagonal-keys=false -q
# Early output release (session 23's --early-output-release, experimental, off): each
# consumer warp reads its staged rows of O back, hands the Q buffer to the producer,
# then stores (the fence no longer waits for the stores' drain). Checks of every
# default sm_90a spec with it (CHECKS=tc_sm_90a_eor/, each on its default scheduler)
# and bench A/Bs (--kernels gpu-kernels/bench_eor --ab-kernels gpu-kernels/bench).
build/bin/attn-compile "${specs[@]}" -o gpu-kernels/tc_sm_90a_eor \
  --chip sm_90a --cubin --fail-on-spills --early-output-release -q
build/bin/attn-compile bench/specs/*.json -o gpu-kernels/bench_eor \
  --chip sm_90a --cubin --fail-on-spills --early-output-release -q
# The consumer warpgroup's index from %tid.x (before session 20's uniform index, by
# default since; it keeps the wgmma descriptors in uniform registers): every softmax
# bench spec, --ab-kernels gpu-kernels/bench_uniform0.
build/bin/attn-compile bench/specs/b_{dense,causal,dense_d64,causal_d64,window,block_sparse,document,alibi,softcap}.json \
  -o gpu-kernels/bench_uniform0 --chip sm_90a --cubin --fail-on-spills --uniform-warpgroup-index=false -q
# Three and four K/V stages (--kv-stages; 2 by default): checks (CHECKS=tc_sm_90a_kv3/)
# and same-call bench comparisons (bench_kv3, bench_kv4 at D = 64).
build/bin/attn-compile examples/{dense,causal,window,document,block_sparse}.json test/gpu/specs/{dense_d64,causal_gqa_d64}.json \
  -o gpu-kernels/tc_sm_90a_kv3 --chip sm_90a --cubin --fail-on-spills --kv-stages=3 -q
build/bin/attn-compile bench/specs/b_{dense,causal,dense_d64,causal_d64,window,document}.json \
  -o gpu-kernels/bench_kv3 --chip sm_90a --cubin --fail-on-spills --kv-stages=3 -q
build/bin/attn-compile bench/specs/b_{dense_d64,causal_d64}.json \
  -o gpu-kernels/bench_kv4 --chip sm_90a --cubin --fail-on-spills --kv-stages=4 -q
# The Hopper chunkwise linear kernel (--chunked-linear-wgmma, experimental, off by
# default: wgmma + TMA, a producer warp, one consumer warpgroup; no, scalar and
# head-constant gates, identity feature map, no normalizer). Checks
# (CHECKS=tc_sm_90a_linwg/): the linear-kind specs of the default kernels with it
# (gated_scalar, gated_head_constant and linear_plain get the new kernel; gated_vector,
# linear, linear_relu_state fall back to the mma.sync one, PTX identical to tc_sm_90a;
# the softmax specs are unaffected and left out). Bench: --kernels gpu-kernels/bench_linwg
# --only linear (b_simple_gla new, b_gla falls back).
build/bin/attn-compile examples/{linear,gated_scalar,gated_vector}.json \
  test/gpu/specs/{gated_head_constant,linear_relu_state,linear_plain}.json \
  -o gpu-kernels/tc_sm_90a_linwg --chip sm_90a --cubin --fail-on-spills --chunked-linear-wgmma -q
build/bin/attn-compile bench/specs/b_{simple_gla,gla}.json -o gpu-kernels/bench_linwg \
  --chip sm_90a --cubin --fail-on-spills --chunked-linear-wgmma -q
# ... with --chunked-linear-wgmma-overlap (the next chunk's Q K^T issued during this
# chunk's write-out): CHECKS=tc_sm_90a_linwg_overlap/, bench --kernels gpu-kernels/bench_linwg_overlap.
build/bin/attn-compile examples/gated_scalar.json test/gpu/specs/{gated_head_constant,linear_plain}.json \
  -o gpu-kernels/tc_sm_90a_linwg_overlap --chip sm_90a --cubin --fail-on-spills \
  --chunked-linear-wgmma --chunked-linear-wgmma-overlap -q
build/bin/attn-compile bench/specs/b_simple_gla.json -o gpu-kernels/bench_linwg_overlap \
  --chip sm_90a --cubin --fail-on-spills --chunked-linear-wgmma --chunked-linear-wgmma-overlap -q
# --chunked-linear-split-state (the default since session 13; built here explicitly so the
# folders stay when the default moves): the state recurrence on its own warpgroup, the
# chunk outputs on two more (no / scalar / head-constant gates). Checks:
# CHECKS=tc_sm_90a_split/; bench: --kernels gpu-kernels/bench_split --only simple_gla.
build/bin/attn-compile examples/gated_scalar.json \
  test/gpu/specs/{gated_head_constant,linear_plain,gated_scalar_dk64}.json \
  -o gpu-kernels/tc_sm_90a_split --chip sm_90a --cubin --fail-on-spills --chunked-linear-split-state -q
build/bin/attn-compile bench/specs/b_simple_gla.json -o gpu-kernels/bench_split \
  --chip sm_90a --cubin --fail-on-spills --chunked-linear-split-state -q
# ... with --chunked-linear-producer-k-scale (experimental, session 13, never run on a GPU):
# the split-state kernel's K~ computed by the producer warpgroup's idle warps a chunk
# ahead. Checks: CHECKS=tc_sm_90a_pks/ (and SANITIZE_KERNELS=tc_sm_90a_pks/gated_scalar);
# bench: --kernels gpu-kernels/bench_pks --only simple_gla, against the default.
build/bin/attn-compile examples/gated_scalar.json \
  test/gpu/specs/{gated_head_constant,gated_scalar_dk64}.json \
  -o gpu-kernels/tc_sm_90a_pks --chip sm_90a --cubin --fail-on-spills --chunked-linear-producer-k-scale -q
build/bin/attn-compile bench/specs/b_simple_gla.json -o gpu-kernels/bench_pks \
  --chip sm_90a --cubin --fail-on-spills --chunked-linear-producer-k-scale -q
# ... with --chunked-linear-wgmma-vector (attn-compile's default since session 10): vector gates
# (GLA) on the wgmma kernel too (1 block per SM at Dk = 128). Checks
# (CHECKS=tc_sm_90a_glawg/): the linear check specs with the flag (gated_vector,
# gated_vector_d64 get the new kernel; the others as in tc_sm_90a_linwg). Bench:
# --kernels gpu-kernels/bench_glawg --only linear --peers fla (b_gla new, b_simple_gla
# as bench_linwg).
build/bin/attn-compile examples/{linear,gated_scalar,gated_vector}.json \
  test/gpu/specs/{gated_head_constant,linear_relu_state,linear_plain,gated_vector_d64}.json \
  -o gpu-kernels/tc_sm_90a_glawg --chip sm_90a --cubin --fail-on-spills --chunked-linear-wgmma-vector -q
build/bin/attn-compile bench/specs/b_{gla,simple_gla}.json -o gpu-kernels/bench_glawg \
  --chip sm_90a --cubin --fail-on-spills --chunked-linear-wgmma-vector -q
# ... with --chunked-linear-producer-diagonal (experimental, off by default): the
# producer warpgroup computes GLA's 8 x 8 diagonal triangles a chunk ahead (Dk = 128).
# Checks: CHECKS=tc_sm_90a_glapd/; bench: --kernels gpu-kernels/bench_glapd --only linear.
build/bin/attn-compile examples/gated_vector.json test/gpu/specs/gated_vector_d64.json \
  -o gpu-kernels/tc_sm_90a_glapd --chip sm_90a --cubin --fail-on-spills --chunked-linear-producer-diagonal -q
build/bin/attn-compile bench/specs/b_{gla,simple_gla}.json -o gpu-kernels/bench_glapd \
  --chip sm_90a --cubin --fail-on-spills --chunked-linear-producer-diagonal -q
# ... with --chunked-linear-two-consumers (experimental, off by default): GLA at
# Dk = Dv = 128 on one block per (batch, head) whose two consumer warpgroups (one per
# value half) share the intra-chunk A. Checks: CHECKS=tc_sm_90a_gla2/; bench:
# --kernels gpu-kernels/bench_gla2 --only linear.
build/bin/attn-compile examples/gated_vector.json test/gpu/specs/{gated_vector_state,gated_vector_d64}.json \
  -o gpu-kernels/tc_sm_90a_gla2 --chip sm_90a --cubin --fail-on-spills --chunked-linear-two-consumers -q
build/bin/attn-compile bench/specs/b_{gla,simple_gla}.json -o gpu-kernels/bench_gla2 \
  --chip sm_90a --cubin --fail-on-spills --chunked-linear-two-consumers -q
# An older compiler's bench kernels (OLD_COMPILER=path/to/attn-compile, optional) for a
# same-call A/B against this tree's: gpu-kernels/bench_old.
if [ -n "${OLD_COMPILER:-}" ]; then
  "$OLD_COMPILER" bench/specs/b_{causal,document,dense}.json -o gpu-kernels/bench_old \
    --chip sm_90a --cubin --fail-on-spills -q
fi
# The chunkwise linear kernels staging synchronously (--chunked-linear-prefetch=false,
# the default before 2026-11-29's H200 measurement), to compare against.
build/bin/attn-compile bench/specs/b_{gla,simple_gla}.json -o gpu-kernels/bench_linear_noprefetch \
  --chip sm_90a --cubin --fail-on-spills --chunked-linear-prefetch=false -q
# The tuning mode (scripts/gpu/tune.sh): every tuning candidate of three bench kernels
# (dense D=128, dense D=64, causal D=128): block_k 128/64 x ping-pong x persistent,
# candidates that spill left out; DIR/<spec>/<candidate>/<spec>.{json,ptx,cubin}.
build/bin/attn-compile bench/specs/b_{dense,dense_d64,causal,causal_d64}.json -o gpu-kernels/tune \
  --chip sm_90a --cubin --tune-candidates > gpu-kernels/tune.log
cat gpu-kernels/tune.log
# The PyTorch binding's kernels (python/attn): those test/gpu/test_torch_ops.py and
# bench/first_call_latency.py call, named by a hash of their spec; a kernel that
# fails to compile is printed and recorded in gpu-kernels/torch/sm_90a/prebuild.jsonl.
python3 python/attn/prebuild.py --set gpu-tests --set first-call -o gpu-kernels/torch/sm_90a \
  --chip sm_90a --compiler build/bin/attn-compile --allow-failures
# examples/cpp's kernel library (generated launch header + manifest + cubin), built and
# run on the GPU machine by scripts/gpu/all.sh.
build/bin/attn-compile examples/causal.json -o gpu-kernels/cpp_example --chip sm_90a \
  --header gpu-kernels/cpp_example/kernels.h --cubin -q
# Run the sm_80 PTX through the driver's JIT.
rm -f gpu-kernels/sm_80/*.cubin gpu-kernels/tc_sm_80/*.cubin
sed -i 's/"cubin": "[^"]*"/"cubin": null/' gpu-kernels/sm_80/*.json gpu-kernels/tc_sm_80/*.json
# The compiler commit these kernels come from (bench.py records it as kernels_commit).
echo "$(git rev-parse HEAD)$(git diff --quiet HEAD -- lib include tools || echo -dirty)" > gpu-kernels/COMMIT
mkdir -p third_party/nlohmann_json/include
cp -r /usr/include/nlohmann third_party/nlohmann_json/include/
# The runtime-only build on the GPU machine also builds libattn_runtime.so
# (python/attn looks for it in build-rt/lib).
# The device tool carries at most 64 MiB (tracked files, untracked ones git does not
# ignore, and the carried gpu-kernels/ + third_party/); every folder above is ~44 MiB.
# GPU_SLIM=1 keeps only what a default scripts/gpu/all.sh run reads (tc_sm_90a, bench,
# torch, cpp_example) plus the folders named in GPU_KEEP (space-separated, e.g.
# GPU_KEEP="bench_docglobal bench_noseqdispatch"); the rest were compiled (the ptxas
# gate ran) and are deleted.
if [ "${GPU_SLIM:-0}" = 1 ]; then
  for dir in gpu-kernels/*/; do
    name=$(basename "$dir")
    case " tc_sm_90a bench torch cpp_example ${GPU_KEEP:-} " in
      *" $name "*) ;;
      *) rm -rf "$dir" ;;
    esac
  done
  rm -f gpu-kernels/tune.log
fi
echo "prepared: $(ls gpu-kernels/tc_sm_90a/*.json | wc -l) default sm_90a manifests (with" \
  "per-length variants), $(ls gpu-kernels/torch/sm_90a/*.json | wc -l) for the torch binding;" \
  "carry: $(du -smc gpu-kernels third_party | tail -1 | cut -f1) MiB of gpu-kernels + third_party"
carry_mib=$(du -smc gpu-kernels third_party | tail -1 | cut -f1)
if [ "$carry_mib" -gt 40 ]; then
  echo "warning: ${carry_mib} MiB to carry, near the device tool's 64 MiB with the tracked files;" \
    "rerun with GPU_SLIM=1 (and GPU_KEEP=\"folders the call needs\")"
fi
