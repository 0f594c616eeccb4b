/*===- attn_dlpack.h - C API: launch on DLPack tensors ------------*- C -*-===*
 *
 * DLPack (DLTensor) entry point over attn_runtime.h, so any framework that
 * exports DLPack can call kernels without copies. Include <dlpack/dlpack.h>
 * first to use the official header; otherwise the ABI-compatible subset
 * below (DLPack 0.8+ layout) is declared.
 *
 *===----------------------------------------------------------------------===*/
#ifndef ATTN_DLPACK_C_H
#define ATTN_DLPACK_C_H

#include "attn/attn_runtime.h"

#ifndef DLPACK_EXTERN_C
#include <stdint.h>
typedef enum { kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3, kDLCUDAManaged = 13 } DLDeviceType;
typedef struct {
  DLDeviceType device_type;
  int32_t device_id;
} DLDevice;
typedef enum { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4 } DLDataTypeCode;
typedef struct {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
} DLDataType;
typedef struct {
  void *data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t *shape;
  int64_t *strides; /* NULL: compact row-major */
  uint64_t byte_offset;
} DLTensor;
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Converts one DLTensor (CUDA device memory, f32/f16/bf16/i32/u8, rank <= 8). */
attn_status attn_tensor_from_dlpack(const DLTensor *in, attn_tensor *out, char *err,
                                    size_t err_len);

/* attn_kernel_launch on DLPack tensors, in attn_kernel_argument_role() order. */
attn_status attn_kernel_launch_dlpack(attn_kernel *kernel, const DLTensor *const *args,
                                      int num_args, void *stream, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_DLPACK_C_H */
