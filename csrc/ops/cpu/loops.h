// Elementwise loops for the CPU kernels: every run of elements goes to one contiguous kernel
// (kernels.h), strided runs through small contiguous buffers, so the same kernel, and the same
// vector math, computes every element whatever the tensor's layout. Parallel through
// TensorIterator::for_each over chunks of at least `grain` elements, so small tensors stay on one
// thread: below 32768 elements no thread pool is involved at all.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

namespace sugar {
namespace cpu {

// The loop body over one run of n elements: `data` holds the output and N input pointers,
// `strides` their byte strides. `kernel(data, n)` computes n contiguous elements.
template <typename T, int N, typename Kernel>
struct RunLoop {
  const Kernel& kernel;

  void operator()(char** data, const int64_t* strides, int64_t n) const {
    bool contiguous = true;
    for (int k = 0; k <= N; ++k) contiguous = contiguous && strides[k] == int64_t(sizeof(T));
    if (contiguous) {
      kernel(data, n);
      return;
    }
    constexpr int64_t kChunk = 256;
    alignas(64) char buf[N + 1][kChunk * sizeof(T)];
    char* bufs[N + 1];
    for (int k = 0; k <= N; ++k) bufs[k] = buf[k];
    for (int64_t start = 0; start < n; start += kChunk) {
      const int64_t m = std::min(kChunk, n - start);
      for (int k = 1; k <= N; ++k) {
        const char* src = data[k] + start * strides[k];
        for (int64_t i = 0; i < m; ++i)
          std::memcpy(buf[k] + i * sizeof(T), src + i * strides[k], sizeof(T));
      }
      kernel(bufs, m);
      char* dst = data[0] + start * strides[0];
      for (int64_t i = 0; i < m; ++i)
        std::memcpy(dst + i * strides[0], buf[0] + i * sizeof(T), sizeof(T));
    }
  }
};

// out[i] = f(inputs[0][i], ..., inputs[N-1][i]) through `kernel` (see RunLoop), every operand of
// type T and out's shape (the caller allocated out and checked the others).
//
// Small dense tensors (out non-overlapping and dense, every input with its strides: contiguous,
// channels_last, any permutation) skip the TensorIterator: element i of every operand sits at the
// same offset from its data pointer, so the work is one flat run on this thread, and building the
// iterator would be a good part of the per-call cost. Tensors of `grain` elements or more, and
// every strided case, go through TensorIterator::for_each, which splits the work over threads.
// (Not at::parallel_for here: ATen's OpenMP backend is inline code under `#pragma omp`, so in an
// extension compiled without -fopenmp it would run serially; for_each runs inside libtorch.)
template <typename T, int N, typename Kernel>
void elementwise(
    const at::Tensor& out,
    const std::array<at::Tensor, N>& inputs,
    const Kernel& kernel,
    int64_t grain = at::internal::GRAIN_SIZE) {
  static_assert(N >= 1 && N <= 3, "1 to 3 inputs");
  const RunLoop<T, N, Kernel> run{kernel};
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
      kernel(data, numel);
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
