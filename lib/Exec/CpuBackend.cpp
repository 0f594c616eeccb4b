//===- CpuBackend.cpp - the compiled CPU path -----------------------------===//
//
// Buffers are laid out exactly as the spec's memref types say (bshd strides
// included) and passed as MLIR memref descriptors through the C interface
// (_mlir_ciface_<name>), so the run exercises the same strided access the
// kernels will see.
//
//===----------------------------------------------------------------------===//

#include "attn/Runtime/CpuBackend.h"
#include "attn/Runtime/Npy.h"
#include "attn/Spec/SpecToIR.h"
#include "attn/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>

using namespace mlir;

namespace attn {
namespace {

enum class Elem { F32, F16, BF16, I32, I8 };

size_t elemSize(Elem e) {
  switch (e) {
  case Elem::F32:
  case Elem::I32:
    return 4;
  case Elem::F16:
  case Elem::BF16:
    return 2;
  case Elem::I8:
    return 1;
  }
  return 4;
}

/// One argument: its bytes and the memref descriptor pointing at them.
struct Buffer {
  Elem elem = Elem::F32;
  std::vector<int64_t> shape, strides; // logical shape, element strides
  std::vector<uint8_t> bytes;
  std::vector<int64_t> descriptor; // {allocated, aligned, offset, sizes, strides}
  void *descriptorPtr = nullptr;

  int64_t physicalOffset(const std::vector<int64_t> &index) const {
    int64_t off = 0;
    for (size_t d = 0; d < index.size(); ++d)
      off += index[d] * strides[d];
    return off;
  }

  void finish() {
    int64_t span = 1;
    for (size_t d = 0; d < shape.size(); ++d)
      span += (shape[d] - 1) * strides[d];
    bool empty = false;
    for (int64_t s : shape)
      empty |= s == 0;
    bytes.assign(size_t(empty ? 1 : span) * elemSize(elem) + 64, 0);
    descriptor.clear();
    int64_t ptr = reinterpret_cast<int64_t>(bytes.data());
    descriptor = {ptr, ptr, 0};
    descriptor.insert(descriptor.end(), shape.begin(), shape.end());
    descriptor.insert(descriptor.end(), strides.begin(), strides.end());
  }

  void store(int64_t off, double v) {
    uint8_t *p = bytes.data() + size_t(off) * elemSize(elem);
    switch (elem) {
    case Elem::F32: {
      float f = float(v);
      std::memcpy(p, &f, 4);
      break;
    }
    case Elem::F16: {
      uint16_t h = floatToHalf(float(v));
      std::memcpy(p, &h, 2);
      break;
    }
    case Elem::BF16: {
      uint16_t h = floatToBf16(float(v));
      std::memcpy(p, &h, 2);
      break;
    }
    case Elem::I32: {
      int32_t i = int32_t(v);
      std::memcpy(p, &i, 4);
      break;
    }
    case Elem::I8: {
      int8_t i = v != 0 ? 1 : 0;
      std::memcpy(p, &i, 1);
      break;
    }
    }
  }

  double load(int64_t off) const {
    const uint8_t *p = bytes.data() + size_t(off) * elemSize(elem);
    switch (elem) {
    case Elem::F32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case Elem::F16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return halfToFloat(h);
    }
    case Elem::BF16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return bf16ToFloat(h);
    }
    case Elem::I32: {
      int32_t i;
      std::memcpy(&i, p, 4);
      return i;
    }
    case Elem::I8: {
      int8_t i;
      std::memcpy(&i, p, 1);
      return i;
    }
    }
    return 0;
  }
};

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

/// Element strides of a logical [B, H, S, D] (or [B, H, S] gate) array in the
/// spec's layout.
std::vector<int64_t> layoutStrides(const Spec &spec, const std::vector<int64_t> &shape) {
  if (spec.layout == Layout::BHSD || shape.size() < 3)
    return contiguousStrides(shape);
  int64_t h = shape[1], s = shape[2], d = shape.size() == 4 ? shape[3] : 1;
  return {s * h * d, d, h * d, 1}; // truncated below for rank 3
}

Buffer makeBuffer(const HostArray &a, Elem elem, std::vector<int64_t> strides) {
  Buffer buf;
  buf.elem = elem;
  buf.shape = a.shape;
  buf.strides = std::move(strides);
  buf.strides.resize(a.shape.size());
  buf.finish();
  forEachIndex(a.shape, [&](const std::vector<int64_t> &idx, int64_t linear) {
    buf.store(buf.physicalOffset(idx), a.data[size_t(linear)]);
  });
  return buf;
}

Buffer makeOutput(const std::vector<int64_t> &shape, Elem elem,
                  std::vector<int64_t> strides) {
  HostArray poison(shape, std::nan(""));
  return makeBuffer(poison, elem, std::move(strides));
}

HostArray readBack(const Buffer &buf) {
  HostArray a(buf.shape);
  forEachIndex(buf.shape, [&](const std::vector<int64_t> &idx, int64_t linear) {
    a.data[size_t(linear)] = buf.load(buf.physicalOffset(idx));
  });
  return a;
}

Elem elemOf(ElementType t) {
  switch (t) {
  case ElementType::F16:
    return Elem::F16;
  case ElementType::BF16:
    return Elem::BF16;
  case ElementType::F32:
    return Elem::F32;
  }
  return Elem::F32;
}

} // namespace

bool runCompiledCpu(const Spec &spec, const std::string &specPath,
                    const ExecInputs &in, ExecOutputs &out, std::string &error) {
  DialectRegistry registry;
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerAllToLLVMIRTranslations(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  std::string diagnostics;
  llvm::raw_string_ostream diagStream(diagnostics);
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    diagStream << diag << "\n";
    return success();
  });

  OwningOpRef<ModuleOp> module =
      buildSpecModule(context, spec, specPath, /*forceLse=*/true);
  module->walk([&](func::FuncOp f) {
    f->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(), UnitAttr::get(&context));
  });
  PassManager pm(&context);
  if (failed(buildCpuPipeline(pm)) || failed(pm.run(*module))) {
    error = "compiling " + specPath + " for the CPU failed: " + diagnostics;
    return false;
  }

  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  ExecutionEngineOptions options;
  auto transformer = makeOptimizingTransformer(/*optLevel=*/2, /*sizeLevel=*/0,
                                               /*targetMachine=*/nullptr);
  options.transformer = transformer;
  auto engine = ExecutionEngine::create(*module, options);
  if (!engine) {
    error = "creating the CPU execution engine failed: " +
            llvm::toString(engine.takeError());
    return false;
  }

  // Arguments in the ABI order of buildSpecModule.
  Elem et = elemOf(spec.dtype);
  std::vector<Buffer> buffers;
  auto input = [&](const HostArray &a, Elem e, std::vector<int64_t> strides) {
    buffers.push_back(makeBuffer(a, e, std::move(strides)));
  };
  auto headInput = [&](const HostArray &a) { input(a, et, layoutStrides(spec, a.shape)); };
  headInput(in.q);
  headInput(in.k);
  headInput(in.v);
  std::vector<int64_t> outShape = {in.B, in.Hq, in.Sq, in.Dv};
  size_t outIndex = 0, lseIndex = 0, stateIndex = 0;
  if (spec.kind == VariantKind::Attention) {
    if (spec.blockSparse)
      input(*in.blockMask, Elem::I8, contiguousStrides(in.blockMask->shape));
    if (spec.documents) {
      input(*in.qDocIds, Elem::I32, contiguousStrides(in.qDocIds->shape));
      input(*in.kvDocIds, Elem::I32, contiguousStrides(in.kvDocIds->shape));
    }
    if (spec.alibi != AlibiShape::None)
      input(*in.alibiSlopes, Elem::F32, contiguousStrides(in.alibiSlopes->shape));
    for (size_t i = 0; i < spec.tensors.size(); ++i) {
      const HostArray &t = in.tensors[i].second;
      input(t, spec.tensors[i].elementType == TensorElementType::F32 ? Elem::F32 : Elem::I32,
            contiguousStrides(t.shape));
    }
    outIndex = buffers.size();
    buffers.push_back(makeOutput(outShape, et, layoutStrides(spec, outShape)));
    {
      lseIndex = buffers.size();
      std::vector<int64_t> lseShape = {in.B, in.Hq, in.Sq};
      buffers.push_back(makeOutput(lseShape, Elem::F32, contiguousStrides(lseShape)));
    }
  } else {
    if (spec.kind == VariantKind::GatedLinearAttention) {
      const HostArray &g = *in.gates;
      std::vector<int64_t> strides = contiguousStrides(g.shape);
      if (spec.layout == Layout::BSHD && g.shape.size() == 3)
        strides = {g.shape[2] * g.shape[1], 1, g.shape[1]};
      else if (g.shape.size() == 4)
        strides = layoutStrides(spec, g.shape);
      input(g, Elem::F32, strides);
    }
    if (spec.initialState)
      input(*in.initialState, Elem::F32, contiguousStrides(in.initialState->shape));
    outIndex = buffers.size();
    buffers.push_back(makeOutput(outShape, et, layoutStrides(spec, outShape)));
    if (spec.finalState) {
      stateIndex = buffers.size();
      std::vector<int64_t> stateShape = {in.B, in.Hq, in.Dqk, in.Dv};
      buffers.push_back(makeOutput(stateShape, Elem::F32, contiguousStrides(stateShape)));
    }
  }

  std::vector<void *> args;
  for (Buffer &buf : buffers)
    buf.descriptorPtr = buf.descriptor.data();
  for (Buffer &buf : buffers)
    args.push_back(&buf.descriptorPtr);
  if (llvm::Error err = (*engine)->invokePacked("_mlir_ciface_" + spec.name, args)) {
    error = "running " + spec.name + " on the CPU failed: " + llvm::toString(std::move(err));
    return false;
  }

  out.out = readBack(buffers[outIndex]);
  if (spec.kind == VariantKind::Attention)
    out.lse = readBack(buffers[lseIndex]);
  if (spec.kind != VariantKind::Attention && spec.finalState)
    out.finalState = readBack(buffers[stateIndex]);
  return true;
}

} // namespace attn
