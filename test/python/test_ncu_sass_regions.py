"""scripts/ncu_sass_regions.py: per-role and per-region stall shares from a synthetic
Nsight Compute source-page CSV (plain and gzipped)."""
import csv
import gzip
import io
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "scripts", "ncu_sass_regions.py")
HEADER = ["Address", "Source", "Warp Stall Sampling (All Samples)",
          "Warp Stall Sampling (Not-issued Samples)", "# Samples", "Instructions Executed",
          "stall_long_sb", "stall_selected", "stall_long_sb (Not Issued)"]


def row(address, source, samples, executed, long_sb, selected):
    return [address, source, str(samples), "0", str(samples), str(executed), str(long_sb),
            str(selected), "0"]


def write_csv(path, compress):
    rows = [
        row("0x0010", "USETMAXREG.DEALLOC.CTAPOOL 0x28", 0, 1, 0, 0),
        row("0x0020", "LDG.E R2, [R4]", 10, 64, 0, 10),
        row("0x0030", "FMUL R3, R2, 1.44", 30, 64, 30, 0),  # producer: 40 of 100
        row("0x0040", "USETMAXREG.TRY_ALLOC.CTAPOOL UP0, 0xf8", 0, 1, 0, 0),
        row("0x0050", "MUFU.EX2 R5, R5", 45, 1024, 0, 45),
        row("0x0060", "BAR.SYNC.DEFER_BLOCKING 0x1, 0x80", 15, 64, 0, 15),  # consumer: 60
    ]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["Kernel Name", "b_test"])
    w.writerow(HEADER)
    w.writerows(rows)
    if compress:
        with gzip.open(path, "wt") as f:
            f.write(buf.getvalue())
    else:
        path.write_text(buf.getvalue())


def run(path, *extra):
    out = subprocess.run([sys.executable, TOOL, str(path), *extra], capture_output=True,
                         text=True, check=True)
    return out.stdout


def test_roles_regions_and_top(tmp_path):
    for compress in (False, True):
        path = tmp_path / ("p.csv.gz" if compress else "p.csv")
        write_csv(path, compress)
        text = run(path, "--top", "2", "--min-share", "1")
        assert "b_test: 100 samples, 6 instructions" in text
        roles = text.split("roles")[1].split("regions")[0]
        assert " 40.0%" in roles and " 60.0%" in roles
        # The consumer's region ends at the BAR.SYNC: 60% of the samples, one MUFU.
        assert "60.0% exec=1024 mufu=1" in text
        assert "ends 'BAR.SYNC.DEFER_BLOCKING 0x1, 0x80'" in text
        top = text.split("top 2 instructions:")[1].strip().splitlines()
        assert len(top) == 2
        assert "MUFU.EX2" in top[0] and "45.0%" in top[0]
        assert "FMUL" in top[1] and "100% long_sb" in top[1]
