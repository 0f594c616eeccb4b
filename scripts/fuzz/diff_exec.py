#!/usr/bin/env python3
"""Differential fuzzer: random *valid* small specs (every kind, masks, score
functions, custom expressions and tensors, GQA, layouts, dtypes, tile and chunk
options, odd sizes), run through attn-exec --device cpu and --device reference,
both checked against the independent NumPy float64 model in
test/exec/attn_numpy.py at the exec tests' tolerances. A crash, a rejection or
a wrong result is kept under OUT/crashes/ (spec, inputs, dims) and counted.

Session 22: 5,000 specs, no crash and no rejection; 7 results past the f32
tolerance, all f32 rounding (normalized linear attention with denominators down
to 2e-3, and a score offset of 3 Sk). test/python/test_fuzz_spec.py runs a
short seeded campaign.

usage: scripts/fuzz/diff_exec.py [--specs N] [--seed S] [--workers W]
                                 [--seconds T] [--out DIR] [--bin DIR]
"""
import collections, json, os, random, shutil, sys, time, traceback
from multiprocessing import Pool

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "test", "exec"))
sys.path.insert(0, HERE)
import numpy as np  # noqa: E402
import attn_numpy as an  # noqa: E402
from fuzz_spec import campaign_parser, classify, run, signature  # noqa: E402

# Set by main() (and in each worker, through the pool's initializer).
EXEC = os.path.join(ROOT, "build", "bin", "attn-exec")
OUT = "fuzz-out"


def safe_int_expr(r, depth, tensors):
    if depth <= 0 or r.random() < 0.3:
        c = r.randrange(6)
        if c < 4: return r.choice(["b", "h", "q", "k", "Sq", "Sk", "q", "k"])
        if c == 4 and tensors.get("i"):
            return "ids[b, k]"
        return str(r.choice([0, 1, 2, 3, 5, 16, 64, 100]))
    c = r.randrange(6)
    a = safe_int_expr(r, depth - 1, tensors); b = safe_int_expr(r, depth - 1, tensors)
    if c == 0: return "(%s %s %s)" % (a, r.choice(["+", "-", "*"]), b)
    if c == 1: return "(%s %s %d)" % (a, r.choice(["/", "%"]), r.choice([1, 2, 3, 7, 64, -3]))
    if c == 2: return "%s(%s, %s)" % (r.choice(["min", "max"]), a, b)
    if c == 3: return "abs(%s)" % a
    if c == 4: return "-%s" % a
    return "select(%s, %s, %s)" % (safe_bool(r, depth - 1, tensors), a, b)


def safe_bool(r, depth, tensors):
    if depth <= 0 or r.random() < 0.3:
        return "%s %s %s" % (safe_int_expr(r, 1, tensors), r.choice(["<", "<=", ">", ">=", "==", "!="]),
                             safe_int_expr(r, 1, tensors))
    c = r.randrange(4)
    if c == 0: return "(%s %s %s)" % (safe_bool(r, depth - 1, tensors), r.choice(["&&", "||"]), safe_bool(r, depth - 1, tensors))
    if c == 1: return "!(%s)" % safe_bool(r, depth - 1, tensors)
    if c == 2: return r.choice(["true", "false", "k <= q + Sk - Sq", "q - k < 8", "k % 3 != 1"])
    return "%s %s %s" % (safe_int_expr(r, depth - 1, tensors), r.choice(["<", "<=", ">", ">=", "==", "!="]),
                         safe_int_expr(r, depth - 1, tensors))


def safe_float_expr(r, depth, tensors):
    if depth <= 0 or r.random() < 0.3:
        c = r.randrange(6)
        if c < 3: return "score"
        if c == 3 and tensors.get("f"): return "bias[h, k]"
        if c == 4: return r.choice(["0.5", "1.5", "-2.0", ".25", "3."])
        return safe_int_expr(r, 1, tensors)
    c = r.randrange(7)
    a = safe_float_expr(r, depth - 1, tensors); b = safe_float_expr(r, depth - 1, tensors)
    if c <= 1: return "(%s %s %s)" % (a, r.choice(["+", "-", "*"]), b)
    if c == 2: return "(%s / %s)" % (a, r.choice(["2.0", "3", "0.5", "7.0"]))
    if c == 3: return "tanh(%s)" % a
    if c == 4: return "exp(%s / 16.0)" % a if r.random() < 0.5 else "exp(-abs(%s))" % a
    if c == 5: return "%s(%s, %s)" % (r.choice(["min", "max"]), a, b)
    return "select(%s, %s, %s)" % (safe_bool(r, 1, tensors), a, b)


def gen_spec(r):
    kind = r.choice(["attention"] * 6 + ["linear_attention", "gated_linear_attention"])
    dtype = r.choice(["f32", "f32", "f16", "bf16"])
    layout = r.choice(["bhsd", "bhsd", "bshd"])
    Dqk = r.choice([1, 2, 3, 8, 16, 17, 32, 64])
    Dv = r.choice([Dqk, Dqk, 1, 5, 8, 24])
    B = r.choice([1, 1, 2])
    d = {"name": "t", "kind": kind, "dtype": dtype, "layout": layout}
    if r.random() < 0.3:
        d["scale"] = r.choice([0.1, 0.5, 1.0, 2.0, 1e-3])
    if kind == "attention":
        Hkv = r.choice([1, 1, 2, 3])
        Hq = Hkv * r.choice([1, 2, 3])
        Sq = r.choice([1, 2, 5, 17, 33, 64, 65, 100])
        Sk = r.choice([1, 3, 5, 17, 64, 65, 100, 130])
        shape = {"batch": r.choice([None, B]), "heads_q": r.choice([None, Hq]),
                 "heads_kv": r.choice([None, Hkv]), "seq_q": r.choice([None, None, Sq]),
                 "seq_k": r.choice([None, None, Sk]), "head_dim": Dqk}
        if Dv != Dqk or r.random() < 0.2:
            shape["head_dim_v"] = Dv
        if shape["heads_q"] is None and shape["heads_kv"] is not None and r.random() < 0.5:
            shape["heads_kv"] = None
        d["shape"] = shape
        tensors = {}
        ten = {}
        mask = {}
        if r.random() < 0.4: mask["causal"] = True
        if r.random() < 0.25: mask["window"] = {"left": r.choice([0, 1, 3, 16, 70]), "right": r.choice([0, 1, 5, 64])}
        if r.random() < 0.2: mask["block_sparse"] = {"block_q": r.choice([1, 3, 16, 17, 64]), "block_k": r.choice([1, 5, 16, 32, 64])}
        if r.random() < 0.2: mask["documents"] = True
        if r.random() < 0.2: ten["i"] = True
        if r.random() < 0.25: ten["f"] = True
        if r.random() < 0.35 or ten.get("i"):
            mask["custom"] = safe_bool(r, r.randrange(1, 4), ten)
            if ten.get("i") and "ids[" not in mask["custom"]:
                mask["custom"] = "(%s) || ids[b, k] == 1" % mask["custom"]
        score = {}
        if r.random() < 0.2: score["softcap"] = r.choice([1.0, 5.0, 30.0])
        if r.random() < 0.2: score["alibi"] = r.choice([True, "per_head", "per_batch_head"])
        if r.random() < 0.35 or ten.get("f"):
            score["custom"] = safe_float_expr(r, r.randrange(1, 4), ten)
            if ten.get("f") and "bias[" not in score["custom"]:
                score["custom"] = "%s + bias[h, k]" % score["custom"]
        if ten.get("i") and "ids[" not in score.get("custom", "") + mask.get("custom", ""):
            ten.pop("i")
        if ten.get("i"): tensors["ids"] = {"dtype": "i32", "shape": [r.choice([None, B]) if False else B, None]}
        if ten.get("f"): tensors["bias"] = {"dtype": "f32", "shape": [Hq, None]}
        if mask: d["mask"] = mask
        if score: d["score"] = score
        if tensors: d["tensors"] = tensors
        if r.random() < 0.3: d["outputs"] = {"lse": True}
        if r.random() < 0.4:
            d["options"] = {k: r.choice([1, 2, 3, 16, 17, 32, 64, 128]) for k in r.sample(["block_q", "block_k"], r.randrange(1, 3))}
        dims = (B, Hq, Hkv, Sq, Sk, Dqk, Dv)
        # bias uses Sk for its null dim, ids [B, Sk]
    else:
        H = r.choice([1, 2, 3])
        S = r.choice([1, 2, 5, 17, 63, 64, 65, 130])
        d["shape"] = {"batch": r.choice([None, B]), "heads": r.choice([None, H]), "seq": r.choice([None, S]),
                      "head_dim": Dqk}
        if Dv != Dqk: d["shape"]["head_dim_v"] = Dv
        if kind == "linear_attention":
            d["feature_map"] = r.choice(["identity", "elu_plus_one", "relu"])
            if r.random() < 0.4:
                d["normalize"] = True
        else:
            d["gate"] = r.choice(["scalar", "vector", "head_constant"])
        if not d.get("normalize") and r.random() < 0.5:
            d["state"] = {"initial": r.random() < 0.5, "final": r.random() < 0.5}
        if r.random() < 0.3: d["options"] = {"chunk": r.choice([1, 2, 3, 16, 17, 64, 128])}
        dims = (B, H, H, S, S, Dqk, Dv)
    return d, dims


def run_one(args):
    idx, seed = args
    r = random.Random(seed * 31337 + idx)
    d, dims = gen_spec(r)
    wd = os.path.join(OUT, "work", "dx%d" % idx)
    os.makedirs(wd, exist_ok=True)
    res = []
    try:
        spec = an.PySpec(d)
        sp = an.write_spec(wd, d)
        B, Hq, Hkv, Sq, Sk, Dqk, Dv = dims
        rng = np.random.default_rng(idx)
        files, x = an.make_inputs(spec, rng, B, Hq, Hkv, Sq, Sk, Dqk, Dv,
                                  doc_order=r.choice(["sorted", "shuffled", "disjoint"]))
        an.save_inputs(wd + "/in", files)
        try:
            ref = an.reference(spec, x)
        except Exception as e:
            ref = None
            res.append(("numpy", "numpy-failed: %r" % e))
        for dev in ("reference", "cpu"):
            od = wd + "/out_" + dev
            cmd = [EXEC, sp, "--inputs", wd + "/in", "--outputs", od, "--device", dev]
            rc, so, se = run(cmd, timeout=120)
            cat = classify(rc, se)
            if cat:
                res.append((dev, "CRASH %s %s" % (cat, signature(se)), " ".join(cmd), se[:3000]))
                continue
            if rc != 0:
                res.append((dev, "REJECTED rc=%d %s" % (rc, se.strip()[:300]), " ".join(cmd), se[:3000]))
                continue
            if ref is None:
                continue
            try:
                an.check_outputs(spec, od, ref, an.tolerance(dev, spec))
            except AssertionError as e:
                res.append((dev, "WRONG %s" % str(e)[:400], " ".join(cmd), ""))
            except Exception as e:
                res.append((dev, "CHECKERR %r" % e, " ".join(cmd), ""))
    except Exception as e:
        res.append(("harness", "HARNESS %s" % traceback.format_exc()[-400:]))
    bad = [x for x in res if x[0] != "numpy"]
    if bad:
        keep = os.path.join(OUT, "crashes", "diff_%d_%d" % (seed, idx))
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(wd, keep)
        json.dump({"dims": dims}, open(keep + "/dims.json", "w"))
    shutil.rmtree(wd, ignore_errors=True)
    return idx, d, dims, res


def _init_worker(exec_path, out):
    global EXEC, OUT
    EXEC, OUT = exec_path, out


def main(argv=None):
    a = campaign_parser(__doc__, "--specs", 500, "work files, crashes/, the log",
                        "folder of attn-exec").parse_args(argv)
    out = os.path.abspath(a.out)
    os.makedirs(os.path.join(out, "crashes"), exist_ok=True)
    _init_worker(os.path.join(os.path.abspath(a.bin), "attn-exec"), out)
    log = open(os.path.join(out, "diff_log_%d.jsonl" % a.seed), "w")
    stats = collections.Counter()
    bad = []
    t0 = time.time()
    done = 0
    with Pool(a.workers, initializer=_init_worker, initargs=(EXEC, OUT)) as pool:
        for idx, d, dims, res in pool.imap_unordered(run_one, [(i, a.seed) for i in range(a.specs)]):
            done += 1
            if not res:
                stats["agree"] += 1
            for x in res:
                stats[x[1].split()[0]] += 1
                log.write(json.dumps({"idx": idx, "spec": d, "dims": dims, "res": x}) + "\n")
                log.flush()
                if x[0] != "numpy":
                    bad.append({"idx": idx, "spec": d, "dims": dims, "device": x[0], "what": x[1]})
            if done % 50 == 0:
                print("%d done %.0fs %s" % (done, time.time() - t0, dict(stats)), file=sys.stderr,
                      flush=True)
            if time.time() - t0 > a.seconds:
                pool.terminate()
                break
    print(done, dict(stats))
    return {"done": done, "stats": dict(stats), "bad": bad}


if __name__ == "__main__":
    main()
