#!/usr/bin/env python3
"""GPU correctness checks (issue #4), run on the GPU machine.

For every kernel manifest in --kernels (written by scripts/gpu/prepare.sh on
a machine with the compiler): fresh random inputs (never zeros) on shapes
that are not multiples of the tile sizes, Sq != Sk, GQA, fully masked rows;
`attn-exec --kernel M --device cuda` (outputs poisoned with NaN by the
runtime before launch) against the independent numpy float64 reference of
test/exec/attn_numpy.py. Where PyTorch SDPA's FLASH or CUDNN back end
supports the variant, their error on the same inputs is measured too and ours
must be at most twice the better one. Prints a table; writes JSON and
Markdown to --out.
"""
import argparse
import concurrent.futures
import datetime
import fnmatch
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

# Cases run in parallel worker processes: each one's BLAS gets a couple of
# threads, not every core (8 workers x all cores thrash). Set before numpy
# is imported; the workers inherit it.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "exec"))
from attn_numpy import PySpec, from_layout, make_inputs, reference, save_inputs  # noqa: E402

BF16_TOL = {"bf16": 1e-2, "f16": 1e-2, "f32": 1e-4}
# Final states (ht): the recurrent kernels add every step in f32, so 1e-4. The
# chunkwise tensor-core kernels round the decayed keys of each chunk's state
# update to the input type before the product, exactly as flash-linear-
# attention does (fla/ops/common/chunk_h.py: (b_k * exp2(g_last - g)).to(b_k.dtype)
# then tl.dot); their state error is then of the order of the input rounding
# and gets the input type's tolerance, like the outputs.
HT_TOL_F32_STEPS = 1e-4
# A case that takes longer is a failed row (a hang). $CASE_TIMEOUT_S shortens
# it for a first check of a new kernel (session 17: nine hung cases at 60 s
# each took most of a call).
CASE_TIMEOUT_S = float(os.environ.get("CASE_TIMEOUT_S", "60"))


def rel(a, b):
    n = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (n if n > 0 else 1.0))


def shapes_for(spec):
    if spec.attention:
        # (B, Sq, Sk): non-multiples of the tiles, Sq != Sk both ways, 1 row.
        # (1, 513, 1100): 9 k tiles of 128, so every pipeline stage is
        # refilled several times (mbarrier phases flip). The last case ramps
        # the keys up to 8x along Sk: rows' maxima keep growing past the
        # Hopper kernel's lazy-rescale headroom (2^8) on later tiles.
        cases = [(2, 130, 257), (1, 257, 100), (2, 1, 77), (1, 300, 300), (1, 513, 1100),
                 (1, 200, 1100, 8.0)]
        # Document ids in other orders than sorted: the walk's tile summary
        # (ranges that meet without a matching id; the first live tile early).
        if spec.documents:
            cases += [(2, 513, 1100, {"docs": order}) for order in ("reversed", "shuffled", "disjoint")]
        return cases
    # Gated kinds also under strong decay: natural-log gates down to -8 per
    # step (a chunk's cumulative decay reaches e^-500, far past f32's range),
    # where only an exponent discipline of differences <= 0 stays finite.
    strong = [(1, 200, 200, {"gates": (0.5, 8.0)})] if spec.kind == "gated_linear_attention" else []
    return [(2, 130, 130), (1, 1, 1), (1, 333, 333)] + strong


def second_error(row):
    """The table's second error column: lse (softmax) or the final state ht
    (linear kinds, with its tolerance)."""
    if "err_ht" in row:
        return f"ht {row['err_ht']:.2e} ({row.get('ht_tol', 0):.0e})"
    return f"{row.get('err_lse', float('nan')):.2e}"


def sdpa_errors(spec, x, ref_o):
    """Relative error of SDPA FLASH / CUDNN on the same inputs, where supported."""
    try:
        import torch
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except Exception as e:  # noqa: BLE001
        return {"error": f"torch unavailable: {e}"}
    if not spec.attention or spec.dtype == "f32":
        return {}
    masked = spec.window or spec.block_sparse or spec.documents or spec.alibi or \
        spec.softcap or spec.mask_custom or spec.score_custom
    Sq, Sk = x["q"].shape[2], x["k"].shape[2]
    if masked or (spec.causal and Sq != Sk):
        return {}  # SDPA's is_causal is top-left aligned; no fused mask support
    dt = torch.bfloat16 if spec.dtype == "bf16" else torch.float16
    q, k, v = (torch.tensor(x[n], device="cuda").to(dt) for n in ("q", "k", "v"))
    out = {}
    for name, backend in (("flash", SDPBackend.FLASH_ATTENTION),
                          ("cudnn", SDPBackend.CUDNN_ATTENTION)):
        try:
            with sdpa_kernel([backend]):
                o = torch.nn.functional.scaled_dot_product_attention(
                    q, k, v, is_causal=spec.causal, scale=spec.effective_scale(x["q"].shape[3]),
                    enable_gqa=q.shape[1] != k.shape[1])
            out[name] = rel(o.double().cpu().numpy(), ref_o)
        except Exception as e:  # noqa: BLE001
            out[name] = f"unsupported: {str(e).splitlines()[0][:60]}"
    return out


def run_case(exec_path, manifest_path, spec, B, Sq, Sk, seed, work, kernel_kind="simt",
             key_ramp=None, gate_range=None, doc_order="sorted"):
    d = spec.json
    shape = d["shape"]
    if spec.attention:
        Hq, Hkv = shape.get("heads_q") or 4, shape.get("heads_kv") or shape.get("heads_q") or 4
    else:
        Hq = Hkv = shape.get("heads") or 4
        Sk = Sq
    Dqk = shape["head_dim"]
    Dv = shape.get("head_dim_v") or Dqk
    rng = np.random.default_rng(seed)
    tensor_shapes = None
    files, x = make_inputs(spec, rng, B, Hq, Hkv, Sq, Sk, Dqk, Dv, tensor_shapes=tensor_shapes,
                           key_ramp=key_ramp, gate_range=gate_range, doc_order=doc_order)
    in_dir, out_dir = os.path.join(work, "in"), os.path.join(work, "out")
    save_inputs(in_dir, files)
    row = {"B": B, "Sq": Sq, "Sk": Sk, "Hq": Hq, "Hkv": Hkv, "Dqk": Dqk, "Dv": Dv}
    if key_ramp:
        row["key_ramp"] = key_ramp
    if gate_range:
        row["gates"] = list(gate_range)
    if doc_order != "sorted":
        row["docs"] = doc_order
    # A kernel that hangs (a deadlock) is a failed row, not a stuck run.
    t_exec = time.monotonic()
    try:
        r = subprocess.run([exec_path, "--kernel", manifest_path, "--inputs", in_dir,
                            "--outputs", out_dir, "--device", "cuda"], capture_output=True,
                           text=True, timeout=CASE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        row.update(ok=False, error=f"timeout: attn-exec did not finish in {CASE_TIMEOUT_S} s "
                                   "(the kernel hangs?)")
        return row
    if r.returncode != 0:
        row.update(ok=False, error=r.stderr.strip()[-300:])
        return row
    # Where the case's time goes (rows print in order, so one slow case stalls
    # the output of a time-limited run and looks like a hung kernel).
    row["exec_s"] = round(time.monotonic() - t_exec, 2)
    t_ref = time.monotonic()
    ref = reference(spec, x)
    row["ref_s"] = round(time.monotonic() - t_ref, 2)
    o = from_layout(spec, np.load(os.path.join(out_dir, "o.npy"))).astype(np.float64)
    row["nan"] = bool(np.isnan(o).any())
    row["err_o"] = rel(o, ref["o"])
    ok = not row["nan"] and row["err_o"] <= BF16_TOL[spec.dtype]
    if spec.attention:
        lse = np.load(os.path.join(out_dir, "lse.npy")).astype(np.float64)
        ninf = np.isneginf(ref["lse"])
        row["masked_rows"] = int(ninf.sum())
        ok &= bool((np.isneginf(lse) == ninf).all()) and not np.isnan(lse).any()
        ok &= bool((o[ninf] == 0).all())
        if (~ninf).any():
            row["err_lse"] = rel(lse[~ninf], ref["lse"][~ninf])
            ok &= row["err_lse"] <= 1e-3
        peers = sdpa_errors(spec, x, ref["o"])
        row["sdpa"] = peers
        best = [v for v in peers.values() if isinstance(v, float)]
        if best:
            row["ratio_to_best_sdpa"] = row["err_o"] / max(min(best), 1e-12)
            ok &= row["err_o"] <= 2 * min(best)
    if "ht" in ref:
        ht = np.load(os.path.join(out_dir, "ht.npy")).astype(np.float64)
        row["err_ht"] = rel(ht, ref["ht"])
        ht_tol = BF16_TOL[spec.dtype] if "chunkwise" in kernel_kind else HT_TOL_F32_STEPS
        row["ht_tol"] = ht_tol
        ok &= row["err_ht"] <= ht_tol
    row["ok"] = bool(ok)
    return row


def sanitize(exec_path, manifest_path, spec, work, tool, kernel_kind="simt", report_dir=None):
    B, Sq, Sk = 1, 70, 45
    # Makes the inputs; judged with the kernel's own tolerances (a chunkwise
    # kernel's state in bf16 steps, not the f32 recurrence's).
    row = run_case(exec_path, manifest_path, spec, B, Sq, Sk, 7, work, kernel_kind)
    in_dir, out_dir = os.path.join(work, "in"), os.path.join(work, "out2")
    try:
        r = subprocess.run(["compute-sanitizer", "--tool", tool, "--error-exitcode", "9",
                            exec_path, "--kernel", manifest_path, "--inputs", in_dir,
                            "--outputs", out_dir, "--device", "cuda"], capture_output=True,
                           text=True, timeout=4 * CASE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"tool": tool, "rc": -1, "summary": "timeout", "ok": False,
                "case_ok": row.get("ok")}
    tail = (r.stdout + r.stderr).strip().splitlines()[-1:] or [""]
    summary = tail[0][:120]
    if r.returncode != 0 and report_dir:  # the whole report, for the hazard's details
        name = os.path.splitext(os.path.basename(manifest_path))[0]
        with open(os.path.join(report_dir, f"{tool}-{name}.txt"), "w") as f:
            f.write((r.stdout + r.stderr)[-200000:])
    if not row.get("ok"):  # the unsanitized run of the same case was wrong
        summary = f"the case itself failed (err {row.get('err_o', float('nan')):.2e}); " + summary
    return {"tool": tool, "rc": r.returncode, "summary": summary,
            "ok": r.returncode == 0 and bool(row.get("ok")), "case_ok": row.get("ok")}


def check_case(exec_path, case):
    """One (kernel, shape) case in a worker process."""
    mpath, name, chip, shape, seed = case
    B, Sq, Sk = shape[:3]
    # A fourth entry: the key ramp (softmax) or {"gates": (lo, hi)} (gated linear).
    extra = shape[3] if len(shape) > 3 else None
    key_ramp = extra if isinstance(extra, float) else None
    gate_range = extra.get("gates") if isinstance(extra, dict) else None
    doc_order = extra.get("docs", "sorted") if isinstance(extra, dict) else "sorted"
    with open(mpath) as f:
        man = json.load(f)
    spec = PySpec(man["spec"])
    with tempfile.TemporaryDirectory() as work:
        try:
            row = run_case(exec_path, mpath, spec, B, Sq, Sk, seed, work,
                           man.get("kernel", "simt"), key_ramp, gate_range, doc_order)
        except Exception as e:  # noqa: BLE001 - a crashed check is a failed row
            row = {"B": B, "Sq": Sq, "Sk": Sk, "ok": False, "error": repr(e)[:300]}
    row.update(kernel=name, chip=chip)
    return row


def select_manifests(manifests, root, filters):
    """The manifests (paths under root) that any filter names: DIR/NAME exactly,
    DIR/ (a directory's kernels) or an fnmatch glob of DIR/NAME. A filter that
    matches nothing raises ValueError: a typo must not pass as an empty run."""
    names = {m: os.path.relpath(m, root)[:-len(".json")] for m in manifests}
    picked = set()
    for w in (f.strip() for f in filters if f.strip()):
        if w.endswith("/"):
            hits = {m for m, n in names.items() if "/" + w in "/" + n}
        else:
            hits = {m for m, n in names.items()
                    if fnmatch.fnmatchcase(n, w) or n.endswith("/" + w) or n == w}
        if not hits:
            raise ValueError(f"--only filter '{w}' matches no kernel under {root}")
        picked |= hits
    return [m for m in manifests if m in picked]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exec", required=True)
    ap.add_argument("--kernels", required=True, help="directory of manifests (recursively)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--sanitize", action="store_true")
    ap.add_argument("--jobs", type=int, default=min(16, os.cpu_count() or 8),
                    help="cases checked in parallel")
    ap.add_argument("--only", default="",
                    help="comma-separated filters: DIR/NAME (e.g. sm_90a/gqa), DIR/ (every kernel "
                         "of a directory) or a glob of DIR/NAME (tc_sm_90a/gated*); a filter that "
                         "matches no kernel is an error")
    args = ap.parse_args()
    manifests = sorted(glob.glob(os.path.join(args.kernels, "**", "*.json"), recursive=True))
    if args.only:
        try:
            manifests = select_manifests(manifests, args.kernels, args.only.split(","))
        except ValueError as e:
            sys.exit(f"run_gpu_checks.py: {e}")
    rows, sanit = [], []
    # Cases run in parallel worker processes (each its own attn-exec and CUDA
    # context; the float64 reference is CPU-bound); rows keep their order.
    cases = []
    for mi, mpath in enumerate(manifests):
        with open(mpath) as f:
            man = json.load(f)
        for si, shape in enumerate(shapes_for(PySpec(man["spec"]))):
            cases.append((mpath, man["name"], man["chip"], shape, 1000 * mi + si))
    os.makedirs(args.out, exist_ok=True)
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(check_case, args.exec, c) for c in cases]
        for c, fut in zip(cases, futures):
            row = fut.result()
            rows.append(row)
            print(json.dumps(row), flush=True)
            print(f"{'PASS' if row.get('ok') else 'FAIL'} {os.path.relpath(c[0], args.kernels)} "
                  f"B={row['B']} Sq={row['Sq']} Sk={row['Sk']} "
                  f"err={row.get('err_o', float('nan')):.2e} {row.get('error', '')}", flush=True)
            # Written after every case: a run cut short still leaves its rows.
            with open(os.path.join(args.out, "gpu_checks.partial.json"), "w") as f:
                json.dump({"rows": rows, "sanitizer": sanit}, f)
    for mpath in manifests:
        with open(mpath) as f:
            man = json.load(f)
        if args.sanitize and man["chip"] == "sm_90a":
            spec = PySpec(man["spec"])
            for tool in ("memcheck", "racecheck"):
                with tempfile.TemporaryDirectory() as work:
                    s = sanitize(args.exec, mpath, spec, work, tool, man.get("kernel", "simt"),
                                 args.out)
                s.update(kernel=man["name"])
                sanit.append(s)
                print(json.dumps(s), flush=True)

    try:  # for the record
        import torch
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "?"
    except ImportError:
        gpu = "?"
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gpu_checks.json"), "w") as f:
        json.dump({"date": stamp, "gpu": gpu, "rows": rows, "sanitizer": sanit}, f, indent=1)
    lines = [f"# GPU correctness ({gpu}, {stamp})", "",
             "| kernel | chip | B | Sq | Sk | Hq/Hkv | Dqk/Dv | err(o) | err(lse) or err(ht) (tol) | masked rows | SDPA flash / cudnn err | ok |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sd = r.get("sdpa", {})
        sds = " / ".join(f"{sd[k]:.2e}" if isinstance(sd.get(k), float) else "-" for k in ("flash", "cudnn")) if sd else "-"
        sk = f"{r['Sk']} (keys ramped to {r['key_ramp']:g}x)" if r.get("key_ramp") else r["Sk"]
        if r.get("gates"):
            sk = f"{r['Sk']} (gates -{r['gates'][1]:g} .. -{r['gates'][0]:g} per step)"
        if r.get("docs"):
            sk = f"{r['Sk']} (document ids {r['docs']})"
        lines.append(f"| {r['kernel']} | {r['chip']} | {r['B']} | {r['Sq']} | {sk} | {r['Hq']}/{r.get('Hkv', '-')} | "
                     f"{r['Dqk']}/{r['Dv']} | {r.get('err_o', float('nan')):.2e} | "
                     f"{second_error(r)} | {r.get('masked_rows', '-')} | {sds} | "
                     f"{'PASS' if r.get('ok') else 'FAIL ' + r.get('error', '')} |")
    if sanit:
        lines += ["", "| kernel | compute-sanitizer | result |", "|---|---|---|"]
        for s in sanit:
            lines.append(f"| {s['kernel']} | {s['tool']} | {'clean' if s['ok'] else 'FAIL: ' + s['summary']} |")
    md = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "gpu_checks.md"), "w") as f:
        f.write(md)
    failed = [r for r in rows if not r.get("ok")] + [s for s in sanit if not s["ok"]]
    print(md[-6000:])
    print(f"{len(rows) - len([r for r in rows if not r.get('ok')])}/{len(rows)} cases pass; "
          f"{len(sanit) - len([s for s in sanit if not s['ok']])}/{len(sanit)} sanitizer runs clean")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
