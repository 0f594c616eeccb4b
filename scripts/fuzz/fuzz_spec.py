#!/usr/bin/env python3
"""Structural mutation fuzzer for attn JSON specs.

Each mutant is run through
  attn-compile --chip=sm_90a -q -o OUT spec.json   (plus random kernel flags)
  attn-compile --chip=sm_80  -q -o OUT spec.json
  attn-opt --spec spec.json --attn-cpu-pipeline     (the CPU path's lowering)
and classified: signal / timeout / crash pattern in stderr / rc not in {0,1} /
rc 1 with empty stderr.  Everything else (rc 0, or rc 1 with a message) is fine.

The seeds are every spec in examples/ and test/; a mutant that makes any of the
three misbehave is kept under OUT/crashes/ and listed in OUT/summary.json. Session
22 ran ~5,000 mutants (about 40 minutes on 2 cores) and fixed what they found
(bench/NOTES.md); test/python/test_fuzz_spec.py runs a short seeded campaign.

usage: scripts/fuzz/fuzz_spec.py [--mutants N] [--seed S] [--workers W]
                                 [--seconds T] [--out DIR] [--bin DIR]
"""
import argparse, collections, copy, glob, hashlib, json, math, os, random, re, resource, \
    shutil, subprocess, sys, time
from multiprocessing import Pool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED_FILES = sorted(set(glob.glob(ROOT + "/examples/*.json") +
                        glob.glob(ROOT + "/test/**/*.json", recursive=True)))
SEED_FILES = [f for f in SEED_FILES if "/results/" not in f]
# Set by main() (and in each worker, through the pool's initializer).
BIN = os.path.join(ROOT, "build", "bin")
OUT = "fuzz-out"


# -- running a tool and classifying what it did
ENV = dict(os.environ)
ENV["LLVM_SYMBOLIZER_PATH"] = "/usr/lib/llvm-22/bin/llvm-symbolizer"

CRASH_PATTERNS = ["Stack dump", "PLEASE submit", "Assertion", "UNREACHABLE",
                  "terminate called", "LLVM ERROR", "Segmentation fault",
                  "AddressSanitizer", "double free", "corrupted", "stack smashing",
                  "what():", "Aborted"]



def _limit():
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


def run(cmd, timeout=60, cwd=None, stdin=None):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, env=ENV, cwd=cwd, stdin=stdin, preexec_fn=_limit)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        return 124, "", (e.stderr or b"").decode("utf-8", "replace") + "\n<TIMEOUT>"


def classify(rc, err):
    """Returns None for ok / clean error, else a category string."""
    if rc == 124:
        return "timeout"
    if rc < 0 or rc >= 128:
        return "signal%d" % (-rc if rc < 0 else rc - 128)
    for p in CRASH_PATTERNS:
        if p in err:
            return "pattern:" + p
    if rc not in (0, 1):
        return "rc%d" % rc
    if rc == 1 and not err.strip():
        return "silent-fail"
    return None


FRAME_RE = re.compile(r"#\d+ 0x[0-9a-f]+ (?:in )?(.+?)(?: \(|$| /)", re.M)


def signature(err):
    """A dedup key: the first stack frame naming attn / mlir code below the
    signal handler, else the assertion / error message."""
    for pat in [r"Assertion `[^']*' failed", r"UNREACHABLE[^\n]*", r"LLVM ERROR:[^\n]*",
                r"terminate called[^\n]*", r"what\(\):[^\n]*"]:
        m = re.search(pat, err)
        if m:
            return re.sub(r"\d+", "N", m.group(0))[:160]
    frames = FRAME_RE.findall(err)
    skip = ("llvm::sys::", "SignalHandler", "libc.so", "__restore_rt", "PrintStackTrace",
            "RunSignalHandlers", "_L_unlock", "raise", "abort", "__pthread_kill",
            "0x", "std::", "__libc", "gsignal", "libpthread")
    for f in frames:
        f = f.strip()
        if any(s in f for s in skip):
            continue
        return f[:160]
    lines = [l for l in err.splitlines() if l.strip()]
    return (lines[0][:160] if lines else "<no stderr>")


def first_line(err):
    for l in err.splitlines():
        if l.strip():
            return l.strip()
    return ""


def norm_msg(err):
    l = first_line(err)
    l = re.sub(re.escape(OUT) + r"\S*", "F", l)
    l = re.sub(r"\d+", "N", l)
    l = re.sub(r"got .*", "got X", l)
    l = re.sub(r"'[^']*'", "'X'", l)
    l = re.sub(r'"[^"]*"', '"X"', l)
    return l[:140]


# -- mutants

def load_seeds():
    seeds = []
    for f in SEED_FILES:
        try:
            with open(f) as fh:
                d = json.load(fh)
            if isinstance(d, dict) and "kind" in d:
                seeds.append(d)
        except Exception:
            pass
    return seeds

INTS = [0, 1, -1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 80, 96, 100,
        112, 127, 128, 129, 160, 192, 255, 256, 257, 384, 512, 1023, 1024, 4096,
        65535, 65536, 2**31 - 1, 2**31, 2**32, 2**32 + 64, 2**62, 2**63 - 1, 2**63,
        2**64, -2**31, -2**63, 10**30]
FLOATS = [0.0, -0.0, 1.0, 64.0, 0.5, 1e-45, 1e-300, 1e308, -1e308, 3.4e38, 3.5e38,
          1e39, -1.0, 2.5, 1e-38, 128.0000001]
HEAD_DIMS = [1, 2, 3, 4, 8, 15, 16, 24, 32, 40, 48, 63, 64, 65, 72, 80, 96, 100, 112,
             127, 128, 129, 144, 160, 192, 200, 256, 384, 512]
BLOCKS = [1, 2, 3, 5, 8, 15, 16, 17, 24, 31, 32, 48, 63, 64, 65, 96, 100, 127, 128, 129,
          160, 192, 256, 384, 512, 1000, 1024, 4096, 65536, 2**31 - 1]


def rand_scalar(r):
    c = r.randrange(12)
    if c == 0: return None
    if c == 1: return r.choice([True, False])
    if c == 2: return r.choice(INTS)
    if c == 3: return r.choice(FLOATS)
    if c == 4: return r.choice(["", "x", "f16", "bf16", "f32", "attention", "bhsd",
                                 "bshd", "scalar", "vector", "head_constant",
                                 "identity", "relu", "elu_plus_one", "per_head",
                                 "per_batch_head", "true", "null", "64"])
    if c == 5: return "A" * r.choice([1000, 100000])
    if c == 6: return r.choice(["\u00e9", "\u4e2d\u6587", "\U0001F600", "\u0000x",
                                 "a\u200bb", "\ud7ff", "line\nbreak", "\\", "\""])
    if c == 7: return []
    if c == 8: return {}
    if c == 9: return [r.choice(INTS), None]
    if c == 10: return {"a": 1}
    return r.choice(INTS + FLOATS)


# ---------------------------------------------------------------- expressions
NAMES_MASK = ["b", "h", "q", "k", "Sq", "Sk"]
FUNCS = ["select", "min", "max", "abs", "exp", "tanh", "foo", "sqrt", "log"]


def rand_expr(r, depth, names, tensors):
    if depth <= 0 or r.random() < 0.25:
        c = r.randrange(10)
        if c < 4: return r.choice(names)
        if c == 4: return str(r.choice([0, 1, 2, 3, 7, 64, 128, 256, 1000, 2**31, 2**63 - 1,
                                       2**63, 2**64, 10**30]))
        if c == 5: return r.choice(["1.5", "0.0", ".5", "3.", "2e-3", "1e38", "3.5e38",
                                    "1e-50", "1e400", "0.0e0", "1e", "1.2.3"])
        if c == 6: return r.choice(["true", "false"])
        if c == 7 and tensors:
            t = r.choice(list(tensors))
            n = r.choice([1, 2, 2, 2, 3, 0])
            return "%s[%s]" % (t, ", ".join(rand_expr(r, depth - 1, names, tensors) for _ in range(n)))
        if c == 8: return r.choice(["foo", "bar", "score2", "_", "Q", "B"])
        return r.choice(names)
    c = r.randrange(9)
    a = rand_expr(r, depth - 1, names, tensors)
    b = rand_expr(r, depth - 1, names, tensors)
    if c <= 2:
        op = r.choice(["+", "-", "*", "/", "%", "+", "-", "*"])
        return "%s %s %s" % (a, op, b)
    if c == 3:
        op = r.choice(["<", "<=", ">", ">=", "==", "!="])
        return "%s %s %s" % (a, op, b)
    if c == 4:
        return "%s %s %s" % (a, r.choice(["&&", "||"]), b)
    if c == 5:
        return "%s%s" % (r.choice(["-", "!", "- -", "!!"]), a)
    if c == 6:
        return "(%s)" % a
    if c == 7:
        f = r.choice(FUNCS)
        nargs = {"select": 3, "min": 2, "max": 2}.get(f, 1)
        if r.random() < 0.1: nargs = r.randrange(0, 5)
        return "%s(%s)" % (f, ", ".join(rand_expr(r, depth - 1, names, tensors) for _ in range(nargs)))
    return "%s / 0" % a if r.random() < 0.5 else "%s %% 0" % a


def special_expr(r, score):
    base = "score" if score else "k <= q"
    c = r.randrange(14)
    n = r.choice([200, 255, 256, 257, 1000, 10000, 100000])
    if c == 0: return "(" * n + base + ")" * n
    if c == 1: return "-" * n + ("score" if score else "k") + (" < 0" if not score else "")
    if c == 2: return "!" * n + "(k <= q)"
    if c == 3: return " + ".join(["score" if score else "k"] * n) + ("" if score else " > 0")
    if c == 4: return "abs(" * n + ("score" if score else "k") + ")" * n + ("" if score else " > 0")
    if c == 5: return ("score / 0.0" if score else "q / 0 == k % 0")
    if c == 6: return ("score * 1e38 * 1e38" if score else "q * 9223372036854775807 > k")
    if c == 7: return ("score + 9223372036854775807" if score else "q - -9223372036854775807 - 10 > k")
    if c == 8: return "(" * n
    if c == 9: return ")" * 3 + base
    if c == 10: return ("select(true, score, score)" if score else "select(k < q, true, false)")
    if c == 11: return ("score" if score else "true") + " " * 100000
    if c == 12: return ("exp(score * 1000)" if score else "false")
    return ("tanh(score) * " + "1" * 400) if score else "k <= q + Sk - Sq && " * 300 + "true"


def rand_tensors(r):
    t = {}
    for _ in range(r.choice([1, 1, 2, 3])):
        name = r.choice(["bias", "ids", "t", "x1", "exp", "q", "score", "B", "_"])
        shape = [r.choice([None, None, 1, 16, 4, 0, -1, 2**31]) for _ in range(r.choice([1, 2, 2, 3, 0, 5]))]
        t[name] = {"dtype": r.choice(["f32", "i32", "f32", "f16", "i64"]), "shape": shape}
    return t


# ---------------------------------------------------------------- mutations
def paths(d, prefix=()):
    out = []
    if isinstance(d, dict):
        for k, v in d.items():
            out.append(prefix + (k,))
            out.extend(paths(v, prefix + (k,)))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out.append(prefix + (i,))
            out.extend(paths(v, prefix + (i,)))
    return out


def get_parent(d, path):
    for p in path[:-1]:
        d = d[p]
    return d


def m_drop(r, d):
    ps = paths(d)
    if ps:
        p = r.choice(ps)
        par = get_parent(d, p)
        del par[p[-1]]


def m_settype(r, d):
    ps = paths(d)
    if ps:
        p = r.choice(ps)
        get_parent(d, p)[p[-1]] = rand_scalar(r)


def shape_keys(d):
    if d.get("kind") == "attention":
        return ["batch", "heads_q", "heads_kv", "seq_q", "seq_k", "head_dim", "head_dim_v"]
    return ["batch", "heads", "seq", "head_dim", "head_dim_v"]


def m_shape(r, d):
    s = d.setdefault("shape", {})
    if not isinstance(s, dict):
        d["shape"] = s = {}
    k = r.choice(shape_keys(d) + ["head_dim", "head_dim", "head_dim_v"])
    if k.startswith("head_dim"):
        s[k] = r.choice(HEAD_DIMS + [0, -1, 2**31])  # 2**31 - 1: known hang (finding 01)
    elif k in ("heads_q", "heads_kv", "heads"):
        s[k] = r.choice([None, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64, 128, 0, -1, 2**31 - 1, 2**31])
    else:
        s[k] = r.choice([None, 1, 2, 3, 17, 63, 64, 65, 127, 128, 129, 4096, 2**31 - 1, 0, -1, 2**31, 2**40])


def m_gqa(r, d):
    s = d.setdefault("shape", {})
    if isinstance(s, dict) and d.get("kind") == "attention":
        hq = r.choice([1, 2, 3, 6, 8, 12, 16, 32, 64, 7])
        s["heads_q"] = hq
        s["heads_kv"] = r.choice([1, 2, 3, 4, 5, 8, 16, hq, hq * 2, None])


def m_mask(r, d):
    m = d.get("mask")
    if not isinstance(m, dict):
        d["mask"] = m = {}
    c = r.randrange(7)
    if c == 0: m["causal"] = r.choice([True, False, 1, "true", None])
    elif c == 1:
        m["window"] = {"left": r.choice([0, 1, 63, 64, 127, 128, 1023, 2**31 - 1, 2**31, -1, 2**62]),
                       "right": r.choice([0, 1, 64, 127, 2**31 - 1, 2**31, -1])}
        if r.random() < 0.2: del m["window"][r.choice(["left", "right"])]
    elif c == 2:
        m["block_sparse"] = {"block_q": r.choice(BLOCKS + [0, -1]), "block_k": r.choice(BLOCKS + [0, -1])}
    elif c == 3: m["documents"] = r.choice([True, False, True])
    elif c == 4:
        tens = d.get("tensors") if isinstance(d.get("tensors"), dict) else {}
        m["custom"] = rand_expr(r, r.randrange(1, 7), NAMES_MASK, tens)
    elif c == 5:
        m["custom"] = special_expr(r, False)
    else:
        m["custom"] = r.choice(["k <= q + Sk - Sq", "q - k < 256 && k <= q", "k <= q",
                                "q >= k && q - k <= 64", "k < 128", "q == k", "false", "true",
                                "k > q + Sk - Sq", "(q / 64) == (k / 64)", "k % 2 == 0",
                                "k >= q + Sk - Sq - 100 && k <= q + Sk - Sq + 100",
                                "k <= q - 9223372036854775807", "k - q <= 2147483648"])


def m_score(r, d):
    s = d.get("score")
    if not isinstance(s, dict):
        d["score"] = s = {}
    c = r.randrange(5)
    if c == 0: s["softcap"] = r.choice([50, 30.0, 1e-45, 1e-30, 1e38, 3.4e38, 1e39, 0, -1, 0.5, True])
    elif c == 1: s["alibi"] = r.choice([True, False, "per_head", "per_batch_head", "x", 1])
    elif c == 2:
        tens = d.get("tensors") if isinstance(d.get("tensors"), dict) else {}
        s["custom"] = rand_expr(r, r.randrange(1, 7), NAMES_MASK + ["score", "score"], tens)
    elif c == 3: s["custom"] = special_expr(r, True)
    else: s["custom"] = r.choice(["score", "score * 2", "score + bias[h, k]", "-score",
                                  "score / 0.0", "0", "1", "k", "score * 1e38",
                                  "select(k > q, -1e38, score)", "exp(score)", "tanh(score)"])


def m_tensors(r, d):
    d["tensors"] = rand_tensors(r)
    tn = list(d["tensors"])
    # make them used in an expression, sometimes
    if r.random() < 0.7:
        t = r.choice(tn)
        rank = len(d["tensors"][t]["shape"]) if isinstance(d["tensors"][t].get("shape"), list) else 1
        idx = ", ".join(r.choice(["b", "h", "q", "k", "0", "Sq - 1", "k + 1000000"]) for _ in range(rank))
        if r.random() < 0.5:
            d.setdefault("score", {}) if isinstance(d.get("score"), dict) else d.__setitem__("score", {})
            d["score"]["custom"] = "score + %s[%s]" % (t, idx)
        else:
            d.setdefault("mask", {}) if isinstance(d.get("mask"), dict) else d.__setitem__("mask", {})
            d["mask"]["custom"] = "%s[%s] %s 0" % (t, idx, r.choice(["==", ">", "!="]))


def m_options(r, d):
    o = d.get("options")
    if not isinstance(o, dict):
        d["options"] = o = {}
    k = r.choice(["block_q", "block_k", "chunk", "block_q", "block_k", "foo"])
    o[k] = r.choice(BLOCKS + [0, -1, 64.0, None, "64", 2**31, 2**63])


def m_top(r, d):
    k = r.choice(["dtype", "layout", "scale", "kind", "name", "outputs", "feature_map",
                  "normalize", "gate", "state"])
    vals = {
        "dtype": ["f16", "bf16", "f32", "f64", "F16", ""],
        "layout": ["bhsd", "bshd", "bsdh", ""],
        "scale": [1, 0.125, 0, -1, 1e-45, 1e-40, 1e38, 3.5e38, 1e308, 2**63, True],
        "kind": ["attention", "linear_attention", "gated_linear_attention", "other"],
        "name": ["x", "_", "a" * 5000, "main", "gpu", "llvm", "1a", "__nv_expf", "mlir_ciface_x",
                 "a-b", "", "\u00e9", "attention", "kernel", "_mlir_ciface_causal", "printf",
                 "malloc", "free", "memcpy"],
        "outputs": [{"lse": True}, {"lse": False}, {"lse": 1}, {}, {"lse": True, "o": 1}],
        "feature_map": ["identity", "elu_plus_one", "relu", "x"],
        "normalize": [True, False, 1],
        "gate": ["scalar", "vector", "head_constant", "none"],
        "state": [{"initial": True, "final": True}, {"initial": True}, {"final": True}, {},
                  {"initial": False, "final": False}, {"x": 1}],
    }[k]
    d[k] = r.choice(vals)


def m_kindswap(r, d):
    d["kind"] = r.choice(["attention", "linear_attention", "gated_linear_attention"])
    s = d.get("shape")
    if isinstance(s, dict) and r.random() < 0.7:
        if d["kind"] == "attention":
            h = s.pop("heads", 16); sq = s.pop("seq", None)
            s.update({"heads_q": h, "heads_kv": h, "seq_q": sq, "seq_k": sq})
        else:
            h = s.pop("heads_q", 16); s.pop("heads_kv", None); s.pop("seq_k", None)
            s["heads"] = h; s["seq"] = s.pop("seq_q", None)
        for k in ["mask", "score", "tensors", "outputs", "feature_map", "normalize", "gate", "state"]:
            if r.random() < 0.7: d.pop(k, None)
        if d["kind"] == "gated_linear_attention":
            d["gate"] = r.choice(["scalar", "vector", "head_constant"])


STRUCT = [m_drop, m_settype, m_shape, m_shape, m_shape, m_gqa, m_mask, m_mask, m_mask,
          m_score, m_score, m_tensors, m_options, m_options, m_top, m_top, m_kindswap]


def text_mutate(r, text, d):
    c = r.randrange(11)
    if c == 0:  # duplicate a key
        return text.replace('"head_dim"', '"head_dim": 64, "head_dim"', 1) if r.random() < 0.5 \
            else text.replace('"kind"', '"kind": "attention", "kind"', 1)
    if c == 1:
        return text.replace("128", r.choice(["NaN", "Infinity", "-Infinity", "1e999", "-0", "0x80",
                                             "128.0", "1.28e2", "+128", "0128", "128e0"]), 1)
    if c == 2:  # truncate
        return text[:r.randrange(len(text))]
    if c == 3:  # byte flip
        b = bytearray(text.encode())
        for _ in range(r.randrange(1, 4)):
            b[r.randrange(len(b))] = r.randrange(256)
        return b.decode("latin-1")
    if c == 4:  # deep json nesting
        n = r.choice([63, 64, 65, 1000, 100000])
        return text.rstrip()[:-1] + ', "options": ' + "[" * n + "]" * n + "}"
    if c == 5:
        return "\ufeff" + text
    if c == 6:
        return text + r.choice(["", "x", "{}", "\u0000", "// c", ",", "\n\n"])
    if c == 7:
        return text.replace(":", ": ", 1).replace('"name"', '"n\\u0061me"', 1)
    if c == 8:
        return text.replace('"bf16"', '"bf\\u0000"', 1)
    if c == 9:
        return text.replace('"', "'", 2)
    return text.replace("{", "{" * 2, 1)


def attn_only(f):
    def g(r, d):
        if d.get("kind") == "attention":
            f(r, d)
    return g


def m_top_valid(r, d):
    kind = d.get("kind")
    k = r.choice(["dtype", "layout", "scale", "outputs"] if kind == "attention" else
                 ["dtype", "layout", "scale", "feature_map", "normalize", "state"] if kind == "linear_attention"
                 else ["dtype", "layout", "scale", "gate", "state"])
    vals = {
        "dtype": ["f16", "bf16", "f32"],
        "layout": ["bhsd", "bshd"],
        "scale": [1, 0.125, 1e-45, 1e-40, 1e-20, 1e20, 1e38, 3.4e38, 0.0883883, 1000],
        "outputs": [{"lse": True}, {"lse": False}],
        "feature_map": ["identity", "elu_plus_one", "relu"],
        "normalize": [True, False],
        "gate": ["scalar", "vector", "head_constant"],
        "state": [{"initial": True, "final": True}, {"initial": True}, {"final": True}, {}],
    }[k]
    d[k] = r.choice(vals)
    if kind == "linear_attention" and d.get("normalize") and isinstance(d.get("state"), dict) and r.random() < 0.8:
        d["state"] = {}


def m_kindswap_clean(r, d):
    m_kindswap(r, d)
    drop = {"attention": ["feature_map", "normalize", "gate", "state"],
            "linear_attention": ["mask", "score", "tensors", "outputs", "gate"],
            "gated_linear_attention": ["mask", "score", "tensors", "outputs", "feature_map", "normalize"]}[d["kind"]]
    for k in drop:
        d.pop(k, None)
    if isinstance(d.get("options"), dict):
        d["options"] = {}


def m_shape_valid(r, d):
    s = d.setdefault("shape", {})
    k = r.choice(shape_keys(d) + ["head_dim", "head_dim", "head_dim_v"])
    if k.startswith("head_dim"):
        s[k] = r.choice(HEAD_DIMS)
    elif k in ("heads_q", "heads_kv", "heads"):
        s[k] = r.choice([None, 1, 2, 4, 8, 16, 32])
        if d.get("kind") == "attention" and isinstance(s.get("heads_q"), int) and isinstance(s.get("heads_kv"), int) \
                and s["heads_q"] % s["heads_kv"]:
            s["heads_kv"] = 1
    else:
        s[k] = r.choice([None, 1, 2, 3, 17, 63, 64, 65, 127, 128, 129, 192, 4096, 65536, 2**31 - 1])


def m_options_valid(r, d):
    o = d.get("options")
    if not isinstance(o, dict):
        d["options"] = o = {}
    ks = ["block_q", "block_k"] if d.get("kind") == "attention" else ["chunk"]
    o[r.choice(ks)] = r.choice(BLOCKS)


VALID = [m_shape_valid, m_shape_valid, m_shape_valid, attn_only(m_gqa), attn_only(m_mask),
         attn_only(m_mask), attn_only(m_mask), attn_only(m_score), attn_only(m_score),
         attn_only(m_tensors), m_options_valid, m_top_valid, m_top_valid, m_kindswap_clean]


def make_mutant(r, seeds):
    d = copy.deepcopy(r.choice(seeds))
    pool = VALID if r.random() < 0.75 else STRUCT
    for _ in range(r.choice([1, 1, 2, 2, 3, 4, 6])):
        try:
            r.choice(pool)(r, d)
        except Exception:
            pass
    text = json.dumps(d, indent=1, ensure_ascii=r.random() < 0.5)
    if r.random() < 0.12:
        text = text_mutate(r, text, d)
    return text


COMPILE_FLAGS = [
    [], [], [], [], ["--tensor-cores=false"], ["--persistent"], ["--kv-stages=3"],
    ["--kv-stages=4"], ["--poly-exp2=4"], ["--block-q=64", "--block-k=64"],
    ["--block-q=128", "--block-k=128"], ["--block-q=192", "--block-k=128"],
    ["--block-q=32", "--block-k=32"], ["--block-q=17", "--block-k=3"],
    ["--dynamic-scheduler"], ["--item-overlap", "--persistent"], ["--cross-head-tiles"],
    ["--half-diagonal-keys"], ["--chunked-linear=false"], ["--fast-tanh=false"],
    ["--cubin"], ["--seq-dispatch=false"], ["--document-tile-summary"],
    ["--document-item-order", "--persistent"], ["--ping-pong=false"],
    ["--staged-output-store=false"], ["--early-output-release"], ["--uniform-warpgroup-index=false"],
    ["--chunked-linear-wgmma=false"], ["--chunked-linear-split-state=false"],
    ["--chunked-linear-producer-diagonal"], ["--chunked-linear-producer-k-scale"],
    ["--chunked-linear-wgmma-overlap"], ["--lazy-rescale=false"],
]


def run_one(args):
    idx, seed = args
    r = random.Random(seed * 1000003 + idx)
    seeds = load_seeds.cache
    text = make_mutant(r, seeds)
    wd = os.path.join(OUT, "work")
    os.makedirs(wd, exist_ok=True)
    sp = os.path.join(wd, "m%d.json" % idx)
    with open(sp, "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write(text)
    out = os.path.join(OUT, "kernels", "m%d" % idx)
    flags = r.choice(COMPILE_FLAGS)
    cmds = [
        ("compile90", [BIN + "/attn-compile", "--chip=sm_90a", "-q", "-o", out] + flags + [sp]),
        ("compile80", [BIN + "/attn-compile", "--chip=sm_80", "-q", "-o", out + "b"] + [sp]),
        ("optcpu", [BIN + "/attn-opt", "--spec", sp, "--attn-cpu-pipeline", "-o", "/dev/null"]),
    ]
    results = []
    for tool, cmd in cmds:
        rc, so, se = run(cmd, timeout=60)
        cat = classify(rc, se)
        results.append((tool, rc, cat, signature(se) if cat else norm_msg(se) if rc else "", cmd, se[:20000]))
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out + "b", ignore_errors=True)
    crashed = any(x[2] for x in results)
    if crashed:
        os.makedirs(os.path.join(OUT, "crashes"), exist_ok=True)
        keep = os.path.join(OUT, "crashes", "spec_%d_%d.json" % (seed, idx))
        shutil.copy(sp, keep)
    os.unlink(sp)
    return idx, [(t, rc, c, s, " ".join(cmd) if c else "", se if c else "") for (t, rc, c, s, cmd, se) in results]


def _init_worker(bin_dir, out):
    global BIN, OUT
    BIN, OUT = bin_dir, out
    load_seeds.cache = load_seeds()


def campaign_parser(doc, count_flag, count_default, out_help, bin_help):
    """The options every fuzzer here takes (diff_exec.py too)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument(count_flag, type=int, default=count_default)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=1e9, help="stop after this long")
    ap.add_argument("--out", default="fuzz-out", help=out_help)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"), help=bin_help)
    return ap


def main(argv=None):
    a = campaign_parser(__doc__, "--mutants", 1000, "work files, crashes/, summary.json",
                        "folder of attn-compile and attn-opt").parse_args(argv)
    n, seed, workers, tlimit = a.mutants, a.seed, a.workers, a.seconds
    out_dir = os.path.abspath(a.out)
    os.makedirs(out_dir, exist_ok=True)
    _init_worker(os.path.abspath(a.bin), out_dir)
    print("seeds:", len(load_seeds.cache), file=sys.stderr)
    stats = {t: collections.Counter() for t in ("compile90", "compile80", "optcpu")}
    msgs = {t: collections.Counter() for t in stats}
    findings = collections.OrderedDict()
    t0 = time.time()
    done = 0
    log = open(os.path.join(OUT, "log_%d.jsonl" % seed), "w")
    with Pool(workers, initializer=_init_worker, initargs=(BIN, OUT)) as pool:
        for idx, res in pool.imap_unordered(run_one, [(i, seed) for i in range(n)]):
            done += 1
            for tool, rc, cat, sig, cmd, se in res:
                stats[tool]["ok" if rc == 0 and not cat else "clean_err" if not cat else "FINDING"] += 1
                if rc and not cat:
                    msgs[tool][sig] += 1
                if cat:
                    key = (tool, cat, sig)
                    findings.setdefault(key, []).append(idx)
                    log.write(json.dumps({"idx": idx, "tool": tool, "rc": rc, "cat": cat, "sig": sig,
                                          "cmd": cmd, "stderr": se[:4000]}) + "\n")
                    log.flush()
            if done % 100 == 0:
                json.dump({"done": done, "stats": {t: dict(c) for t, c in stats.items()},
                           "messages": {t: c.most_common(300) for t, c in msgs.items()}},
                          open(os.path.join(OUT, "partial_%d.json" % seed), "w"), indent=1)
                print("%d done %.0fs %s" % (done, time.time() - t0,
                                            {t: dict(c) for t, c in stats.items()}), file=sys.stderr, flush=True)
            if time.time() - t0 > tlimit:
                pool.terminate()
                break
    summary = {"done": done, "seconds": time.time() - t0,
               "stats": {t: dict(c) for t, c in stats.items()},
               "findings": [{"tool": k[0], "cat": k[1], "sig": k[2], "n": len(v), "idx": v[:10]}
                            for k, v in findings.items()],
               "messages": {t: c.most_common(200) for t, c in msgs.items()}}
    with open(os.path.join(OUT, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary["findings"], indent=1))
    print(json.dumps(summary["stats"]))
    return summary


if __name__ == "__main__":
    main()
