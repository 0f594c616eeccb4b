#!/usr/bin/env python3
"""Where attn-compile's time goes, per example: runs `attn-compile --time-stages`
N times per spec (cold process each time) and prints the median wall/CPU ms of
each stage and the median wall ms of each MLIR pass (gpu-lower-to-nvvm-pipeline
broken down; GpuModuleToBinaryPass = MLIR -> LLVM IR translation + LLVM opt +
NVPTX codegen). Process CPU (user+sys, ptxas included) from os.wait4.
    python3 bench/compile_breakdown.py [--repeats 5] [--chip sm_90a] [examples...]
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_once(compile_bin, spec, chip, extra):
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        p = subprocess.Popen([compile_bin, spec, "-o", out, "--chip", chip, "--cubin", "-q",
                              "--time-stages"] + extra,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stdout, stderr = p.communicate()
        _, status, usage = os.wait4(p.pid, 0) if p.returncode is None else (0, 0, None)
        wall = time.perf_counter() - start
    if p.returncode != 0:
        raise SystemExit(stderr)
    stages, passes = {}, {}
    for line in stderr.splitlines():
        m = re.match(r"  (\S.*?)\s+(-?[\d.]+)(?:\s+(-?[\d.]+))?$", line)
        if m and not line.startswith("   "):
            stages[m.group(1)] = (float(m.group(2)), float(m.group(3) or 0))
            continue
        m = re.match(r"\s+([\d.]+) \(\s*[-\w.]+%\)\s+(\S.*)$", line)
        if m:
            name = m.group(2).strip()
            passes[name] = passes.get(name, 0) + float(m.group(1)) * 1e3
    return wall, stages, passes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("examples", nargs="*")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--chip", default="sm_90a")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "attn-compile"))
    ap.add_argument("--extra", default="", help="extra attn-compile flags")
    ap.add_argument("--passes", action="store_true", help="also print per-pass medians")
    ap.add_argument("--json")
    args = ap.parse_args()
    specs = args.examples or sorted(glob.glob(os.path.join(ROOT, "examples", "*.json")))
    report = {}
    for spec in specs:
        name = os.path.basename(spec)[:-5]
        runs = []
        for _ in range(args.repeats):
            t0 = os.times()
            wall, stages, passes = run_once(args.bin, spec, args.chip, args.extra.split())
            t1 = os.times()
            cpu = (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)
            runs.append((wall, cpu, stages, passes))
        med = lambda xs: statistics.median(xs) if xs else 0.0
        row = {"wall_ms": med([r[0] for r in runs]) * 1e3, "cpu_ms": med([r[1] for r in runs]) * 1e3,
               "stages": {}, "passes": {}}
        for key in runs[0][2]:
            row["stages"][key] = (med([r[2].get(key, (0, 0))[0] for r in runs]),
                                  med([r[2].get(key, (0, 0))[1] for r in runs]))
        for key in runs[0][3]:
            row["passes"][key] = med([r[3].get(key, 0) for r in runs])
        report[name] = row
        print(f"== {name}: process wall {row['wall_ms']:.0f} ms, cpu (user+sys, ptxas incl.) "
              f"{row['cpu_ms']:.0f} ms")
        for key, (w, c) in row["stages"].items():
            print(f"   {key:46s} {w:8.1f} {c:8.1f}")
        if args.passes:
            for key, w in sorted(row["passes"].items(), key=lambda kv: -kv[1])[:25]:
                print(f"      pass {key:44s} {w:8.1f}")
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
