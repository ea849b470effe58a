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
//
// The three non-tensor arguments arrive as Python objects and are type-checked here, exactly as
// strictly as the wrapper's checked path: surrogate a str, alpha a float or None, negative_only a
// bool. Anything else raises TypeError, and the wrapper takes its checked path, whose errors
// name the argument (an int alpha is a value there). pybind11's own casters are not strict enough
// and differ between its versions: std::string_view takes bytes, bool takes numpy.bool_, and from
// pybind11 3.1 (torch 2.14 and later) noconvert() on a double takes any int, True included, so
// relu(x, "bsilu", True) ran with alpha = 1.0.
at::Tensor relu_direct(
    const at::Tensor& self,
    py::handle surrogate,
    py::handle alpha,
    py::handle negative_only) {
  PyObject* name = surrogate.ptr();
  PyObject* value = alpha.ptr();
  if (!PyUnicode_Check(name) || !(alpha.is_none() || PyFloat_Check(value)) ||
      !PyBool_Check(negative_only.ptr())) {
    throw py::type_error(
        "torch_sugar._C.relu(self, surrogate, alpha, negative_only) takes a str, a float or None, "
        "and a bool (torch_sugar.relu takes any argument and checks it)");
  }
  Py_ssize_t size = 0;
  const char* text = PyUnicode_AsUTF8AndSize(name, &size);
  if (text == nullptr) {  // not encodable as UTF-8 (a lone surrogate code point)
    PyErr_Clear();
    throw py::type_error("torch_sugar._C.relu: surrogate is not valid UTF-8");
  }
  const std::string_view surrogate_name(text, static_cast<size_t>(size));
  const std::optional<double> alpha_value =
      alpha.is_none() ? std::nullopt : std::optional<double>(PyFloat_AS_DOUBLE(value));
  const bool negative = negative_only.ptr() == Py_True;
  // Looked up on first use (the op library is loaded after this module is imported).
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("sugar::relu", "")
          .typed<at::Tensor(const at::Tensor&, c10::string_view, std::optional<double>, bool)>();
  // `text` stays valid without the GIL: the str object owns it, and the caller holds the str.
  py::gil_scoped_release no_gil;
  return op.call(self, surrogate_name, alpha_value, negative);
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
      "relu", &relu_direct, py::arg("self"), py::arg("surrogate"), py::arg("alpha").none(true),
      py::arg("negative_only"),
      "sugar::relu through the dispatcher, unboxed (torch_sugar.relu's eager fast path).");
}
