#!/usr/bin/env python3
"""Model of the shared-memory layouts of the Hopper chunkwise linear kernel
(lib/Transforms/WgmmaChunkwiseLinearKernel.cpp): checks that every address
the kernel writes or reads by hand agrees with what TMA writes and what the
wgmma descriptors read, for Dk in {64, 128}. Exit status 0 when all agree.

Hardware model (PTX ISA: tensor copy with 128-byte swizzle; wgmma matrix
descriptors, canonical layouts with 128-byte swizzle, 16-bit elements):
  swizzle(a)        = a ^ (((a >> 7) & 7) << 4)    (16-byte chunk ^= 128-byte row % 8)
  TMA box [R][64]   element (r, c) at swizzle(base + r * 128 + 2 c)
  K-major operand   (mn, k), k < 64 inside one box: swizzle(start + (mn // 8) * SBO
                    + (mn % 8) * 128 + 2 k); a k16 step moves start by 32 bytes
  MN-major operand  (mn, k): swizzle(start + (mn // 64) * LBO + (k // 8) * SBO
                    + (k % 8) * 128 + 2 (mn % 64)); a k16 step moves start by
                    2 * SBO = 2048 bytes
Swizzling is a function of the absolute shared address: every base here is a
multiple of 1024 bytes (the dynamic shared memory is 1024-byte aligned).
"""
import sys

SBO = 1024
BOX = 64 * 128  # one [64 rows][64] box of 16-bit elements


def swizzle(a):
    return a ^ (((a >> 7) & 7) << 4)


def tma(base, r, c):
    return swizzle(base + r * 128 + 2 * c)


def k_major(start, mn, k):
    assert k < 64
    return swizzle(start + (mn // 8) * SBO + (mn % 8) * 128 + 2 * k)


def mn_major(start, lbo, mn, k):
    return swizzle(start + (mn // 64) * lbo + (k // 8) * SBO + (k % 8) * 128 + 2 * (mn % 64))


def scaling_chunks(dk):
    """The kernels' per-element K scaling walk: thread ctid (of 128) takes
    row ctid % 64 and half ctid // 64 of its 16-byte chunks; iteration i is
    chunk index cidx = half * (dk / 16) + i, in box cidx // 8 at physical
    chunk (cidx % 8) ^ (row % 8). Yields (row, cidx, box, phys)."""
    per = dk // 16
    for ctid in range(128):
        row, part = ctid % 64, ctid // 64
        for i in range(per):
            cidx = part * per + i
            yield row, cidx, cidx // 8, (cidx % 8) ^ (row % 8)


def layout(dk):
    boxes = dk // 64
    q = 0
    k = boxes * BOX
    v = 2 * boxes * BOX
    stage = v + BOX
    s = 2 * stage
    return dict(boxes=boxes, q=q, k=k, v=v, stage=stage, s=s)


def check(dk, errors):
    L = layout(dk)
    for name in ("q", "k", "v", "stage", "s"):
        assert L[name] % 1024 == 0, (dk, name)
    for st in range(2):
        base = st * L["stage"]
        # A = Q K^T: K-major A (Q) and B (K), k16 step `step`: box step // 4,
        # start + 32 (step % 4) (the kernel's qDesc / kDesc).
        for step in range(dk // 16):
            box, inbox = step * 16 // 64, (step * 16 % 64) * 2
            for row in range(64):
                for kk in range(16):
                    d = 16 * step + kk
                    got = k_major(base + L["q"] + box * BOX + inbox, row, kk)
                    want = tma(base + L["q"] + (d // 64) * BOX, row, d % 64)
                    if got != want:
                        errors.append(f"dk={dk} Q K-major step {step} row {row} k {kk}")
                        return
        # O += A V and S += K^T V: V as MN-major B (n = value column, k = key),
        # step u: start vOff + 2048 u (vDesc).
        for u in range(4):
            for n in range(64):
                for kk in range(16):
                    key = 16 * u + kk
                    got = mn_major(base + L["v"] + u * 2048, BOX, n, kk)
                    if got != tma(base + L["v"], key, n):
                        errors.append(f"dk={dk} V MN-major u {u} n {n} k {kk}")
                        return
        # S += K^T V: A = K^T, MN-major (m = dim inside box h, k = key), step
        # u: start kOff + h BOX + 2048 u (ktDesc).
        for h in range(L["boxes"]):
            for u in range(4):
                for m in range(64):
                    for kk in range(16):
                        key = 16 * u + kk
                        got = mn_major(base + L["k"] + h * BOX + u * 2048, BOX, m, kk)
                        if got != tma(base + L["k"] + h * BOX, key, m):
                            errors.append(f"dk={dk} K^T MN-major h {h} u {u} m {m} k {kk}")
                            return
    # Q S_bf16: S as MN-major B (n = value column, k = state row d), step
    # `step`: start sOff + 2048 step (sDesc). The kernel's writes (writeState):
    # lane (g, t) of warp w, half h, tile j, row half r: pair (d, n), (d, n + 1)
    # with d = 64 h + 16 w + g + 8 r, n = 8 j + 2 t, at element index
    # d * 64 + (j ^ g) * 8 + 2 t of the [Dk * 64] view at sOff.
    written = {}
    for w in range(4):
        for lane in range(32):
            g, t = lane // 4, lane % 4
            for h in range(L["boxes"]):
                for j in range(8):
                    for r in range(2):
                        d = 64 * h + 16 * w + g + 8 * r
                        index = d * 64 + (j ^ g) * 8 + 2 * t
                        for e in range(2):
                            written[(d, 8 * j + 2 * t + e)] = L["s"] + 2 * (index + e)
    if len(written) != dk * 64 or len(set(written.values())) != dk * 64:
        errors.append(f"dk={dk} S_bf16 writes do not cover the tile once")
    for step in range(dk // 16):
        for n in range(64):
            for kk in range(16):
                d = 16 * step + kk
                got = mn_major(L["s"] + step * 2048, dk * 128, n, kk)
                if got != written[(d, n)]:
                    errors.append(f"dk={dk} S_bf16 read step {step} n {n} k {kk}: "
                                  f"{got} != written {written[(d, n)]}")
                    return
    # S_bf16 writes: per warp and (h, j, r), 32 lanes x 4 bytes in 32 banks.
    for w in range(4):
        for h in range(L["boxes"]):
            for j in range(8):
                for r in range(2):
                    banks = set()
                    for lane in range(32):
                        g, t = lane // 4, lane % 4
                        d = 64 * h + 16 * w + g + 8 * r
                        banks.add((written[(d, 8 * j + 2 * t)] // 4) % 32)
                    if len(banks) != 32:
                        errors.append(f"dk={dk} S_bf16 write bank conflict w {w} j {j}")
                        return
    # K <- K * 2^(G_last - G_s) in place (scaling_chunks): every 16-byte
    # chunk of every row exactly once, and the chunk holds row `row`'s
    # elements (a row scale needs no logical column).
    touched = [(box, row, phys) for row, _, box, phys in scaling_chunks(dk)]
    if len(set(touched)) != L["boxes"] * 64 * 8 or len(touched) != len(set(touched)):
        errors.append(f"dk={dk} K scaling does not cover K once")
    for box, row, phys in touched:
        addr = L["k"] + box * BOX + row * 128 + phys * 16
        # the 8 elements there all belong to row `row` of the box
        for c in range(64):
            a = tma(L["k"] + box * BOX, row, c)
            if addr <= a < addr + 16:
                break
        else:
            errors.append(f"dk={dk} K scaling chunk of row {row} holds another row")
            return


def vector_layout(dk):
    """Vector gates (chunked-linear-wgmma-vector): after S_bf16, G [2][64][Dk + 8]
    f32 (row-major, unswizzled, padded), K~ [Dk / 64 boxes][64][64] (K's swizzled
    layout), the ratio table D [6][Dk] f32, then the barriers."""
    L = layout(dk)
    L["g"] = L["s"] + dk * 128
    L["kt"] = L["g"] + 2 * 64 * (dk + 8) * 4  # rows padded by 8 f32 (banks)
    L["d"] = L["kt"] + L["boxes"] * BOX  # D [6][Dk] f32, 2^(G_r(j+1) - G_r(j))
    L["bar"] = L["d"] + 6 * dk * 4
    L["total"] = L["bar"] + 32
    return L


def swz_index(row, dim):
    """The kernel's element index of (row, dim) in a [boxes][64][64] swizzled
    tile (vectorChunk's `swz`)."""
    box, inbox = dim // 64, dim % 64
    return box * 64 * 64 + row * 64 + (((inbox // 8) ^ (row % 8)) * 8) + inbox % 8


def check_vector(dk, errors):
    L = vector_layout(dk)
    for name in ("g", "kt", "d"):
        assert L[name] % 1024 == 0, (dk, name)
    assert L["bar"] % 8 == 0
    if dk == 128 and L["total"] != 187424:
        errors.append(f"dk={dk} vector total {L['total']}")
    # Hand-indexed reads (Q fragments, diagonal f32 rows, K~ / K scaling):
    # swz_index agrees with TMA's placement.
    for row in range(64):
        for dim in range(dk):
            if L["q"] + 2 * swz_index(row, dim) != tma(L["q"] + (dim // 64) * BOX, row, dim % 64):
                errors.append(f"dk={dk} swz_index row {row} dim {dim}")
                return
    # Per-element scaling (K~ and K <- K 2^(G_last - G_s), scaling_chunks):
    # the 8 elements of a chunk are logical dims 8 cidx .. 8 cidx + 7 (the G
    # column).
    for row, cidx, box, phys in scaling_chunks(dk):
        addr = L["k"] + box * BOX + row * 128 + phys * 16
        for e in range(8):
            d = 8 * cidx + e
            if tma(L["k"] + (d // 64) * BOX, row, d % 64) != addr + 2 * e:
                errors.append(f"dk={dk} scaling chunk row {row} cidx {cidx} elem {e}")
                return
    # A_j += (Q 2^(G - G_r)) K~_j^T: K~ as K-major B of m64n8k16, key block j
    # (keys 8j .. 8j + 7), k16 step `step`: start ktOff + box BOX + 1024 j +
    # 32 (step % 4) (ktDesc0 + offset >> 4). Element (n, k) is K~[8j + n,
    # 16 step + k], written at TMA's place for K (the same layout).
    for j in range(8):
        for step in range(dk // 16):
            box, inbox = step * 16 // 64, (step * 16 % 64) * 2
            for n in range(8):
                for kk in range(16):
                    d = 16 * step + kk
                    got = k_major(L["kt"] + box * BOX + 1024 * j + inbox, n, kk)
                    want = tma(L["kt"] + (d // 64) * BOX, 8 * j + n, d % 64)
                    if got != want:
                        errors.append(f"dk={dk} K~ n8 block {j} step {step} n {n} k {kk}")
                        return
    # Descriptor start addresses stay inside 14 bits (>> 4) after the offsets.
    if (L["total"] >> 4) >= (1 << 14):
        errors.append(f"dk={dk} descriptor start overflows")


def main():
    errors = []
    for dk in (64, 128):
        check(dk, errors)
        check_vector(dk, errors)
    for e in errors:
        print("MISMATCH:", e)
    print("linwg layouts:", "FAIL" if errors else "ok")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
