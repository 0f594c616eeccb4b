"""Decoding-shaped attention: grouped query heads packed into query rows, and
keys split over more work items (FlashDecoding's split-KV), in the binding.

A Hopper kernel item covers 128 query rows of one (batch, head) at D = 128
(64-row slices, three an item, at D = 64), so a decoding step (one query row
per head) fills 1 row of 128 and runs B * Hq items however long the KV cache,
each computing 128x the needed tensor-core work (bench/results/
2026-12-05-v33-session24: compute-bound, 359 us at 32k keys where reading
K and V once takes 126 us).
Two rewrites of the call, both exact (the same softmax over the same keys),
fix both without a new kernel:

  * packing: the G = Hq / Hkv query heads that share a KV head become query
    rows of one head, q [B, Hq, Sq, D] -> [B, Hkv, G * Sq, D] (a view for
    Sq = 1), so a tile holds G rows instead of 1: G times fewer items, each
    as long as before (G times less work in all, but fewer SMs busy);
  * splitting: the keys of each KV head are cut into n equal parts that the
    kernel sees as n heads (or n batches), k [B, Hkv, Sk, D] ->
    [B, Hkv * n, Sk / n, D], a view of the same memory when the heads' keys
    lie back to back (any contiguous cache); queries are repeated per part
    (a copy of a few KB), and the parts' (out, lse) merged as merge_attention
    does: n times the items, each n times shorter.

Only position-free scores qualify (no mask, ALiBi or custom expression: the
part's key positions are not the cache's); a causal or window bound qualifies
with one query row, where it only cuts the keys to a range. plan() is plain
Python over shapes and strides (tested without torch); ops.attention runs it.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

from .spec import AttnArgumentError

# Rows of one consumer warpgroup's slice of a tile (its wgmma M): packing pays
# below this many query rows.
SLICE_ROWS = 64
# A part keeps at least this many keys (8 tiles of 128): an item's fixed cost
# (its Q load, the pipeline's fill, the epilogue; ~1-1.5 tiles' time, bench/
# NOTES.md session 23) stays small next to its loop.
MIN_KEYS_PER_PART = 1024
MAX_SPLITS = 32
# Splitting pays while the items fill less than this share of the SMs.
FILL_TARGET = 0.8


@dataclass(frozen=True)
class Plan:
    """How ops.attention runs a call (see the module doc).

    pack: query heads become rows of their KV head.
    splits: key parts (1: none).
    fold: "heads" or "batch": which dimension the parts become (None with 1).
    keys: (lo, hi): the keys every query sees (one row under a causal or
        window bound), or None for all."""
    pack: bool
    splits: int
    fold: Optional[str]
    keys: Optional[Tuple[int, int]]


def visible_keys(sk, causal, window):
    """The keys [lo, hi) one query row sees under bottom-right causal / window
    bounds (the row's diagonal is key sk - 1)."""
    last = sk - 1
    lo, hi = 0, sk
    if window is not None:
        left, right = window
        lo = max(0, last - left)
        hi = min(sk, last + right + 1)
    if causal:
        hi = min(hi, last + 1)
    return lo, max(lo, hi)


def fold_of(shape, stride, splits):
    """Which dimension of a [B, H, S, D] tensor (shape, stride) its S / splits
    parts can become as a strided view: "heads" where each head's keys lie
    back to back (stride(H) == S * stride(S): a bhsd cache), "batch" where
    each batch's do (stride(B) == S * stride(S): a bshd cache with its heads
    interleaved), else None."""
    _, h, s, _ = shape
    sb, sh, ss, _ = stride
    if s % splits:
        return None
    if h == 1 or sh == s * ss:
        return "heads"
    if sb == s * ss:
        return "batch"
    return None


def items(b, heads, rows, head_dim):
    """The Hopper kernel's work items for B * heads (batch, head) pairs of `rows`
    query rows: at head dim <= 64 64-row slices, three to an item, across pairs
    (cross-head tiles); above, 128-row tiles of one pair each (the second K / V
    slot of cross-head tiles does not fit in shared memory at D = 128)."""
    if head_dim <= 64:
        return -(-(b * heads * -(-rows // SLICE_ROWS)) // 3)
    return b * heads * -(-rows // 128)


def choose_splits(work, sk, sms, divides):
    """The number of key parts for `work` items over sk keys on `sms` SMs: 1
    while the items fill FILL_TARGET of the SMs or the keys are too few; else
    the fewest parts (dividing sk, per `divides`) whose waves are within 10% of
    the best wave efficiency found, parts of at least MIN_KEYS_PER_PART keys."""
    if work <= 0 or work >= FILL_TARGET * sms:
        return 1
    candidates = [n for n in range(2, MAX_SPLITS + 1)
                  if sk // n >= MIN_KEYS_PER_PART and divides(n)]
    if not candidates:
        return 1

    def efficiency(n):
        total = work * n
        waves = -(-total // sms)
        return total / (waves * sms)
    best = max(efficiency(n) for n in candidates)
    if best <= work / sms:
        return 1
    return min(n for n in candidates if efficiency(n) >= 0.9 * best)


def plan(q_shape, k_shape, k_stride, v_shape, v_stride, *, position_free, causal, window,
         num_splits, sms):
    """The Plan for one attention call, or None to run it as given.

    position_free: no mask (other than causal / window), ALiBi or custom score
    or mask expression. num_splits: None (choose), 1 (never split) or n.
    sms: the device's multiprocessor count (None: no automatic splitting)."""
    if num_splits is not None and (isinstance(num_splits, bool) or not isinstance(num_splits, int)
                                   or num_splits < 1):
        raise AttnArgumentError(f"num_splits: expected None (chosen per call) or an int >= 1, "
                                f"got {num_splits!r}")
    b, hq, sq, _ = q_shape
    hkv, sk = k_shape[1], k_shape[2]
    bounded = causal or window is not None
    eligible = position_free and (not bounded or sq == 1)
    if not eligible:
        if num_splits not in (None, 1):
            raise AttnArgumentError(
                "num_splits: keys are split only for position-free scores (no block mask, "
                "document ids, ALiBi, score_mod or mask_mod; causal or window only with one "
                "query row, where they select a range of keys)")
        return None
    keys = visible_keys(sk, causal, window) if bounded else None
    n_keys = keys[1] - keys[0] if keys else sk
    group = hq // hkv
    pack = group > 1 and sq < SLICE_ROWS
    heads, rows = (hkv, group * sq) if pack else (hq, sq)
    # Parts must be views: a part of a key range is one only over the whole cache.
    whole = keys is None or keys == (0, sk)

    def fold(n):
        if not whole:
            return None
        kf, vf = fold_of(k_shape, k_stride, n), fold_of(v_shape, v_stride, n)
        return kf if kf == vf else None
    if num_splits is None:
        splits = 1 if sms is None else choose_splits(items(b, heads, rows, q_shape[3]), n_keys, sms,
                                                     lambda n: fold(n) is not None)
    else:
        splits = num_splits
        if splits > n_keys and splits > 1:
            raise AttnArgumentError(f"num_splits={splits}: more parts than keys ({n_keys}); "
                                    "each part needs at least one key")
        if splits > 1 and fold(splits) is None:
            raise AttnArgumentError(
                f"num_splits={splits}: the keys ({n_keys}) must divide into {splits} equal "
                "parts, and k and v each be one view of them: each head's keys back to back "
                "([B, H, S, D] contiguous) or each batch's ([B, S, H, D] contiguous), and "
                "no causal / window range")
    if not pack and splits == 1 and keys is None:
        return None
    return Plan(pack=pack, splits=splits, fold=fold(splits) if splits > 1 else None,
                keys=None if keys is None or keys == (0, sk) else keys)
