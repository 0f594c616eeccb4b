"""bench/schedule_model.py: the list-scheduling model behind the documents' item
order (session 19). No GPU."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "bench"))
import schedule_model  # noqa: E402


def test_documents_match_the_bench():
    # bench.py / peers.py cut the 16k sequence into these four documents.
    doc = schedule_model.document_ids(16384)
    lengths = [doc.count(i) for i in range(4)]
    assert lengths == [8330, 3386, 1595, 3073]


def test_every_order_is_a_permutation_of_the_items():
    costs = [3.0, 1.0, 4.0, 1.0, 5.0]  # ties and an odd tile count
    for pairs, per_group in [(5, 2), (4, 4), (3, 1)]:
        want = sorted((p, t) for p in range(pairs) for t in range(len(costs)))
        for name, order in schedule_model.orders(costs, pairs, per_group).items():
            assert sorted(order) == want, name


def test_two_phases_shorten_the_16k_documents_tail():
    res = schedule_model.model("document", 16384)
    assert res["two phases (longer half first)"] < res["q-tile-descending"] - 0.03
    # causal items are already longest first: nothing to gain
    causal = schedule_model.model("causal", 16384)
    assert abs(causal["two phases (longer half first)"] - causal["q-tile-descending"]) < 0.01


def test_command_line():
    r = subprocess.run([sys.executable, os.path.join(REPO, "bench", "schedule_model.py"),
                        "--variant", "document", "--seq", "4096"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("document S=4096: q-tile-descending ")
