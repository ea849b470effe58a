// torch_sugar._C: build information, the surrogate table, and the direct eager entry to the ops.
// The ops themselves live in the Python-free library libtorch_sugar.so, loaded with
// torch.ops.load_library.
#include <torch_sugar/ops.h>

#include <ATen/core/dispatch/Dispatcher.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>
#include <torch/version.h>

#include <optional>
#include <string_view>

#ifndef TORCH_SUGAR_VERSION
#error "TORCH_SUGAR_VERSION must be defined by the build"
#endif

namespace py = pybind11;

namespace {

// The direct eager entry (torch_sugar.relu's fast path): an unboxed call through the dispatcher,
// the same call C++ programs make, without the boxed argument stack and schema matching of the
// generic torch.ops entry (about 8,000 instructions per call, counted with callgrind). Autograd,
// the kernels and every dispatch key behave as for torch.ops.sugar.relu; the Python wrapper
// sends everything this path does not handle (__torch_function__ overrides, torch.compile,
// TorchScript) to torch.ops.sugar.relu.
at::Tensor relu_direct(
    const at::Tensor& self,
    std::string_view surrogate,
    std::optional<double> alpha,
    bool negative_only) {
  // Looked up on first use (the op library is loaded after this module is imported).
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("sugar::relu", "")
          .typed<at::Tensor(const at::Tensor&, c10::string_view, std::optional<double>, bool)>();
  pybind11::gil_scoped_release no_gil;
  return op.call(self, surrogate, alpha, negative_only);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "torch-sugar build information";
  m.attr("version") = TORCH_SUGAR_VERSION;
  m.attr("torch_version") = TORCH_VERSION;
#ifdef SUGAR_WITH_CUDA
  m.attr("cuda_compiled") = true;
#ifdef SUGAR_CUDA_ARCH_LIST
  m.attr("cuda_arch_list") = SUGAR_CUDA_ARCH_LIST;
#else
  m.attr("cuda_arch_list") = py::none();
#endif
#else
  m.attr("cuda_compiled") = false;
  m.attr("cuda_arch_list") = py::none();
#endif
  m.def(
      "surrogates",
      [] {
        py::list rows;
        for (const auto& s : sugar::surrogates()) {
          py::dict row;
          row["name"] = s.name;
          row["default_alpha"] = s.default_alpha;
          row["alpha_range"] = s.alpha_range;
          row["description"] = s.description;
          row["alias_of"] = s.alias_of.empty() ? py::object(py::none()) : py::str(s.alias_of);
          rows.append(row);
        }
        return rows;
      },
      "The surrogate table of the C++ library, one dict per accepted name.");
  m.def(
      // noconvert: exactly a float (or None) and a bool; an int alpha, or 1 for negative_only,
      // raises TypeError here and takes the Python wrapper's checked path.
      "relu", &relu_direct, pybind11::arg("self"), pybind11::arg("surrogate"),
      pybind11::arg("alpha").noconvert().none(true), pybind11::arg("negative_only").noconvert(),
      "sugar::relu through the dispatcher, unboxed (torch_sugar.relu's eager fast path).");
}
