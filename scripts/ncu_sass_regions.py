#!/usr/bin/env python3
"""Where a kernel's warp-stall samples go, from Nsight Compute's per-SASS source page.

Input: the CSV that scripts/gpu/all.sh writes for $PROFILE (prof_<entry>_sass.csv,
`ncu --page source --print-source sass --csv`; gzip is fine). Output:
  - the share of samples per role, split at the USETMAXREG (setmaxnreg) instructions
    (producer / consumer warpgroups of the Hopper kernels);
  - the regions between synchronizing instructions (BAR.SYNC, mbarrier waits,
    WARPGROUP.DEPBAR) with at least --min-share of the samples: their share, execution
    count, MUFU / HGMMA / LDS / STS / STG counts and top stall reasons;
  - the --top instructions by samples.

  python3 scripts/ncu_sass_regions.py prof_b_gla_sass.csv.gz --top 20
"""
import argparse
import csv
import gzip
import re

SYNC = re.compile(r"BAR\.SYNC|BAR\.ARV|SYNCS\.PHASECHK|WARPGROUP\.DEPBAR")
ROLE = "USETMAXREG"


def number(text):
    try:
        return float(text)
    except ValueError:
        return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--min-share", type=float, default=1.0, help="percent of all samples")
    args = ap.parse_args()
    opener = gzip.open if args.csv.endswith(".gz") else open
    with opener(args.csv, "rt") as f:
        rows = list(csv.reader(f))
    header = rows[1]
    col = {h: i for i, h in enumerate(header)}
    data = [r for r in rows[2:] if len(r) == len(header)]
    samples = col["Warp Stall Sampling (All Samples)"]
    executed = col["Instructions Executed"]
    stalls = [h for h in header if h.startswith("stall_") and "Not Issued" not in h]
    total = sum(number(r[samples]) for r in data) or 1.0
    print(f"{rows[0][1] if len(rows[0]) > 1 else ''}: {total:.0f} samples, {len(data)} instructions")

    def describe(rs):
        s = sum(number(r[samples]) for r in rs)
        counts = {k: sum(1 for r in rs if re.search(p, r[1])) for k, p in
                  [("mufu", "MUFU"), ("hgmma", "HGMMA"), ("lds", r"\bLDS"), ("sts", r"\bSTS"), ("stg", r"\bSTG")]}
        reasons = sorted(((sum(number(r[col[h]]) for r in rs), h[6:]) for h in stalls), reverse=True)[:3]
        top = ", ".join(f"{v / s * 100:.0f}% {k}" for v, k in reasons if v > 0) if s else ""
        return s, counts, top

    marks = [i for i, r in enumerate(data) if ROLE in r[1]]
    bounds = [0] + marks + [len(data)]
    print("\nroles (split at USETMAXREG):")
    for a, b in zip(bounds, bounds[1:]):
        if a == b:
            continue
        s, counts, top = describe(data[a:b])
        print(f"  instructions {a:5d}-{b:5d}: {s / total * 100:5.1f}%  {top}")

    print(f"\nregions between synchronizing instructions (and role boundaries; "
          f">= {args.min_share}% of samples):")
    region = []
    for i, r in enumerate(data):
        region.append(r)
        if SYNC.search(r[1]) or i + 1 == len(data) or ROLE in data[i + 1][1]:
            s, counts, top = describe(region)
            if s / total * 100 >= args.min_share:
                ex = max(number(x[executed]) for x in region)
                c = " ".join(f"{k}={v}" for k, v in counts.items())
                print(f"  {region[0][0][-6:]}..{region[-1][0][-6:]} n={len(region):4d} "
                      f"{s / total * 100:5.1f}% exec={ex:.0f} {c} ends '{region[-1][1].strip()[:38]}' [{top}]")
            region = []

    print(f"\ntop {args.top} instructions:")
    ranked = sorted(data, key=lambda r: -number(r[samples]))[: args.top]
    for r in ranked:
        _, _, top = describe([r])
        print(f"  {number(r[samples]) / total * 100:5.1f}% {r[0][-6:]} exec={number(r[executed]):.0f} "
              f"{r[1].strip()[:60]:60s} [{top}]")


if __name__ == "__main__":
    main()
