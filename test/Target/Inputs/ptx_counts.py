#!/usr/bin/env python3
"""Counts PTX instructions and checks bounds: ptx_counts.py FILE 'REGEX<=N' 'REGEX>=N' ...

Used by lit tests to pin properties of generated kernels that FileCheck cannot
count (e.g. that two copies of a loop body stay separate). Exits 1 with a
message naming the failed bound."""
import re
import sys

text = open(sys.argv[1]).read()
failed = False
for bound in sys.argv[2:]:
    m = re.fullmatch(r"(.+?)(<=|>=|==)(\d+)", bound)
    if not m:
        sys.exit(f"bad bound {bound!r}: expected REGEX<=N, REGEX>=N or REGEX==N")
    pattern, op, n = m.group(1), m.group(2), int(m.group(3))
    count = len(re.findall(pattern, text))
    ok = {"<=": count <= n, ">=": count >= n, "==": count == n}[op]
    print(f"{pattern}: {count} ({op} {n}) {'ok' if ok else 'FAILED'}")
    failed |= not ok
sys.exit(1 if failed else 0)
