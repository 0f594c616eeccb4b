/*===- attn_runtime.h - C API: load and launch attn kernels -------*- C -*-===*
 *
 * The stable C interface over the runtime library (no MLIR, no C++ in the
 * interface): load a kernel from its manifest, launch it on device tensors on
 * a CUDA stream. Tensors follow DLPack's conventions (shape and strides in
 * elements, any strides with a unit innermost one), so [B, S, H, D] views are
 * passed as the logical [B, H, S, D] with permuted strides, without copies.
 * Every failure returns a status and writes a message to `err`; nothing
 * aborts the host process.
 *
 *===----------------------------------------------------------------------===*/
#ifndef ATTN_RUNTIME_C_H
#define ATTN_RUNTIME_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  ATTN_OK = 0,
  ATTN_ERROR_INVALID_ARGUMENT = 1, /* wrong count, dtype, rank, shape, strides */
  ATTN_ERROR_NOT_ON_DEVICE = 2,    /* a tensor's data is not CUDA device memory */
  ATTN_ERROR_CUDA = 3,             /* the driver failed (message names the call) */
  ATTN_ERROR_IO = 4                /* manifest or kernel image unreadable */
} attn_status;

typedef enum { ATTN_F32 = 0, ATTN_F16 = 1, ATTN_BF16 = 2, ATTN_I32 = 3, ATTN_U8 = 4 } attn_dtype;

#define ATTN_MAX_RANK 8

typedef struct {
  void *data;                     /* device pointer to element [0, ..., 0] */
  int32_t ndim;
  int64_t shape[ATTN_MAX_RANK];
  int64_t strides[ATTN_MAX_RANK]; /* in elements */
  attn_dtype dtype;
} attn_tensor;

typedef struct attn_kernel attn_kernel;

/* Reads the manifest (and the PTX/cubin next to it). */
attn_status attn_kernel_load(const char *manifest_path, attn_kernel **kernel, char *err,
                             size_t err_len);
void attn_kernel_destroy(attn_kernel *kernel);

/* The kernel's arguments, in launch order ("query", "key", ..., "out", "lse"). */
int attn_kernel_num_arguments(const attn_kernel *kernel);
const char *attn_kernel_argument_role(const attn_kernel *kernel, int index);

/* 1 if the kernel reads argument `index` only through a TMA tensor map that
 * the launch encodes from the tensor's own strides: the argument then takes
 * any strides such a map can describe (unit last stride, the others positive
 * multiples of 16 bytes, 16-byte aligned data), e.g. the query of a packed
 * [B, S, 3, H, D] projection, without a copy. 0 if it must have the strides
 * of the spec's layout (or for a bad kernel or index). Holds for every
 * per-length variant of the kernel. */
int attn_kernel_argument_any_strides(const attn_kernel *kernel, int index);

/* Checks every tensor against the kernel's spec, then launches on `stream`
 * (a CUstream; NULL for the default stream). Asynchronous: synchronize the
 * stream before reading outputs. A kernel compiled with --dynamic-scheduler
 * lists a last role "tile_counter" (int32, shape [1]): pass it or leave it
 * out (num_args one less; the kernel then keeps one per stream); either way
 * it is zeroed with cuMemsetD32Async on `stream` before the launch. */
attn_status attn_kernel_launch(attn_kernel *kernel, const attn_tensor *args, int num_args,
                               void *stream, char *err, size_t err_len);

/*===--------------------------------------------------------------------===*
 * Tuning (optional): choose the fastest of a spec's kernel candidates
 *
 * `attn-compile SPEC --tune-candidates -o DIR` writes one kernel per legal
 * tile/kernel-shape choice under DIR/<spec name>/<candidate>/. attn_tune
 * times those candidates on the caller's problem (the shapes of `args`) on
 * `stream` with CUDA events (warm-up launches, then the median of
 * `repeats`), writing the outputs into scratch buffers it allocates (never
 * into the caller's "out"/"lse"/"final_state"; inputs are only read), and
 * returns the fastest. The choice is cached in a JSON file, keyed by the
 * tuning group (spec + chip + compiler), the device (compute capability and
 * name) and a shape bucket (batch x heads and sequence lengths rounded up to
 * powers of two, head dims, dtype): later calls with a shape in the same
 * bucket launch nothing and read the choice back. Synchronizes `stream`
 * when it times; a cache hit is asynchronous-safe (no launch at all).
 *===--------------------------------------------------------------------===*/

#define ATTN_TUNE_MAX_CANDIDATES 32

typedef struct {
  int warmup;             /* launches per candidate before timing; 0: 3 */
  int repeats;            /* timed launches per candidate (median); 0: 20 */
  int retune;             /* nonzero: ignore a cached choice and replace it */
  int no_cache;           /* nonzero: neither read nor write the cache file */
  double timeout_seconds; /* per candidate, for its launches to finish; 0: 30 */
  const char *cache_path; /* NULL: $ATTN_TUNING_CACHE, else
                             $XDG_CACHE_HOME/attn/tuning.json, else
                             $HOME/.cache/attn/tuning.json */
  const char *group;      /* NULL: `candidates_dir` must hold exactly one group */
} attn_tune_options;

typedef struct {
  char candidate[64];
  double median_ms; /* < 0: the candidate failed (see the message of attn_tune's
                       result warning) */
} attn_tune_timing;

typedef struct {
  char group[80];
  char candidate[64];         /* the winner's tag */
  char manifest_path[4096];   /* the winner's manifest (attn_kernel_load it) */
  char key[512];              /* the cache key */
  int from_cache;             /* 1: read from the cache, nothing was launched */
  int num_timings;            /* entries of `timings` (set order; cached ones on a hit) */
  attn_tune_timing timings[ATTN_TUNE_MAX_CANDIDATES];
  char warning[1024];         /* non-fatal: failed candidates, cache not written */
} attn_tune_result;

/* Fills the defaults (all zero / NULL). */
void attn_tune_options_init(attn_tune_options *options);

/* Tunes the candidates under `candidates_dir` for `args` (the tensors the
 * kernel would be launched with, as for attn_kernel_launch) on `stream`.
 * `kernel` may be NULL; otherwise it receives the winner, loaded (the
 * caller destroys it). Errors: ATTN_ERROR_INVALID_ARGUMENT for an unknown
 * group, candidates of different specs or tensors that do not fit the spec;
 * ATTN_ERROR_IO for unreadable manifests; ATTN_ERROR_CUDA when no candidate
 * could be timed. `options` may be NULL (defaults). */
attn_status attn_tune(const char *candidates_dir, const attn_tensor *args, int num_args,
                      void *stream, const attn_tune_options *options, attn_tune_result *result,
                      attn_kernel **kernel, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_RUNTIME_C_H */
