// The surrogate table for torch_sugar._C, compiled from the library's own source so the Python
// package and the C++ library share one table. (A separate file: setuptools builds every
// extension into one temp folder, so two extensions cannot list the same source file.)
#include "ops/surrogate.cpp"
