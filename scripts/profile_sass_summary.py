import csv,sys,re
rows=list(csv.reader(open(sys.argv[1])))
hdr=rows[1]; data=rows[2:]
H={h:i for i,h in enumerate(hdr)}
stalls=[h for h in hdr if h.startswith('stall_') and 'Not Issued' not in h]
def num(x):
    try: return float(x)
    except: return 0.0
tot=sum(num(r[H['Warp Stall Sampling (All Samples)']]) for r in data)
print("total samples",tot, "instrs",len(data))
# segment by markers: USETMAXREG, BAR, SYNCS (mbarrier wait), WARPGROUP
seg=0; segs={}; segname={0:'start'}
for r in data:
    src=r[H['Source']]
    if re.search(r'USETMAXREG|BAR\.SYNC|BAR\.ARV|SYNCS\.PHASECHK|WARPSYNC|HGMMA.*\bgsb|WARPGROUP.DEPBAR',src) :
        pass
    s=num(r[H['Warp Stall Sampling (All Samples)']])
    segs.setdefault(seg,[0,0,{},src,r[H['Address']]])
# simpler: print top 40 instructions by samples with top stall reasons
items=[]
for r in data:
    s=num(r[H['Warp Stall Sampling (All Samples)']])
    if s>0:
        reasons=sorted(((num(r[H[h]]),h[6:]) for h in stalls),reverse=True)[:3]
        items.append((s,r[H['Address']],r[H['Source']][:70],num(r[H['Instructions Executed']]),reasons))
items.sort(reverse=True)
for it in items[:int(sys.argv[2]) if len(sys.argv)>2 else 40]:
    print(f"{it[0]/tot*100:5.1f}% {it[1]} ex={it[3]:.0f} {it[2]:70s} {[(round(a/tot*100,1),b) for a,b in it[4] if a>0]}")
# aggregate stall reasons
agg={h:sum(num(r[H[h]]) for r in data) for h in stalls}
print(sorted(((round(v/tot*100,1),k) for k,v in agg.items()),reverse=True)[:8])
