#!/usr/bin/env python3
"""A list-scheduling model of the persistent Hopper kernel's item orders (no GPU).

The dynamic scheduler hands work index w to whichever block asks next, and each
block runs its items one after another: list scheduling on P workers (one per SM)
in the order of w. This model costs an item as its live k tiles (1 each), plus
`masked` more per element-masked tile, plus `per_item` (the first S and last P V
waited for alone, the epilogue), and reports each order's makespan over the ideal
(total cost / P). Session 19 used it for documents' items (bench/NOTES.md): the
q-tile-descending order 7.7% / 4.7% over the ideal at 16k / 4k, two phases 0.8% /
0.7%. The H200 then measured +3.5-5.9% at 16k and nothing at 4k, so read its 4k
numbers with care: it has no L2 (the two phases read each pair's K / V twice).

  python3 bench/schedule_model.py            # the bench's documents and causal rows
  python3 bench/schedule_model.py --seq 16384 --variant document
"""
import argparse
import heapq
import random

L2_GROUP_BYTES = 16 << 20  # WgmmaSoftmaxKernel.cpp's kL2GroupBytes


def document_ids(S, seed=1234, ndoc=4):
    """bench.py's / peers.py's document cut points for sequence length S."""
    rng = random.Random(seed * 11 + S)
    cuts = sorted(rng.sample(range(S // 16, S - S // 16), ndoc - 1))
    doc = [0] * S
    for c in cuts:
        for i in range(c, S):
            doc[i] += 1
    return doc


def item_costs(variant, S, block=128, masked=0.6, per_item=0.75, seed=1234):
    """Cost (tile units) of each q tile's item, causal, for 'causal' or 'document'."""
    tiles = S // block
    doc = document_ids(S, seed) if variant == "document" else [0] * S
    costs = []
    for qt in range(tiles):
        qs = set(doc[qt * block:(qt + 1) * block])
        live = mask = 0
        for kt in range(qt + 1):
            ks = doc[kt * block:(kt + 1) * block]
            if not qs & set(ks):
                continue
            live += 1
            if kt == qt or len(qs) > 1 or any(k not in qs for k in ks):
                mask += 1
        costs.append(live + masked * mask + per_item)
    return costs


def makespan(order, cost, workers):
    """List scheduling: each item goes to the worker that frees first."""
    free = [0.0] * workers
    for item in order:
        t = heapq.heappop(free)
        heapq.heappush(free, t + cost[item])
    return max(free)


def orders(costs, pairs, per_group):
    """The item orders: (pair, q tile) lists, as itemOf maps work indices."""
    tiles = len(costs)
    groups = [list(range(g, min(pairs, g + per_group))) for g in range(0, pairs, per_group)]
    ranked = sorted(range(tiles), key=lambda t: (-costs[t], -t))

    def by_rank(group, ranks, table):
        return [(p, table[r]) for r in ranks for p in group]
    descending = list(reversed(range(tiles)))
    half = (tiles + 1) // 2
    return {
        "q-tile-descending": [i for g in groups for i in by_rank(g, range(tiles), descending)],
        "one phase (longest first in each group)": [
            i for g in groups for i in by_rank(g, range(tiles), ranked)],
        "two phases (longer half first)": [i for g in groups for i in by_rank(g, range(half), ranked)]
        + [i for g in groups for i in by_rank(g, range(half, tiles), ranked)],
    }


def model(variant, S, tokens=32768, heads=16, head_dim=128, workers=132, **kw):
    costs = item_costs(variant, S, **kw)
    pairs = tokens // S * heads
    per_group = max(1, min(pairs, L2_GROUP_BYTES // (S * 2 * head_dim * 2)))
    cost = {(p, t): c for p in range(pairs) for t, c in enumerate(costs)}
    ideal = sum(cost.values()) / workers
    return {name: makespan(order, cost, workers) / ideal
            for name, order in orders(costs, pairs, per_group).items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=["document", "causal"], action="append")
    ap.add_argument("--seq", type=int, action="append")
    ap.add_argument("--workers", type=int, default=132)
    args = ap.parse_args()
    for variant in args.variant or ["document", "causal"]:
        for S in args.seq or [4096, 16384]:
            res = model(variant, S, workers=args.workers)
            print(f"{variant} S={S}: " + ", ".join(f"{k} {v:.3f}" for k, v in res.items()))


if __name__ == "__main__":
    main()
