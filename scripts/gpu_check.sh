#!/usr/bin/env bash
# GPU check: on a machine with a CUDA GPU and no network, where `python3` already has a CUDA build
# of torch, pytest, setuptools and ninja, and nvcc is installed:
#   1. builds torch-sugar with its CUDA kernels from source into build-gpu/ (no pip, no downloads;
#      the architecture of the GPU present unless TORCH_CUDA_ARCH_LIST says otherwise),
#   2. checks the build (kernels registered, one fwd/bwd/double-bwd on the GPU),
#   3. runs the CUDA tests (tests/test_cuda.py, and the CUDA cases of tests/test_ops.py and
#      tests/test_autograd.py),
#   4. prints the benchmark table (scripts/gpu_bench.py) last, and writes it as JSON to $OUT if set.
# Each step has a time limit; together they stay under 8 minutes. Exits non-zero if any step
# failed (later steps still run, so a test failure still gives benchmark numbers).
#
#   bash scripts/gpu_check.sh                 # PYTHON=python3 by default
#   OUT=/some/dir bash scripts/gpu_check.sh   # also writes gpu_bench.json and logs there
#   SUGAR_GPU_CHECK_DRY_RUN=1 bash scripts/gpu_check.sh   # no GPU: every step, on the CPU (the
#       tests skip, the benchmark runs small on --device cpu); for checking this script itself
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUILD=${SUGAR_GPU_BUILD_DIR:-build-gpu}
start=$(date +%s)
# The whole check stays under 8 minutes: each step gets at most its own cap and what is left of
# the budget (less what later steps reserve).
BUDGET_S=${SUGAR_GPU_CHECK_BUDGET_S:-465}
deadline=$(( start + BUDGET_S ))
status=0
failed=()
step() { echo; echo "=== [$(( $(date +%s) - start ))s] $*"; }
fail() { status=1; failed+=("$1"); echo "!!! FAILED: $1"; }
# run_step NAME CAP RESERVE CMD...: runs CMD for at most CAP seconds and at most what is left of
# the budget after RESERVE seconds for later steps; logs to $OUT/NAME.log when OUT is set.
run_step() {
  local name=$1 cap=$2 reserve=$3; shift 3
  local rc=0 left limit
  cap=$(( cap * CAP_SCALE ))
  left=$(( deadline - $(date +%s) - reserve ))
  limit=$(( left < cap ? left : cap ))
  if (( limit < 10 )); then
    fail "$name (skipped: only ${left}s of the ${BUDGET_S}s budget left)"
    return 0
  fi
  echo "(time limit ${limit}s)"
  if [[ -n "${OUT:-}" ]]; then
    mkdir -p "$OUT"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log" || rc=${PIPESTATUS[0]}
  else
    timeout --kill-after=10 "$limit" "$@" || rc=$?
  fi
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    fail "$name (timed out after ${limit}s)"
  elif [[ $rc -ne 0 ]]; then
    fail "$name (exit code $rc)"
  fi
  return 0
}

DRY_RUN=${SUGAR_GPU_CHECK_DRY_RUN:-0}
# A dry run on a small CPU-only machine builds far slower than a GPU host: scale its step caps.
CAP_SCALE=${SUGAR_GPU_CHECK_CAP_SCALE:-$([[ $DRY_RUN == 1 ]] && echo 10 || echo 1)}

step "environment"
DRY_RUN=$DRY_RUN "$PY" - <<'EOF'
import os, shutil, subprocess, sys
import torch
print(f"python {sys.version.split()[0]}; torch {torch.__version__} (CUDA {torch.version.cuda})")
if not torch.cuda.is_available():
    if os.environ["DRY_RUN"] != "1":
        sys.exit("gpu_check: torch sees no CUDA device (SUGAR_GPU_CHECK_DRY_RUN=1 runs the steps on the CPU)")
    print("no CUDA device: dry run on the CPU")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"cuda:{i}: {p.name}, sm_{p.major}{p.minor}, {p.total_memory / 2**30:.1f} GiB, {p.multi_processor_count} SMs")
from torch.utils.cpp_extension import CUDA_HOME
print("CUDA_HOME (torch's guess):", CUDA_HOME)
nvcc = shutil.which("nvcc")
print("nvcc:", nvcc, subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout.strip().splitlines()[-1] if nvcc else "")
import setuptools
print("setuptools", setuptools.__version__, "| ninja:", shutil.which("ninja") or "not on PATH (python module?)")
# README, "Supported torch versions": the range pyproject.toml states, and setuptools 77 for its license string.
minor = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
if not (2, 9) <= minor < (2, 16):
    print(f"WARNING: torch {torch.__version__} is outside the supported range (2.9.1 to 2.15); the build may fail")
if int(setuptools.__version__.split(".")[0]) < 77:
    print("WARNING: setuptools < 77 cannot read pyproject.toml's license string; the build will fail")
EOF

if [[ -z "${TORCH_CUDA_ARCH_LIST:-}" ]]; then
  if [[ $DRY_RUN == 1 ]]; then
    TORCH_CUDA_ARCH_LIST=9.0
  else
    TORCH_CUDA_ARCH_LIST=$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")
  fi
fi
export TORCH_CUDA_ARCH_LIST
export SUGAR_CUDA=1
export MAX_JOBS=${MAX_JOBS:-$(nproc)}

step "build (SUGAR_CUDA=1, TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST, into $BUILD/)"
run_step build 260 170 "$PY" setup.py -q build --build-base "$BUILD" --build-lib "$BUILD/lib" --build-temp "$BUILD/temp"
if [[ ! -f "$BUILD/lib/torch_sugar/lib/libtorch_sugar.so" ]]; then
  fail "build produced no $BUILD/lib/torch_sugar/lib/libtorch_sugar.so"
  echo; echo "gpu_check: FAILED (${failed[*]}) after $(( $(date +%s) - start ))s"
  exit 1
fi
export PYTHONPATH="$PWD/$BUILD/lib${PYTHONPATH:+:$PYTHONPATH}"

step "check the build"
run_step check 45 170 "$PY" scripts/check_cuda_build.py "$BUILD/lib"

step "CUDA tests"
run_step test_cuda 150 105 "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py
if [[ -f tests/test_ops.py ]]; then
  step "CUDA cases of tests/test_ops.py"
  # -k cuda picks the device-parametrized CUDA cases; pytest's exit code 5 means there are none.
  # The budget handed to timeout is clamped: at most 60 s, and the step is skipped below 10 s
  # (timeout reads 0 as "no limit", and a negative value as an error, exit code 125).
  ops_rc=0
  ops_left=$(( deadline - $(date +%s) - 60 ))
  ops_limit=$(( ops_left < 60 ? ops_left : 60 ))
  if (( ops_limit < 10 )); then
    fail "test_ops -k cuda (skipped: only ${ops_left}s of the ${BUDGET_S}s budget left)"
  else
    echo "(time limit ${ops_limit}s)"
    timeout --kill-after=10 "$ops_limit" \
      "$PY" -m pytest -q -p no:cacheprovider tests/test_ops.py tests/test_autograd.py -k cuda || ops_rc=$?
    if [[ $ops_rc -eq 5 ]]; then
      echo "(tests/test_ops.py and tests/test_autograd.py have no CUDA cases)"
    elif [[ $ops_rc -eq 124 || $ops_rc -eq 137 ]]; then
      fail "test_ops -k cuda (timed out after ${ops_limit}s)"
    elif [[ $ops_rc -ne 0 ]]; then
      fail "test_ops -k cuda (exit code $ops_rc)"
    fi
  fi
fi

step "benchmark"
if [[ $DRY_RUN == 1 ]]; then
  bench_args=(--device cpu --sizes 14,16 --reps 5 --warmup 1 --targets-at 16)
else
  bench_args=(--sizes 24,26)
fi
run_step bench 90 0 "$PY" scripts/gpu_bench.py "${bench_args[@]}" --dtypes float32,bfloat16 --surrogates bsilu,gelu,mish

echo
if [[ $status -eq 0 ]]; then
  echo "gpu_check: OK after $(( $(date +%s) - start ))s"
else
  echo "gpu_check: FAILED (${failed[*]}) after $(( $(date +%s) - start ))s"
fi
exit $status
