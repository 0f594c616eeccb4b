#!/usr/bin/env python3
"""Compiles every examples/*.json as far as the pipeline goes today (attn IR,
the tiled form, LLVM dialect for the CPU) and prints a summary table."""
import glob
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPT = os.path.join(ROOT, "build", "bin", "attn-opt")
STAGES = [("attn IR", []), ("tiled", ["--attn-tile"]), ("LLVM (cpu)", ["--attn-cpu-pipeline"])]


def main():
    rows, failed = [], False
    for spec in sorted(glob.glob(os.path.join(ROOT, "examples", "*.json"))):
        name = os.path.basename(spec)[:-5]
        row = [name]
        for _, flags in STAGES:
            start = time.perf_counter()
            r = subprocess.run([OPT, "--spec", spec] + flags, capture_output=True, text=True)
            ms = (time.perf_counter() - start) * 1e3
            if r.returncode != 0:
                row.append("FAILED")
                failed = True
                sys.stderr.write(r.stderr)
            else:
                row.append(f"{len(r.stdout.splitlines())} lines, {ms:.0f} ms")
        rows.append(row)
    header = ["example"] + [s for s, _ in STAGES]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    print(fmt.format(*header))
    print(fmt.format(*["-" * w for w in widths]))
    for r in rows:
        print(fmt.format(*r))
    print("\nGPU code generation (PTX) is not built yet; run a variant on the CPU with:\n"
          "  build/bin/attn-exec examples/causal.json --inputs DIR --outputs DIR --device cpu")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
