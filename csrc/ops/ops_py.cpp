// Bindings of ops/: the fused GAN kernels (bias_act, gan_loss, multi-tensor Adam) on raw addresses.
// They take the addresses of torch tensors (isogan/ops/*.py validates dtype, shape, device and
// contiguity) and, as every entry point of isogan._core, name the element type by the data's own
// dtype object: here the tensors' torch.dtype (see common/py_arrays.h for the convention).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/bindings.h"
#include "common/common.h"
#include "ops/ops.h"
#include "ops/ops_isa.h"

namespace isogan::ops {

// str() of the torch.dtype of each ScalarType, in enum order.
constexpr const char* kTorchDtypeNames[] = {"torch.float32", "torch.float64", "torch.float16", "torch.bfloat16"};

}  // namespace isogan::ops

namespace pybind11::detail {

// Loads a ScalarType from a torch.dtype with a kernel (float32, float64, float16, bfloat16); any other
// object does not load (TypeError). Read by name, so the module needs no torch headers.
template <>
struct type_caster<isogan::ops::ScalarType> {
  PYBIND11_TYPE_CASTER(isogan::ops::ScalarType, const_name("torch.dtype"));

  bool load(handle source, bool /*convert*/) {
    const handle type(reinterpret_cast<PyObject*>(Py_TYPE(source.ptr())));
    if (str(type.attr("__name__")).cast<std::string>() != "dtype" || !hasattr(type, "__module__") ||
        str(type.attr("__module__")).cast<std::string>() != "torch") {
      return false;
    }
    const std::string name = str(source).cast<std::string>();
    for (int code = 0; code < 4; ++code) {
      if (name == isogan::ops::kTorchDtypeNames[code]) {
        value = static_cast<isogan::ops::ScalarType>(code);
        return true;
      }
    }
    return false;
  }
};

}  // namespace pybind11::detail

namespace py = pybind11;

namespace {

// These wrappers check the scalar arguments once and release the GIL.

// Throws ValueError unless `dtype` is float32 or float64: every CPU kernel and the CUDA Adam
// (the CUDA bias_act and gan_loss also take float16 and bfloat16).
void require_float32_or_float64(isogan::ops::ScalarType dtype, const char* what) {
  if (dtype != isogan::ops::ScalarType::float32 && dtype != isogan::ops::ScalarType::float64) {
    throw std::invalid_argument(std::string(what) + ": unsupported dtype " +
                                isogan::ops::kTorchDtypeNames[static_cast<int>(dtype)] + ", float32 or float64 only");
  }
}

template <typename Pointer = void*>
Pointer ops_pointer(std::uintptr_t address, const char* name, bool required = true) {
  if (required && address == 0) throw std::invalid_argument(std::string(name) + " must not be a null pointer");
  return reinterpret_cast<Pointer>(address);
}

isogan::ops::BiasActParams ops_bias_act_params(std::uintptr_t x, std::uintptr_t bias, std::uintptr_t grad,
                                               std::uintptr_t out, isogan::index_t outer, isogan::index_t channels,
                                               isogan::index_t inner, int act, double alpha, double gain,
                                               double clamp, int order) {
  if (outer < 0 || channels <= 0 || inner <= 0) {
    throw std::invalid_argument("bias_act: outer must be >= 0 and channels, inner > 0");
  }
  if (act < 0 || act >= isogan::ops::kActivationCount) {
    throw std::invalid_argument("bias_act: unknown activation code " + std::to_string(act));
  }
  if (order < 0 || order > 2) throw std::invalid_argument("bias_act: order must be 0, 1 or 2");
  isogan::ops::BiasActParams p;
  p.x = ops_pointer<const void*>(x, "x");
  p.bias = ops_pointer<const void*>(bias, "bias", false);
  p.grad = ops_pointer<const void*>(grad, "grad", order > 0);
  p.out = ops_pointer(out, "out");
  p.outer = outer;
  p.channels = channels;
  p.inner = inner;
  p.act = static_cast<isogan::ops::Activation>(act);
  p.alpha = alpha;
  p.gain = gain;
  p.clamp = clamp;
  p.order = order;
  return p;
}

isogan::ops::GanLossParams ops_gan_loss_params(std::uintptr_t logits, std::uintptr_t grad, std::uintptr_t out,
                                               isogan::index_t n, bool real) {
  if (n <= 0) throw std::invalid_argument("gan_loss: needs at least one logit");
  isogan::ops::GanLossParams p;
  p.logits = ops_pointer<const void*>(logits, "logits");
  p.grad = ops_pointer<const void*>(grad, "grad", false);
  p.out = ops_pointer(out, "out");
  p.n = n;
  p.real = real;
  return p;
}

isogan::ops::AdamParams ops_adam_params(const std::vector<std::uintptr_t>& params,
                                        const std::vector<std::uintptr_t>& grads,
                                        const std::vector<std::uintptr_t>& exp_avgs,
                                        const std::vector<std::uintptr_t>& exp_avg_sqs,
                                        const std::vector<isogan::index_t>& sizes,
                                        const std::vector<double>& step_sizes,
                                        const std::vector<double>& bias_correction2_sqrts, double one_minus_beta1,
                                        double beta2, double one_minus_beta2, double eps, double weight_decay) {
  const std::size_t count = params.size();
  if (grads.size() != count || exp_avgs.size() != count || exp_avg_sqs.size() != count || sizes.size() != count ||
      step_sizes.size() != count || bias_correction2_sqrts.size() != count) {
    throw std::invalid_argument("adam: every per-tensor list must have one entry per parameter");
  }
  isogan::ops::AdamParams p;
  for (std::size_t t = 0; t < count; ++t) {
    if (sizes[t] < 0) throw std::invalid_argument("adam: negative tensor size");
    const bool required = sizes[t] > 0;
    p.params.push_back(ops_pointer(params[t], "param", required));
    p.grads.push_back(ops_pointer<const void*>(grads[t], "grad", required));
    p.exp_avgs.push_back(ops_pointer(exp_avgs[t], "exp_avg", required));
    p.exp_avg_sqs.push_back(ops_pointer(exp_avg_sqs[t], "exp_avg_sq", required));
  }
  p.sizes = sizes;
  p.step_sizes = step_sizes;
  p.bias_correction2_sqrts = bias_correction2_sqrts;
  p.one_minus_beta1 = one_minus_beta1;
  p.beta2 = beta2;
  p.one_minus_beta2 = one_minus_beta2;
  p.eps = eps;
  p.weight_decay = weight_decay;
  return p;
}

}  // namespace

void bind_ops(py::module_& m) {
  static constexpr const char* kCpuVariantNames[] = {"baseline", "avx2", "avx512"};
  m.def(
      "ops_cpu_variant", [] { return kCpuVariantNames[static_cast<int>(isogan::ops::active_cpu_variant())]; },
      "Instruction-set variant the bias_act/gan_loss CPU kernels run: 'baseline', 'avx2' or 'avx512'.");
  m.def(
      "ops_best_cpu_variant", [] { return kCpuVariantNames[static_cast<int>(isogan::ops::best_cpu_variant())]; },
      "Widest instruction-set variant of the CPU kernels that this CPU executes.");
  m.def(
      "ops_set_cpu_variant",
      [](const std::string& name) {
        for (int code = 0; code < 3; ++code) {
          if (name == kCpuVariantNames[code]) {
            isogan::ops::set_cpu_variant(static_cast<isogan::ops::CpuVariant>(code));
            return;
          }
        }
        throw std::invalid_argument("variant must be 'baseline', 'avx2' or 'avx512', got '" + name + "'");
      },
      py::arg("name"), "Run the CPU kernels with a narrower variant from now on (for tests and benchmarks).");
  m.def("_ops_grid_stride_fits_uint32", &isogan::ops::grid_stride_fits_uint32, py::arg("n"), py::arg("total_threads"),
        "Testing aid: whether the CUDA elementwise loops may index n elements in uint32 with that many threads.");
  m.def(
      "ops_bias_act_cpu",
      [](std::uintptr_t x, std::uintptr_t bias, std::uintptr_t grad, std::uintptr_t out, isogan::index_t outer,
         isogan::index_t channels, isogan::index_t inner, isogan::ops::ScalarType dtype, int act, double alpha, double gain, double clamp,
         int order) {
        const auto p = ops_bias_act_params(x, bias, grad, out, outer, channels, inner, act, alpha, gain, clamp, order);
        require_float32_or_float64(dtype, "bias_act on the CPU");
        py::gil_scoped_release release;
        isogan::ops::bias_act_cpu(p, dtype);
      },
      py::arg("x"), py::arg("bias"), py::arg("grad"), py::arg("out"), py::arg("outer"), py::arg("channels"),
      py::arg("inner"), py::arg("dtype"), py::arg("act"), py::arg("alpha"), py::arg("gain"), py::arg("clamp"),
      py::arg("order"),
      "Fused bias + activation (order 0) or its derivative times grad (order 1, 2) on CPU buffers.");
  m.def(
      "ops_gan_loss_cpu",
      [](std::uintptr_t logits, std::uintptr_t grad, std::uintptr_t out, isogan::index_t n, isogan::ops::ScalarType dtype, bool real) {
        const auto p = ops_gan_loss_params(logits, grad, out, n, real);
        require_float32_or_float64(dtype, "gan_loss on the CPU");
        py::gil_scoped_release release;
        isogan::ops::gan_loss_cpu(p, dtype);
      },
      py::arg("logits"), py::arg("grad"), py::arg("out"), py::arg("n"), py::arg("dtype"), py::arg("real"),
      "Logistic GAN loss (grad == 0) or its gradient on CPU buffers.");
  m.def(
      "ops_adam_cpu",
      [](const std::vector<std::uintptr_t>& params, const std::vector<std::uintptr_t>& grads,
         const std::vector<std::uintptr_t>& exp_avgs, const std::vector<std::uintptr_t>& exp_avg_sqs,
         const std::vector<isogan::index_t>& sizes, const std::vector<double>& step_sizes,
         const std::vector<double>& bias_correction2_sqrts, isogan::ops::ScalarType dtype, double one_minus_beta1, double beta2,
         double one_minus_beta2, double eps, double weight_decay) {
        const auto p = ops_adam_params(params, grads, exp_avgs, exp_avg_sqs, sizes, step_sizes,
                                       bias_correction2_sqrts, one_minus_beta1, beta2, one_minus_beta2, eps,
                                       weight_decay);
        require_float32_or_float64(dtype, "adam");
        py::gil_scoped_release release;
        isogan::ops::adam_cpu(p, dtype);
      },
      py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("sizes"),
      py::arg("step_sizes"), py::arg("bias_correction2_sqrts"), py::arg("dtype"), py::arg("one_minus_beta1"),
      py::arg("beta2"), py::arg("one_minus_beta2"), py::arg("eps"), py::arg("weight_decay"),
      "One Adam step over many CPU tensors (multi-tensor apply).");
#ifdef ISOGAN_WITH_CUDA
  m.def(
      "ops_bias_act_cuda",
      [](std::uintptr_t x, std::uintptr_t bias, std::uintptr_t grad, std::uintptr_t out, isogan::index_t outer,
         isogan::index_t channels, isogan::index_t inner, isogan::ops::ScalarType dtype, int act, double alpha, double gain, double clamp,
         int order, int device, std::uintptr_t stream) {
        const auto p = ops_bias_act_params(x, bias, grad, out, outer, channels, inner, act, alpha, gain, clamp, order);
        py::gil_scoped_release release;
        isogan::ops::bias_act_cuda(p, dtype, device, stream);
      },
      py::arg("x"), py::arg("bias"), py::arg("grad"), py::arg("out"), py::arg("outer"), py::arg("channels"),
      py::arg("inner"), py::arg("dtype"), py::arg("act"), py::arg("alpha"), py::arg("gain"), py::arg("clamp"),
      py::arg("order"), py::arg("device"), py::arg("stream"),
      "CUDA twin of ops_bias_act_cpu, asynchronous on `stream`.");
  m.def("ops_gan_loss_cuda_partials", &isogan::ops::gan_loss_cuda_partials,
        "Length of the float64 scratch buffer the CUDA gan_loss forward needs.");
  m.def(
      "ops_gan_loss_cuda",
      [](std::uintptr_t logits, std::uintptr_t grad, std::uintptr_t out, isogan::index_t n, isogan::ops::ScalarType dtype, bool real,
         std::uintptr_t partials, int device, std::uintptr_t stream) {
        const auto p = ops_gan_loss_params(logits, grad, out, n, real);
        double* scratch = ops_pointer<double*>(partials, "partials", grad == 0);
        py::gil_scoped_release release;
        isogan::ops::gan_loss_cuda(p, dtype, scratch, device, stream);
      },
      py::arg("logits"), py::arg("grad"), py::arg("out"), py::arg("n"), py::arg("dtype"), py::arg("real"),
      py::arg("partials"), py::arg("device"), py::arg("stream"),
      "CUDA twin of ops_gan_loss_cpu, asynchronous on `stream`.");
  m.def(
      "ops_adam_cuda",
      [](const std::vector<std::uintptr_t>& params, const std::vector<std::uintptr_t>& grads,
         const std::vector<std::uintptr_t>& exp_avgs, const std::vector<std::uintptr_t>& exp_avg_sqs,
         const std::vector<isogan::index_t>& sizes, const std::vector<double>& step_sizes,
         const std::vector<double>& bias_correction2_sqrts, isogan::ops::ScalarType dtype, double one_minus_beta1, double beta2,
         double one_minus_beta2, double eps, double weight_decay, int device, std::uintptr_t stream) {
        const auto p = ops_adam_params(params, grads, exp_avgs, exp_avg_sqs, sizes, step_sizes,
                                       bias_correction2_sqrts, one_minus_beta1, beta2, one_minus_beta2, eps,
                                       weight_decay);
        require_float32_or_float64(dtype, "adam");
        py::gil_scoped_release release;
        isogan::ops::adam_cuda(p, dtype, device, stream);
      },
      py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("sizes"),
      py::arg("step_sizes"), py::arg("bias_correction2_sqrts"), py::arg("dtype"), py::arg("one_minus_beta1"),
      py::arg("beta2"), py::arg("one_minus_beta2"), py::arg("eps"), py::arg("weight_decay"), py::arg("device"),
      py::arg("stream"), "CUDA twin of ops_adam_cpu: one launch per 32 tensors, asynchronous on `stream`.");
#endif
}
