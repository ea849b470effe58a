// The output allocation of every kernel (CPU, CUDA, Meta): laid out exactly as torch.relu lays out
// its output, so that a SUGAR network sees the strides a ReLU network sees.
#pragma once

#include <ATen/EmptyTensor.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/core/MemoryFormat.h>

namespace sugar {

// An uninitialized tensor of self's shape, dtype and device, with the strides torch.relu(self)
// gets. torch.relu is a TensorIterator op, and TensorIterator lays out the output of a one-input
// op by the first rule that applies (TensorIteratorBase::fast_set_up, then reorder_dimensions):
//  1. self is contiguous by c10's test, which ignores size-1 dims: contiguous strides.
//     So (2,3,1,1) with strides (3,1,3,3), common after global pooling, gives (3,1,1,1), where
//     empty_like(self) would keep (3,1,3,3) and a following conv might see channels_last;
//  2. self is 4-d channels_last by the same test: channels_last strides;
//  3. self is non-overlapping and dense (a permutation of those): self's own strides;
//  4. anything else (slices with gaps, stride-0 expansions): dense strides in the order of self's
//     strides (at::infer_dense_strides).
// empty_like(self) does 3 and 4 exactly so (and SymInt-safely, for the Meta kernels under dynamic
// shapes); 1 and 2 are the cases where it differs. tests/test_ops.py checks the strides against
// torch.relu's on every backend for many layouts.
//
// A contiguous CPU tensor, the common case, is allocated with at::detail::empty_cpu directly: two
// dispatcher round trips less, a good part of a small tensor's per-call cost.
inline at::Tensor empty_relu_output(const at::Tensor& self) {
  if (self.is_contiguous()) {
    if (self.device().is_cpu()) {
      return at::detail::empty_cpu(self.sizes(), self.scalar_type());
    }
    return at::empty_symint(self.sym_sizes(), self.options());
  }
  if (self.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    return at::empty_symint(self.sym_sizes(), self.options(), at::MemoryFormat::ChannelsLast);
  }
  return at::empty_like(self);
}

}  // namespace sugar
