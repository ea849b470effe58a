// torch-sugar's public C++ API: SUGAR (surrogate-gradient ReLU) for LibTorch programs.
//
//   #include <torch_sugar/sugar.h>
//   at::Tensor y = sugar::relu(x, "bsilu");   // forward: relu(x); backward: B-SiLU's derivative
//   sugar::nn::SugarReLU act(sugar::nn::SugarReLUOptions("nelu").alpha(0.05));
//
// Link the CMake target TorchSugar::TorchSugar (find_package(TorchSugar CONFIG REQUIRED)); that
// alone registers the ops, so TorchScript models that call torch.ops.sugar.* load too.
//   ops.h  sugar::relu, sugar::relu_backward, sugar::surrogates() (ATen only)
//   nn.h   sugar::nn::SugarReLU and sugar::nn::SugarReLUOptions (torch::nn)
#pragma once

#include <torch_sugar/nn.h>
#include <torch_sugar/ops.h>
