"""bench/bench.py end to end without a GPU: every tensor on the CPU, our kernel's
launch emulated, the timer a plain clock.

A GPU call is scarce (30 minutes a session); a harness bug found there costs a
call. This runs the harness's own code paths on the CPU, at a small sequence
length: the row plan, the inputs and masks of every variant, the binding of
tensors to the manifest's argument roles (the manifests compiled here by
attn-compile from bench/specs), the same-round A/B (`--ab-kernels`) and our
dense kernel on a masked row's inputs (`ours_dense`), the correctness check
against bench.py's float32 reference, the derived figures, bench.json and
bench.md.

The emulated launch is not bench.py's reference: it computes the spec's
semantics with the test suite's float64 NumPy reference (test/exec/attn_numpy.py)
from the tensors bound to the roles, so a row passes only if bench.py's masks
(peers.py's definitions) and our specs with their extra tensors (block mask,
document ids, ALiBi slopes, gates) describe the same attention. It computes the
(b, h) pairs bench.py checks and writes zeros elsewhere.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, os.path.join(REPO, "test", "exec"))
sys.path.insert(0, os.path.join(REPO, "python"))
COMPILER = os.path.join(REPO, "build", "bin", "attn-compile")

torch = pytest.importorskip("torch", reason="PyTorch is not installed: bench.py needs it")
pytestmark = pytest.mark.skipif(not os.path.isfile(COMPILER),
                                reason="build/bin/attn-compile not built")

import attn  # noqa: E402
import attn.spec as spec_py  # noqa: E402
import attn_numpy  # noqa: E402
import bench  # noqa: E402

# S = 1280: rows past 1023 meet the window's left edge; 10 x 10 blocks of 128.
# The linear rows at T = 320 (five of FLA's 64-token chunks): both references
# are sequential over T, and it is the same code at any T.
SEQ = 1280
SOFTMAX_VARIANTS = ["causal", "window", "block50", "alibi", "softcap", "document"]
LINEAR_SEQ = 320
LINEAR_VARIANTS = ["gla", "simple_gla"]
SPECS = ["b_decode", "b_dense", "b_causal", "b_window", "b_block_sparse", "b_alibi", "b_softcap",
         "b_document", "b_gla", "b_simple_gla"]
# Argument role -> the reference's input name.
INPUT_OF_ROLE = {"query": "q", "key": "k", "value": "v", "gates": "g"}


class EmulatedKernel:
    """attn.Kernel's interface over a manifest, computing on the CPU. A kernel's
    outputs for the same input tensors (same objects, unmodified) are computed
    once: bench.py launches each kernel once per round, and ours_b is the same
    kernel on the same inputs."""
    launches = []
    query_strides = []
    cache = {}

    def __init__(self, manifest, library=None):
        with open(manifest) as f:
            man = json.load(f)
        self.name = man["name"]
        self._roles = list(man["arguments"])
        self.any_strides = {self._roles[m["argument"]] for m in man.get("tensor_maps", [])
                            if m.get("any_strides")}
        self.spec = attn_numpy.PySpec(man["spec"] if isinstance(man["spec"], dict)
                                      else json.loads(man["spec"]))

    @property
    def roles(self):
        return self._roles

    def launch(self, *tensors, stream=None):
        bound = [r for r in self._roles if r != "tile_counter"]
        assert len(tensors) == len(bound), (self.name, bound, len(tensors))
        t = dict(zip(bound, tensors))
        EmulatedKernel.launches.append((self.name, sorted(t)))
        EmulatedKernel.query_strides.append((self.name, tuple(t["query"].stride())))
        q = t["query"]
        assert t["out"].shape[:2] == q.shape[:2], (self.name, t["out"].shape)
        for role in ("key", "value"):  # GQA: fewer key/value heads, dividing the query's
            assert t[role].shape[0] == q.shape[0] and q.shape[1] % t[role].shape[1] == 0, \
                (self.name, role, t[role].shape)
        # The runtime's stride checks: the layout's (bhsd: contiguous), or for the
        # roles read only through TMA maps, any strides a map can describe.
        assert t["out"].is_contiguous()
        for role in ("query", "key", "value"):
            ten = t[role]
            if role in self.any_strides:
                assert spec_py.tma_readable(ten.data_ptr(), tuple(ten.shape), ten.stride(),
                                            ten.element_size()), (self.name, role, ten.stride())
            else:
                assert ten.is_contiguous(), (self.name, role, ten.stride())
        key = (self.name,) + tuple((role, id(ten), ten._version) for role, ten in sorted(t.items())
                                   if role not in ("out", "lse"))
        if key not in EmulatedKernel.cache:
            EmulatedKernel.cache[key] = self.compute(t)
        for role, value in EmulatedKernel.cache[key].items():
            t[role].copy_(value)

    def compute(self, t):
        q = t["query"]
        B, H = q.shape[:2]
        out = {role: torch.zeros_like(t[role]) for role in ("out", "lse") if role in t}
        for b, h in bench.check_pairs(B, H):
            x = {}
            for role, ten in t.items():
                if role in ("out", "lse"):
                    continue
                a = ten.detach().double().numpy() if ten.is_floating_point() else ten.numpy()
                if role == "alibi_slopes":
                    a = a[h:h + 1] if a.ndim == 1 else a[b:b + 1, h:h + 1]
                elif role in ("q_doc_ids", "kv_doc_ids"):
                    a = a[b:b + 1]
                elif role == "block_mask":
                    a = a[b:b + 1] if a.shape[0] > 1 else a
                    a = a[:, h:h + 1] if a.shape[1] > 1 else a
                elif role in ("key", "value"):
                    kv = h // (H // ten.shape[1])
                    a = a[b:b + 1, kv:kv + 1]
                else:
                    a = a[b:b + 1, h:h + 1]
                x[INPUT_OF_ROLE.get(role, role)] = a
            ref = attn_numpy.reference(self.spec, x)
            out["out"][b, h] = torch.from_numpy(ref["o"][0, 0]).to(out["out"].dtype)
            if "lse" in out:
                out["lse"][b, h] = torch.from_numpy(ref["lse"][0, 0]).float()
        return out


def plain_timer(fn, **_):
    """One call on the CPU clock, as (p20, median, p80) ms."""
    import time
    t0 = time.perf_counter()
    fn()
    ms = (time.perf_counter() - t0) * 1e3
    return ms, ms, ms


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-kernels")
    r = subprocess.run([COMPILER, "-q", "--chip=sm_90a", "-o", str(out)] +
                       [os.path.join(REPO, "bench", "specs", s + ".json") for s in SPECS],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return str(out)


@pytest.fixture
def cpu_bench(monkeypatch):
    monkeypatch.setattr(bench, "DEVICE", "cpu")
    monkeypatch.setattr(bench, "time_fn", plain_timer)
    monkeypatch.setattr(attn, "Kernel", EmulatedKernel)
    monkeypatch.setattr(attn, "load_library", lambda lib=None: object())
    EmulatedKernel.launches = []
    EmulatedKernel.query_strides = []
    EmulatedKernel.cache = {}
    return bench


def run_bench(cpu_bench, kernels, out, variants, seq):
    cpu_bench.main(["--kernels", kernels, "--ab-kernels", kernels, "--out", str(out),
                    "--only", ",".join(variants), "--seq", str(seq), "--head-dims", "128",
                    "--peers", "none", "--reps", "2", "--ceilings", "none",
                    "--tokens", str(seq), "--model-dim", "2048", "--linear-batch", "1",
                    "--budget-s", "3000"])
    with open(os.path.join(out, "bench.json")) as f:
        doc = json.load(f)
    assert doc["meta"]["plan"] == [f"{v}/S{seq}/D128" for v in variants]
    rows = {r["variant"]: r for r in doc["rows"]}
    assert sorted(rows) == sorted(variants)
    return doc, rows


def check_rows(rows):
    for v, row in rows.items():
        assert row["status"] == "ok", (v, row.get("error"))
        expect = {"ours", "ours_b"} | ({"ours_dense"} if v in bench.MASKED else set())
        assert set(row["impls"]) == expect, (v, sorted(row["impls"]))
        for name, cell in row["impls"].items():
            # Passing means our spec + its tensors give bench.py's reference.
            assert cell["status"] == "ok", (v, name, cell)
            assert cell["rel_err"] < 1e-2 and cell["finite"], (v, name, cell)
            assert len(cell["ms_reps"]) == 2
        assert row["impls"]["ours"]["spec"] == bench.SPEC[(v, 128)]
        if v in bench.MASKED:
            assert row["impls"]["ours_dense"]["spec"] == "b_dense"
            assert row["dense_flops"] == 2 * row["B"] * row["H"] * SEQ * SEQ * 256
            assert 0 < row["ours_frac_of_dense_same_round"]


def test_softmax_rows_through_the_harness(cpu_bench, kernels, tmp_path):
    doc, rows = run_bench(cpu_bench, kernels, tmp_path, SOFTMAX_VARIANTS, SEQ)
    check_rows(rows)
    # ours_dense gets the row's inputs but not the mask's tensors (its roles).
    dense_roles = {tuple(roles) for name, roles in EmulatedKernel.launches if name == "b_dense"}
    assert dense_roles == {("key", "lse", "out", "query", "value")}
    assert any(name == "b_block_sparse" and "block_mask" in roles
               for name, roles in EmulatedKernel.launches)
    assert any(name == "b_document" and "q_doc_ids" in roles
               for name, roles in EmulatedKernel.launches)
    md = (tmp_path / "bench.md").read_text()
    assert "Masked rows against our dense kernel" in md
    assert "ours_b" in md


def test_packed_projections_through_the_harness(cpu_bench, kernels, tmp_path):
    # --packed-qkv: every implementation on views of one [B, S, 3, H, D] buffer;
    # ours takes them as they are (the sm_90a kernels' any_strides), ours_copy
    # copies them into the kernel's layout first. Both must pass the row's check.
    variants = ["causal", "document"]
    out = tmp_path / "packed"
    cpu_bench.main(["--kernels", kernels, "--out", str(out), "--only", ",".join(variants),
                    "--seq", str(SEQ), "--head-dims", "128", "--peers", "none", "--reps", "2",
                    "--ceilings", "none", "--tokens", str(SEQ), "--model-dim", "2048",
                    "--budget-s", "3000", "--packed-qkv"])
    with open(out / "bench.json") as f:
        rows = {r["variant"]: r for r in json.load(f)["rows"]}
    assert sorted(rows) == sorted(variants)
    for v, row in rows.items():
        assert row["status"] == "ok" and row["packed_qkv"], (v, row.get("error"))
        assert {"ours", "ours_copy"} <= set(row["impls"]), sorted(row["impls"])
        for name, cell in row["impls"].items():
            assert cell["status"] == "ok" and cell["rel_err"] < 1e-2, (v, name, cell)
    assert "--packed-qkv" in (out / "bench.md").read_text()
    # ours got the views themselves, ours_copy dense [B, H, S, D] copies.
    B, H, S, D = rows["causal"]["B"], rows["causal"]["H"], SEQ, 128
    seen = {st for name, st in EmulatedKernel.query_strides if name == "b_causal"}
    assert seen == {(S * 3 * H * D, D, 3 * H * D, 1), (H * S * D, S * D, D, 1)}, seen


def _emulated_binding_launch(spec, roles, device, alternative=None):
    """attn.ops._launch on the CPU for the binding's unmasked calls: float64 attention
    of the tensors it was given (GQA by head ratio)."""
    assert "mask" not in spec and "score" not in spec, spec
    q, k, v = (roles[r].double() for r in ("query", "key", "value"))
    rep = q.shape[1] // k.shape[1]
    s = q.shape[-1] ** -0.5 * q @ k.repeat_interleave(rep, 1).transpose(-1, -2)
    lse = torch.logsumexp(s, -1)
    roles["out"].copy_(torch.exp(s - lse[..., None]) @ v.repeat_interleave(rep, 1))
    roles["lse"].copy_(lse)


def test_decode_rows_through_the_harness(cpu_bench, kernels, tmp_path, monkeypatch):
    # --only decode: one query row per (batch, query head), GQA 32 / 8 heads, against
    # S keys; checked against bench.py's reference (the KV head of each query head).
    # ours is the binding's call (packed heads, split keys; its launch emulated, an
    # H200's 132 SMs assumed), ours_direct the b_decode kernel as given.
    import attn.ops as O
    monkeypatch.setattr(spec_py, "check_device", lambda named: None)
    monkeypatch.setattr(O, "_launch", _emulated_binding_launch)
    monkeypatch.setattr(O, "_multiprocessors", lambda device: 132)
    monkeypatch.setenv("ATTN_COMPILE", "0")
    out = tmp_path / "decode"
    cpu_bench.main(["--kernels", kernels, "--binding-kernels", kernels, "--out", str(out),
                    "--only", "decode",
                    "--seq", "300,4096", "--peers", "none", "--reps", "2", "--ceilings", "none",
                    "--decode-batch", "2", "--budget-s", "3000"])
    with open(out / "bench.json") as f:
        doc = json.load(f)
    assert doc["meta"]["plan"] == ["decode/S300/D128", "decode/S4096/D128"]
    for row in doc["rows"]:
        assert row["status"] == "ok", row.get("error")
        assert (row["B"], row["H"], row["Hkv"], row["Sq"]) == (2, 32, 8, 1)
        assert row["bytes"] == 2 * 2 * 8 * row["S"] * 128 * 2 + 2 * 2 * 32 * 128 * 2
        for name in ("ours", "ours_packed", "ours_direct"):
            cell = row["impls"][name]
            assert cell["status"] == "ok" and cell["rel_err"] < 1e-2, (name, cell)
            assert cell["gbps"] > 0
        # 8 items of 132 SMs: 4096 keys split in 4 parts of 1024 (300: too few).
        want = {"pack": True, "splits": 4 if row["S"] == 4096 else 1,
                "fold": "heads" if row["S"] == 4096 else None}
        assert row["impls"]["ours"]["plan"] == want
        assert row["impls"]["ours_packed"]["plan"]["splits"] == 1
    md = (out / "bench.md").read_text()
    assert "Decoding (--only decode)" in md and "Timed as eager calls" in md
    # decode is its own group: not part of "all".
    assert "decode" not in bench.GROUPS["all"]


def test_graphs_flag_times_eagerly_where_nothing_is_captured(cpu_bench, kernels, tmp_path,
                                                            monkeypatch):
    # --graphs captures only on a CUDA device; here every cell is timed eagerly and
    # the report must say so rather than claim graph replays.
    import attn.ops as O
    monkeypatch.setattr(spec_py, "check_device", lambda named: None)
    monkeypatch.setattr(O, "_launch", _emulated_binding_launch)
    monkeypatch.setenv("ATTN_COMPILE", "0")
    out = tmp_path / "graphs"
    cpu_bench.main(["--kernels", kernels, "--binding-kernels", kernels, "--out", str(out),
                    "--only", "decode", "--seq", "300", "--peers", "none", "--reps", "1",
                    "--ceilings", "none", "--decode-batch", "1", "--graphs", "--budget-s", "3000"])
    with open(out / "bench.json") as f:
        row, = json.load(f)["rows"]
    assert row["status"] == "ok"
    assert all(c["status"] == "ok" and "timing" not in c for c in row["impls"].values())
    assert "Timed as eager calls" in (out / "bench.md").read_text()


def test_linear_rows_through_the_harness(cpu_bench, kernels, tmp_path):
    doc, rows = run_bench(cpu_bench, kernels, tmp_path, LINEAR_VARIANTS, LINEAR_SEQ)
    check_rows(rows)
    assert any(name == "b_gla" and "gates" in roles for name, roles in EmulatedKernel.launches)


def test_a_wrong_mask_fails_the_row(cpu_bench, kernels, tmp_path, monkeypatch):
    """The check can fail: a window of 512 keys in bench.py against our spec's 1024."""
    real = bench.softmax_variant

    def narrow(name, S, H, seed, device=None):
        mask_fn, score_fn, rule, desc, extras = real(name, S, H, seed, device)
        if name == "window":
            def mask_fn(b, h, q, kv):
                return (q >= kv) & (q - kv < 512)
        return mask_fn, score_fn, rule, desc, extras
    monkeypatch.setattr(bench, "softmax_variant", narrow)
    doc, rows = run_bench(cpu_bench, kernels, tmp_path, ["window"], SEQ)
    cell = rows["window"]["impls"]["ours"]
    assert cell["status"] == "FAIL" and cell["rel_err"] > 1e-2, cell
