"""bench/bench.py --render: the table of a recorded bench.json, rebuilt without a GPU
(a device call that hit its time limit brings back the JSON but not bench.md)."""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(REPO, "bench", "bench.py")


def cell(tflops, status="ok"):
    return {"tflops": tflops, "ms": 1.0, "rel_err": 2.5e-3, "status": status}


def render(tmp_path, doc):
    """bench.py --render of `doc` (a recorded bench.json); returns the rebuilt bench.md."""
    src = tmp_path / "recorded.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, BENCH, "--render", str(src), "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return (out / "bench.md").read_text()


def test_render_rebuilds_table(tmp_path):
    doc = {
        "meta": {"gpu": "NVIDIA H200", "torch": "2.11", "argv": ["bench.py", "--reps", "5"]},
        "ceilings": {"matmul_tflops": 672.0, "copy_gbps": 4271.0},
        "rows": [
            {"variant": "dense", "S": 1024, "D": 128, "B": 32, "H": 16, "group": "softmax",
             "status": "ok", "impls": {"ours": cell(564.0), "cudnn": cell(470.0)},
             "ratio_to_cudnn": 1.2},
            {"variant": "gla", "S": 4096, "D": 128, "B": 8, "H": 16, "group": "linear",
             "status": "ok", "impls": {"ours": cell(33.0), "fla": cell(39.0, "FAIL")},
             "ratio_to_fla": 0.846},
        ],
    }
    table = render(tmp_path, doc)
    assert "| dense | 1024 | 128 | 32×16 | 564.0 |" in table
    assert "| 470.0 |" in table and "| 1.20 |" in table
    assert "39.0 FAIL" in table and "| 0.85 |" in table
    assert "Median of 5 interleaved" in table  # --reps read back from the recorded argv
    assert "matmul 672 TFLOP/s" in table


def test_render_missing_file_fails(tmp_path):
    r = subprocess.run([sys.executable, BENCH, "--render", str(tmp_path / "none.json"),
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "none.json" in r.stderr


def test_peers_none_means_ours_only():
    sys.path.insert(0, os.path.dirname(BENCH))
    import bench
    assert bench.parse_args(["--peers", "none", "--only", "linear"]).peer_set == set()
    assert bench.parse_args(["--peers", "fla,none"]).peer_set == {"fla"}


def test_render_ab_rows(tmp_path):
    """--ab-kernels: ours_b in the same rounds, its own table with the ratio and the reps."""
    ours, other = cell(410.0), cell(400.0)
    ours["ms_reps"], other["ms_reps"] = [0.512, 0.514, 0.511], [0.52, 0.53, 0.525]
    doc = {
        "meta": {"gpu": "NVIDIA H200", "kernels": "/k/bench", "ab_kernels": "/k/bench_docorder0",
                 "argv": ["bench.py", "--ab-kernels", "/k/bench_docorder0"]},
        "ceilings": {},
        "rows": [{"variant": "document", "S": 4096, "D": 128, "B": 8, "H": 16, "group": "softmax",
                  "status": "ok", "impls": {"ours": ours, "ours_b": other}, "ratio_to_ours_b": 1.025}],
    }
    table = render(tmp_path, doc)
    assert "ours = /k/bench, ours_b = /k/bench_docorder0" in table
    assert "| document | 4096 | 128 | 410.0 | 400.0 | 1.025 | 0.512 0.514 0.511 | 0.520 0.530 0.525 |" in table


def test_ab_kernels_argument():
    sys.path.insert(0, os.path.dirname(BENCH))
    import bench
    assert bench.parse_args([]).ab_kernels is None
    assert bench.parse_args(["--ab-kernels", "gpu-kernels/x"]).ab_kernels == "gpu-kernels/x"


def test_render_masked_rows_against_dense(tmp_path):
    """Masked rows: % of the dense row and % of ours_dense timed in the same rounds."""
    doc = {
        "meta": {"gpu": "NVIDIA H200", "argv": ["bench.py"]},
        "ceilings": {},
        "rows": [
            {"variant": "dense", "S": 4096, "D": 128, "B": 8, "H": 16, "group": "softmax",
             "status": "ok", "impls": {"ours": cell(700.0)}},
            {"variant": "window", "S": 4096, "D": 128, "B": 8, "H": 16, "group": "softmax",
             "status": "ok", "impls": {"ours": cell(504.0), "ours_dense": cell(630.0)},
             "ours_frac_of_dense": 0.72, "ours_frac_of_dense_same_round": 0.8},
        ],
    }
    table = render(tmp_path, doc)
    assert "Masked rows against our dense kernel" in table
    assert "| window | 4096 | 128 | 504.0 | 72.0 | 630.0 | 80.0 |" in table


def test_same_round_fraction(tmp_path):
    """finish_row: the per-round ratio entries_frac * dense ms / masked ms, median over rounds;
    ours_dense's TFLOP/s count every pair; no ratio_to_ours_dense."""
    sys.path.insert(0, os.path.dirname(BENCH))
    import bench
    b = bench.Bench.__new__(bench.Bench)
    b.ceil, b.rows = {}, []
    row = {"variant": "window", "S": 4096, "D": 128, "flops": 1e12, "dense_flops": 4e12,
           "entries_frac": 0.25,
           "impls": {"ours": {"ms_reps": [2.0, 2.0, 4.0], "status": "ok"},
                     "ours_dense": {"ms_reps": [6.0, 7.0, 8.0], "status": "ok"}}}
    b.finish_row(row)
    # rounds: 0.25 * 6 / 2, 0.25 * 7 / 2, 0.25 * 8 / 4 = 0.75, 0.875, 0.5 -> median 0.75
    assert abs(row["ours_frac_of_dense_same_round"] - 0.75) < 1e-12
    assert abs(row["impls"]["ours_dense"]["tflops"] - 4e12 / 7e-3 / 1e12) < 1e-9
    assert "ratio_to_ours_dense" not in row
