// Elementwise loops for the CPU kernels: a contiguous fast path (the active vectorized kernel of
// kernels.h when there is one, else plain pointer loops) and a strided path, parallel through
// TensorIterator::for_each over chunks of at least `grain` elements, so small tensors stay on one
// thread: below 32768 elements no thread pool is involved at all.
#pragma once

#include <ATen/TensorIterator.h>
#include <ATen/Parallel.h>

#include <array>
#include <cstdint>

namespace sugar {
namespace cpu {

// The contiguous fast path when no vectorized kernel is given.
struct NoVectorKernel {
  bool operator()(char** /*data*/, int64_t /*n*/) const {
    return false;
  }
};

// The loop body over one run of n elements: `data` holds the output and N input pointers,
// `strides` their byte strides. Contiguous runs go to `vector_kernel(data, n)` first, which
// returns true when it handled them (false leaves them to the scalar loop).
template <typename T, int N, typename Op, typename VectorKernel>
struct RunLoop {
  const Op& op;
  const VectorKernel& vector_kernel;

  void operator()(char** data, const int64_t* strides, int64_t n) const {
        bool contiguous = true;
        for (int k = 0; k <= N; ++k) contiguous = contiguous && strides[k] == int64_t(sizeof(T));
        T* out = reinterpret_cast<T*>(data[0]);
        const T* a = reinterpret_cast<const T*>(data[1]);
        if (contiguous && vector_kernel(data, n)) return;
        if (contiguous) {
          if constexpr (N == 1) {
            for (int64_t i = 0; i < n; ++i) out[i] = op(a[i]);
          } else if constexpr (N == 2) {
            const T* b = reinterpret_cast<const T*>(data[2]);
            for (int64_t i = 0; i < n; ++i) out[i] = op(a[i], b[i]);
          } else {
            const T* b = reinterpret_cast<const T*>(data[2]);
            const T* c = reinterpret_cast<const T*>(data[3]);
            for (int64_t i = 0; i < n; ++i) out[i] = op(a[i], b[i], c[i]);
          }
          return;
        }
        char* po = data[0];
        const char* pa = data[1];
        const char* pb = N >= 2 ? data[2] : nullptr;
        const char* pc = N >= 3 ? data[3] : nullptr;
        for (int64_t i = 0; i < n; ++i) {
          const T va = *reinterpret_cast<const T*>(pa + i * strides[1]);
          T* o = reinterpret_cast<T*>(po + i * strides[0]);
          if constexpr (N == 1) {
            *o = op(va);
          } else if constexpr (N == 2) {
            *o = op(va, *reinterpret_cast<const T*>(pb + i * strides[2]));
          } else {
            *o = op(va, *reinterpret_cast<const T*>(pb + i * strides[2]),
                    *reinterpret_cast<const T*>(pc + i * strides[3]));
          }
        }
  }
};

// out[i] = op(inputs[0][i], ..., inputs[N-1][i]), every operand of type T and out's shape (the
// caller allocated out as empty_like of an input and checked the others).
//
// Small dense tensors (out non-overlapping and dense, every input with its strides: contiguous,
// channels_last, any permutation) skip the TensorIterator: element i of every operand sits at the
// same offset from its data pointer, so the work is one flat run on this thread, and building the
// iterator would be a good part of the per-call cost. Tensors of `grain` elements or more, and
// every strided case, go through TensorIterator::for_each, which splits the work over threads.
// (Not at::parallel_for here: ATen's OpenMP backend is inline code under `#pragma omp`, so in an
// extension compiled without -fopenmp it would run serially; for_each runs inside libtorch.)
template <typename T, int N, typename Op, typename VectorKernel = NoVectorKernel>
void elementwise(
    const at::Tensor& out,
    const std::array<at::Tensor, N>& inputs,
    const Op& op,
    const VectorKernel& vector_kernel = VectorKernel(),
    int64_t grain = at::internal::GRAIN_SIZE) {
  static_assert(N >= 1 && N <= 3, "1 to 3 inputs");
  const RunLoop<T, N, Op, VectorKernel> run{op, vector_kernel};
  const int64_t numel = out.numel();
  if (numel == 0) return;
  if (numel < grain) {
    bool flat = out.is_non_overlapping_and_dense();
    for (const auto& t : inputs) flat = flat && t.strides() == out.strides();
    if (flat) {
      char* data[N + 1];
      data[0] = static_cast<char*>(out.data_ptr());
      for (int k = 0; k < N; ++k) {
        data[k + 1] = static_cast<char*>(const_cast<void*>(inputs[k].const_data_ptr()));
      }
      int64_t strides[N + 1];
      for (int k = 0; k <= N; ++k) strides[k] = int64_t(sizeof(T));
      run(data, strides, numel);
      return;
    }
  }
  at::TensorIteratorConfig config;
  config.add_output(out);
  for (const auto& t : inputs) config.add_const_input(t);
  auto iter = config.build();
  iter.for_each(run, grain);
}

}  // namespace cpu
}  // namespace sugar
