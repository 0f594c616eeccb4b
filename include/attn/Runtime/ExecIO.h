//===- ExecIO.h - attn-exec's input and output directories ------*- C++ -*-===//
//
// Loads the .npy inputs of one run from a directory, binding every dynamic
// size from the files and checking them against each other and the spec, and
// writes the outputs atomically (all files appear, or none).
//
// Inputs (see tools/attn-exec/attn-exec.cpp for the full contract):
//   q.npy [B, Hq, Sq, Dqk], k.npy [B, Hkv, Sk, Dqk], v.npy [B, Hkv, Sk, Dv]
//     (files shaped [B, S, H, D] when the spec's layout is bshd);
//   g.npy, block_mask.npy, q_doc_ids.npy, kv_doc_ids.npy, alibi_slopes.npy,
//   h0.npy and <tensor>.npy where the variant needs them.
// Outputs: o.npy (layout of q, Dv wide), lse.npy [B, Hq, Sq] for attention,
//   ht.npy [B, H, Dqk, Dv] for linear kinds with a final state; all float32.
//
//===----------------------------------------------------------------------===//
#ifndef ATTN_RUNTIME_EXECIO_H
#define ATTN_RUNTIME_EXECIO_H

#include "attn/Runtime/HostTensors.h"
#include "attn/Spec/Spec.h"

#include <string>

namespace attn {

/// Reads the inputs `spec` needs from `dir` into `in` (logical order, q/k/v
/// rounded to the spec's element type). On failure returns false with a
/// message naming the file and, for shape problems, the expected shape, e.g.
/// "k.npy: expected shape [2, 4, 130, 64] ([B, Hkv, Sk, Dqk]), got [2, 4, 130, 32]".
bool loadInputs(const Spec &spec, const std::string &dir, ExecInputs &in,
                std::string &error);

/// Writes o.npy, lse.npy (attention) and ht.npy (linear kinds with a final
/// state) to `dir` (created if missing) as float32, each first under a
/// temporary name, renamed only once all were written; on failure no new
/// file is left in `dir`.
bool writeOutputs(const Spec &spec, const std::string &dir,
                  const ExecOutputs &out, std::string &error);

} // namespace attn

#endif // ATTN_RUNTIME_EXECIO_H
