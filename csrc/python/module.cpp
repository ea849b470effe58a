// torch_sugar._C: build information and the surrogate table for the Python package. The ops
// themselves live in the Python-free library libtorch_sugar.so, loaded with
// torch.ops.load_library; nothing here is on a hot path.
#include <torch_sugar/ops.h>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/version.h>

#ifndef TORCH_SUGAR_VERSION
#error "TORCH_SUGAR_VERSION must be defined by the build"
#endif

namespace py = pybind11;

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
}
