"""pytest configuration for the attn-exec end-to-end tests.

Run:  ATTN_EXEC=/work/main/build-ref/bin/attn-exec python3 -m pytest -q test/exec
(ATTN_EXEC defaults to /work/main/build/bin/attn-exec; ATTN_EXEC_DEVICES, a
comma-separated list defaulting to "reference", picks the devices.)
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import attn_numpy  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def attn_exec_binary():
    if not os.access(attn_numpy.ATTN_EXEC, os.X_OK):
        pytest.fail("attn-exec not found at %s (set ATTN_EXEC)" % attn_numpy.ATTN_EXEC,
                    pytrace=False)
    return attn_numpy.ATTN_EXEC
