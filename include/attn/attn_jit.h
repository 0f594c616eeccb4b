/*===- attn_jit.h - C API: compile specs on first use, cached -----*- C -*-===*
 *
 * A JIT over the compiler: a spec (JSON text) becomes a loaded kernel on its
 * first request and is cached in memory and on disk. Cache key: SHA-256 of
 * the spec's canonical JSON, the compiler version, the chip and the options.
 * Disk entries are written to a private directory and renamed into place, so
 * concurrent processes never see half an entry; an entry whose PTX does not
 * match its manifest's hash is rebuilt. Thread-safe.
 *
 *===----------------------------------------------------------------------===*/
#ifndef ATTN_JIT_C_H
#define ATTN_JIT_C_H

#include "attn/attn_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct attn_jit attn_jit;

/* cache_dir NULL: $XDG_CACHE_HOME/attn, else $HOME/.cache/attn. chip NULL: sm_90a. */
attn_status attn_jit_create(const char *cache_dir, const char *chip, attn_jit **jit, char *err,
                            size_t err_len);
void attn_jit_destroy(attn_jit *jit);

/* The kernel for `spec_json`, compiled on first use. The kernel belongs to the
 * JIT (valid until attn_jit_destroy). */
attn_status attn_jit_get_kernel(attn_jit *jit, const char *spec_json, attn_kernel **kernel,
                                char *err, size_t err_len);

/* The tuning mode (see attn_runtime.h, attn_tune). Off unless turned on here
 * or by ATTN_TUNE=1 in the environment when the JIT is created. */
void attn_jit_set_tuning(attn_jit *jit, int enabled);

/* The kernel for `spec_json` and the tensors it will be launched with. Tuning
 * off: attn_jit_get_kernel. Tuning on: the spec's tuning candidates are
 * compiled on first use (once, into <cache_dir>/tune-<group>/, atomically),
 * timed on `stream` the first time a shape bucket is seen (attn_tune: scratch
 * outputs, `args`' inputs only read; this synchronizes `stream`), and the
 * choice is cached in $ATTN_TUNING_CACHE, else <cache_dir>/tuning.json, so
 * later processes launch nothing to choose. The kernel belongs to the JIT. */
attn_status attn_jit_get_kernel_for(attn_jit *jit, const char *spec_json,
                                    const attn_tensor *args, int num_args, void *stream,
                                    attn_kernel **kernel, char *err, size_t err_len);

typedef struct {
  uint64_t compiles, disk_hits, memory_hits, rebuilt_corrupt_entries;
  uint64_t tuned; /* attn_tune calls that chose a kernel (timed or from the cache file) */
} attn_jit_stats;
void attn_jit_get_stats(const attn_jit *jit, attn_jit_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_JIT_C_H */
