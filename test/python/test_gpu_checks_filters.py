"""run_gpu_checks.py's --only filters (the GPU checks' kernel selection), on a
fake kernel tree: no GPU needed. A filter that matches nothing must fail, so a
typo in CHECKS cannot pass as a run that checked nothing."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "test", "gpu"))
sys.path.insert(0, os.path.join(ROOT, "test", "exec"))

from run_gpu_checks import select_manifests  # noqa: E402

ROOT_DIR = "gpu-kernels"
NAMES = ["sm_90a/gqa", "tc_sm_90a/gqa", "tc_sm_90a/gated_scalar", "tc_sm_90a/gated_vector",
         "tc_sm_90a/linear", "tc_sm_90a/linear_plain", "tc_sm_90a_p192/dense_d64"]
MANIFESTS = [os.path.join(ROOT_DIR, n + ".json") for n in NAMES]


def pick(*filters):
    got = select_manifests(MANIFESTS, ROOT_DIR, list(filters))
    return [os.path.relpath(m, ROOT_DIR)[:-len(".json")] for m in got]


def test_exact_name_is_one_directory():
    assert pick("sm_90a/gqa") == ["sm_90a/gqa"]
    assert pick("tc_sm_90a/linear") == ["tc_sm_90a/linear"]


def test_directory_filter():
    assert pick("tc_sm_90a_p192/") == ["tc_sm_90a_p192/dense_d64"]
    assert len(pick("tc_sm_90a/")) == 5


def test_glob_and_union_keep_order():
    assert pick("tc_sm_90a/gated*") == ["tc_sm_90a/gated_scalar", "tc_sm_90a/gated_vector"]
    assert pick("tc_sm_90a/linear*", "sm_90a/gqa") == [
        "sm_90a/gqa", "tc_sm_90a/linear", "tc_sm_90a/linear_plain"]


@pytest.mark.parametrize("bad", ["tc_sm_90a/gated", "tc_sm_90a/nope*", "tc_sm_80/"])
def test_filter_matching_nothing_is_an_error(bad):
    with pytest.raises(ValueError, match="matches no kernel"):
        pick("sm_90a/gqa", bad)
