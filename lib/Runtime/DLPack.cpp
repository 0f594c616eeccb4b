//===- DLPack.cpp - DLTensor -> attn_tensor --------------------------------===//

#include "attn/attn_dlpack.h"
#include "attn/Runtime/CStatus.h"

#include <string>
#include <vector>

using attn::reportStatus;

extern "C" {

attn_status attn_tensor_from_dlpack(const DLTensor *in, attn_tensor *out, char *err,
                                    size_t errLen) {
  if (!in || !out)
    return reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT, "null DLTensor");
  if (in->device.device_type != kDLCUDA)
    return reportStatus(err, errLen, ATTN_ERROR_NOT_ON_DEVICE,
                  "the tensor is not on a CUDA device (DLPack device type " +
                      std::to_string(int(in->device.device_type)) + ")");
  if (in->ndim < 1 || in->ndim > ATTN_MAX_RANK)
    return reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT,
                  "rank " + std::to_string(in->ndim) + " is not supported (1.." +
                      std::to_string(ATTN_MAX_RANK) + ")");
  const DLDataType &t = in->dtype;
  attn_dtype dtype;
  if (t.lanes != 1)
    return reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT, "vector dtypes (lanes > 1) are not supported");
  if (t.code == kDLFloat && t.bits == 32)
    dtype = ATTN_F32;
  else if (t.code == kDLFloat && t.bits == 16)
    dtype = ATTN_F16;
  else if (t.code == kDLBfloat && t.bits == 16)
    dtype = ATTN_BF16;
  else if (t.code == kDLInt && t.bits == 32)
    dtype = ATTN_I32;
  else if ((t.code == kDLUInt || t.code == kDLInt) && t.bits == 8)
    dtype = ATTN_U8;
  else
    return reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT,
                  "dtype (code " + std::to_string(t.code) + ", " + std::to_string(t.bits) +
                      " bits) is not supported; expected f32, f16, bf16, i32 or u8");
  attn_tensor r{};
  r.data = static_cast<char *>(in->data) + in->byte_offset;
  r.ndim = in->ndim;
  r.dtype = dtype;
  int64_t stride = 1;
  for (int d = in->ndim - 1; d >= 0; --d) {
    r.shape[d] = in->shape[d];
    r.strides[d] = in->strides ? in->strides[d] : stride;
    stride *= in->shape[d];
  }
  *out = r;
  return ATTN_OK;
}

attn_status attn_kernel_launch_dlpack(attn_kernel *kernel, const DLTensor *const *args,
                                      int numArgs, void *stream, char *err, size_t errLen) {
  if (numArgs < 0 || (!args && numArgs > 0))
    return reportStatus(err, errLen, ATTN_ERROR_INVALID_ARGUMENT, "null argument array");
  std::vector<attn_tensor> tensors(static_cast<size_t>(numArgs));
  for (int i = 0; i < numArgs; ++i) {
    attn_status s = attn_tensor_from_dlpack(args[i], &tensors[size_t(i)], err, errLen);
    if (s != ATTN_OK) {
      const char *role = attn_kernel_argument_role(kernel, i);
      std::string prefix = "argument " + std::to_string(i) + (role ? std::string(" (") + role + ")" : "") + ": ";
      return reportStatus(err, errLen, s, prefix + (err ? err : ""));
    }
  }
  return attn_kernel_launch(kernel, tensors.data(), numArgs, stream, err, errLen);
}

} // extern "C"
