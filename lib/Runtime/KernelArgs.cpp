//===- KernelArgs.cpp - the argument buffers of one compiled kernel -------===//

#include "attn/Runtime/KernelArgs.h"
#include "attn/Runtime/Npy.h"

#include <cmath>
#include <cstring>

namespace attn {

size_t bufferElemSize(BufferElem e) {
  switch (e) {
  case BufferElem::F32:
  case BufferElem::I32:
    return 4;
  case BufferElem::F16:
  case BufferElem::BF16:
    return 2;
  case BufferElem::I8:
    return 1;
  }
  return 4;
}

const char *bufferElemName(BufferElem e) {
  switch (e) {
  case BufferElem::F32:
    return "f32";
  case BufferElem::F16:
    return "f16";
  case BufferElem::BF16:
    return "bf16";
  case BufferElem::I32:
    return "i32";
  case BufferElem::I8:
    return "i8";
  }
  return "?";
}

int64_t HostBuffer::physicalOffset(const std::vector<int64_t> &index) const {
  int64_t off = 0;
  for (size_t d = 0; d < index.size(); ++d)
    off += index[d] * strides[d];
  return off;
}

void HostBuffer::store(int64_t off, double v) {
  uint8_t *p = bytes.data() + size_t(off) * bufferElemSize(elem);
  switch (elem) {
  case BufferElem::F32: {
    float f = float(v);
    std::memcpy(p, &f, 4);
    return;
  }
  case BufferElem::F16: {
    uint16_t h = floatToHalf(float(v));
    std::memcpy(p, &h, 2);
    return;
  }
  case BufferElem::BF16: {
    uint16_t h = floatToBf16(float(v));
    std::memcpy(p, &h, 2);
    return;
  }
  case BufferElem::I32: {
    int32_t i = int32_t(v);
    std::memcpy(p, &i, 4);
    return;
  }
  case BufferElem::I8: {
    int8_t i = v != 0 ? 1 : 0;
    std::memcpy(p, &i, 1);
    return;
  }
  }
}

double HostBuffer::load(int64_t off) const {
  const uint8_t *p = bytes.data() + size_t(off) * bufferElemSize(elem);
  switch (elem) {
  case BufferElem::F32: {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  case BufferElem::F16: {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return halfToFloat(h);
  }
  case BufferElem::BF16: {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return bf16ToFloat(h);
  }
  case BufferElem::I32: {
    int32_t i;
    std::memcpy(&i, p, 4);
    return i;
  }
  case BufferElem::I8: {
    int8_t i;
    std::memcpy(&i, p, 1);
    return i;
  }
  }
  return 0;
}

namespace {

/// Visits every logical index of `shape` in row-major order.
template <typename Fn> void forEachIndex(const std::vector<int64_t> &shape, Fn fn) {
  int64_t n = HostArray::numElementsOf(shape);
  std::vector<int64_t> index(shape.size(), 0);
  for (int64_t linear = 0; linear < n; ++linear) {
    fn(index, linear);
    for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
      if (++index[d] < shape[d])
        break;
      index[d] = 0;
    }
  }
}

std::vector<int64_t> contiguousStrides(const std::vector<int64_t> &shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int64_t d = int64_t(shape.size()) - 2; d >= 0; --d)
    strides[d] = strides[d + 1] * shape[d + 1];
  return strides;
}

/// Element strides of a logical [B, H, S, D] or [B, H, S] array in `layout`
/// (bshd: memory order [B, S, H, D] / [B, S, H]).
std::vector<int64_t> layoutStrides(Layout layout, const std::vector<int64_t> &shape) {
  if (layout == Layout::BHSD || shape.size() < 3)
    return contiguousStrides(shape);
  int64_t h = shape[1], s = shape[2];
  if (shape.size() == 3)
    return {s * h, 1, h};
  int64_t d = shape[3];
  return {s * h * d, d, h * d, 1};
}

HostBuffer makeBuffer(const std::string &role, const HostArray &a, BufferElem elem,
                      std::vector<int64_t> strides, bool isOutput) {
  HostBuffer buf;
  buf.role = role;
  buf.elem = elem;
  buf.shape = a.shape;
  buf.strides = std::move(strides);
  buf.isOutput = isOutput;
  int64_t span = 1;
  bool empty = false;
  for (size_t d = 0; d < buf.shape.size(); ++d) {
    span += (buf.shape[d] - 1) * buf.strides[d];
    empty |= buf.shape[d] == 0;
  }
  buf.bytes.assign(size_t(empty ? 1 : span) * bufferElemSize(elem), 0);
  forEachIndex(a.shape, [&](const std::vector<int64_t> &idx, int64_t linear) {
    buf.store(buf.physicalOffset(idx), a.data[size_t(linear)]);
  });
  return buf;
}

BufferElem elemOf(ElementType t) {
  switch (t) {
  case ElementType::F16:
    return BufferElem::F16;
  case ElementType::BF16:
    return BufferElem::BF16;
  case ElementType::F32:
    return BufferElem::F32;
  }
  return BufferElem::F32;
}

} // namespace

std::vector<HostBuffer> bindArguments(const Spec &spec, const ExecInputs &in,
                                      bool withLse) {
  BufferElem et = elemOf(spec.dtype);
  std::vector<HostBuffer> buffers;
  auto input = [&](const std::string &role, const HostArray &a, BufferElem e,
                   std::vector<int64_t> strides) {
    buffers.push_back(makeBuffer(role, a, e, std::move(strides), false));
  };
  auto output = [&](const std::string &role, std::vector<int64_t> shape, BufferElem e,
                    std::vector<int64_t> strides) {
    HostArray poison(shape, std::nan(""));
    buffers.push_back(makeBuffer(role, poison, e, std::move(strides), true));
  };
  auto contiguous = [](const HostArray &a) { return contiguousStrides(a.shape); };
  input("query", in.q, et, layoutStrides(spec.layout, in.q.shape));
  input("key", in.k, et, layoutStrides(spec.layout, in.k.shape));
  input("value", in.v, et, layoutStrides(spec.layout, in.v.shape));
  std::vector<int64_t> outShape = {in.B, in.Hq, in.Sq, in.Dv};
  if (spec.kind == VariantKind::Attention) {
    if (spec.blockSparse)
      input("block_mask", *in.blockMask, BufferElem::I8, contiguous(*in.blockMask));
    if (spec.documents) {
      input("q_doc_ids", *in.qDocIds, BufferElem::I32, contiguous(*in.qDocIds));
      input("kv_doc_ids", *in.kvDocIds, BufferElem::I32, contiguous(*in.kvDocIds));
    }
    if (spec.alibi != AlibiShape::None)
      input("alibi_slopes", *in.alibiSlopes, BufferElem::F32, contiguous(*in.alibiSlopes));
    for (size_t i = 0; i < spec.tensors.size(); ++i) {
      const HostArray &t = in.tensors[i].second;
      input("tensor:" + spec.tensors[i].name, t,
            spec.tensors[i].elementType == TensorElementType::F32 ? BufferElem::F32
                                                                  : BufferElem::I32,
            contiguous(t));
    }
    output("out", outShape, et, layoutStrides(spec.layout, outShape));
    if (spec.returnLse || withLse) {
      std::vector<int64_t> lseShape = {in.B, in.Hq, in.Sq};
      output("lse", lseShape, BufferElem::F32, contiguousStrides(lseShape));
    }
    return buffers;
  }
  if (spec.kind == VariantKind::GatedLinearAttention) {
    const HostArray &g = *in.gates;
    input("gates", g, BufferElem::F32,
          g.shape.size() == 1 ? contiguous(g) : layoutStrides(spec.layout, g.shape));
  }
  if (spec.initialState)
    input("initial_state", *in.initialState, BufferElem::F32, contiguous(*in.initialState));
  output("out", outShape, et, layoutStrides(spec.layout, outShape));
  if (spec.finalState) {
    std::vector<int64_t> stateShape = {in.B, in.Hq, in.Dqk, in.Dv};
    output("final_state", stateShape, BufferElem::F32, contiguousStrides(stateShape));
  }
  return buffers;
}

std::vector<int64_t> expectedStrides(const Spec &spec, const std::string &role,
                                     const std::vector<int64_t> &shape) {
  bool laidOut = role == "query" || role == "key" || role == "value" || role == "out" ||
                 (role == "gates" && shape.size() > 1);
  return laidOut ? layoutStrides(spec.layout, shape) : contiguousStrides(shape);
}

std::vector<std::string> argumentRoles(const Spec &spec, bool withLse) {
  std::vector<std::string> roles = {"query", "key", "value"};
  if (spec.kind == VariantKind::Attention) {
    if (spec.blockSparse)
      roles.push_back("block_mask");
    if (spec.documents) {
      roles.push_back("q_doc_ids");
      roles.push_back("kv_doc_ids");
    }
    if (spec.alibi != AlibiShape::None)
      roles.push_back("alibi_slopes");
    for (const TensorDecl &t : spec.tensors)
      roles.push_back("tensor:" + t.name);
    roles.push_back("out");
    if (spec.returnLse || withLse)
      roles.push_back("lse");
    return roles;
  }
  if (spec.kind == VariantKind::GatedLinearAttention)
    roles.push_back("gates");
  if (spec.initialState)
    roles.push_back("initial_state");
  roles.push_back("out");
  if (spec.finalState)
    roles.push_back("final_state");
  return roles;
}

void readOutputs(const Spec &spec, const std::vector<HostBuffer> &buffers,
                 ExecOutputs &out) {
  (void)spec;
  for (const HostBuffer &buf : buffers) {
    if (!buf.isOutput)
      continue;
    HostArray a(buf.shape);
    forEachIndex(buf.shape, [&](const std::vector<int64_t> &idx, int64_t linear) {
      a.data[size_t(linear)] = buf.load(buf.physicalOffset(idx));
    });
    if (buf.role == "out")
      out.out = std::move(a);
    else if (buf.role == "lse")
      out.lse = std::move(a);
    else if (buf.role == "final_state")
      out.finalState = std::move(a);
  }
}

} // namespace attn
