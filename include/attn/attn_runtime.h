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

/* Checks every tensor against the kernel's spec, then launches on `stream`
 * (a CUstream; NULL for the default stream). Asynchronous: synchronize the
 * stream before reading outputs. */
attn_status attn_kernel_launch(attn_kernel *kernel, const attn_tensor *args, int num_args,
                               void *stream, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_RUNTIME_C_H */
