#!/usr/bin/env python3
"""Instruction mix and stall reasons of one kernel from an Nsight Compute source page.

Input: the CSV that `ncu --import R.ncu-rep --page source --print-source sass --csv` writes
(scripts/gpu/all.sh with PROFILE=... leaves it as prof_ENTRY_sass.csv). Prints executed
warp instructions and stall samples per opcode, and the stall reasons overall.

    python3 bench/ncu_instruction_mix.py prof_b_dense_sass.csv
"""
import collections
import csv
import sys

rows = list(csv.reader(open(sys.argv[1])))
hdr=rows[1]; data=[r for r in rows[2:] if len(r)==len(hdr)]
iS=hdr.index('Source'); iE=hdr.index('Instructions Executed'); iSt=hdr.index('Warp Stall Sampling (All Samples)')
stalls=[i for i,h in enumerate(hdr) if h.startswith('stall_') and 'Not Issued' not in h]
tot=collections.Counter(); opc=collections.Counter(); opst=collections.Counter()
totsamp=0
for r in data:
    src=r[iS].strip(); ex=int(r[iE] or 0); st=int(r[iSt] or 0); totsamp+=st
    op=src.split()[0] if src else '?'
    if op.startswith('@'): op=src.split()[1]
    op=op.split('.')[0]
    opc[op]+=ex; opst[op]+=st
    for i in stalls: tot[hdr[i]]+=int(r[i] or 0)
T=sum(opc.values())
print('total executed warp instrs', T, 'samples', totsamp)
for op,c in opc.most_common(28): print(f'{op:10s} {c:12d} {100*c/T:5.1f}%  stall-samples {100*opst[op]/max(1,totsamp):5.1f}%')
print('stall reasons:')
S=sum(tot.values())
for k,v in tot.most_common(12): print(f'  {k:28s} {100*v/S:5.1f}%')
