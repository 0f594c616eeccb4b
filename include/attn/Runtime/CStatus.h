//===- CStatus.h - C API error reporting (internal) -------------*- C++ -*-===//
#ifndef ATTN_RUNTIME_CSTATUS_H
#define ATTN_RUNTIME_CSTATUS_H

#include "attn/attn_runtime.h"

#include <cstring>
#include <string>

namespace attn {

/// Copies `message` into the caller's error buffer (truncated, always
/// NUL-terminated) and returns `status`: how every C entry point fails.
inline attn_status reportStatus(char *err, size_t errLen, attn_status status,
                                const std::string &message) {
  if (err && errLen > 0) {
    std::strncpy(err, message.c_str(), errLen - 1);
    err[errLen - 1] = '\0';
  }
  return status;
}

} // namespace attn

#endif // ATTN_RUNTIME_CSTATUS_H
