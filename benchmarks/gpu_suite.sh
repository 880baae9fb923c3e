#!/usr/bin/env bash
# One-call GPU verification of isogan on a fresh H100/H200 machine with this repository checked out
# (no network needed: python3 with torch, numpy, scipy, scikit-learn, pytest, pybind11, cmake, ninja
# and CUDA's nvcc and compute-sanitizer, as on the device machines described in KINDS.md).
#
#   benchmarks/gpu_suite.sh                  # build test-gpu sanitize bench (limits add up to 8 minutes)
#   benchmarks/gpu_suite.sh build large      # second call: N=100k on the GPU, scikit-learn at N=20k (~6 min)
#   benchmarks/gpu_suite.sh build bench      # any subset of the phase groups, in the order given
#
# Phase groups:
#   build        CMake dev build with CUDA (CUDAARCHS=90) into build/gpu; writes python/isogan/_core*.so
#   test-gpu     the GPU tests of the pytest suite (named cuda/gpu/device; they run instead of skipping)
#   test         test-gpu, then the rest of the suite; 8 processes with xdist
#   sanitize     compute-sanitizer memcheck and racecheck on a small GPU test subset
#   bench        benchmarks/gpu_bench.py: kNN N=100k D=784; eigensolve N=50k; paths FW vs BF at
#                N=5k/10k/20k; Isomap on the GPU and on the CPU at N=10k/20k; scikit-learn at 10k;
#                fused bias_act against eager PyTorch; landmark Isomap N=100k D=784 on the GPU
#   large        exact Isomap N=100k float32 on the GPU when its predicted memory fits, and
#                scikit-learn's Isomap at N=20k (too long for the default run)
#
# Every phase runs under `timeout`; a failed or timed-out phase is recorded and the suite goes on
# (only a failed build stops it). Results go to $OUT when set (the device tool's folder), else to
# benchmarks/results/gpu-<UTC time>/: summary.txt, environment.txt, build.log, tests.log,
# sanitizer.log, bench.log, bench.jsonl (one JSON object per measurement) and bench.csv.
# The exit status is 0 when every phase passed, 1 otherwise.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-benchmarks/results/gpu-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export CUDAARCHS="${CUDAARCHS:-90}"
# nvcc and compute-sanitizer live in the CUDA toolkit, which is not always on PATH.
for tool_dir in /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer; do
  if [ -d "$tool_dir" ] && [[ ":$PATH:" != *":$tool_dir:"* ]]; then
    export PATH="$PATH:$tool_dir"
  fi
done

SUMMARY="$OUT_DIR/summary.txt"
BENCH_JSONL="$OUT_DIR/bench.jsonl"
FAILED=0
SUITE_START=$SECONDS

# run_phase NAME LIMIT_SECONDS LOG_FILE COMMAND...: runs COMMAND under timeout, appends its output
# to LOG_FILE, records the outcome in summary.txt; returns the command's status.
run_phase() {
  local name=$1 limit=$2 log=$3
  shift 3
  local start=$SECONDS status=0 outcome
  printf '\n=== %s (limit %ss): %s\n' "$name" "$limit" "$*" | tee -a "$log"
  timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1 || status=$?
  case $status in
    0) outcome=passed ;;
    124 | 137) outcome="TIMED OUT" ;;
    *) outcome="FAILED ($status)" ;;
  esac
  [ "$status" -eq 0 ] || FAILED=1
  printf '%-22s %-12s %4ss (limit %ss)\n' "$name" "$outcome" $((SECONDS - start)) "$limit" | tee -a "$SUMMARY"
  [ "$status" -eq 0 ] || tail -n 25 "$log"
  return "$status"
}

environment() {
  {
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    nvcc --version | tail -n 2 || true
    "$PYTHON" --version
    "$PYTHON" -c "import numpy, scipy, sklearn, torch; print('numpy', numpy.__version__, 'scipy', scipy.__version__, 'scikit-learn', sklearn.__version__, 'torch', torch.__version__)" || true
    git rev-parse HEAD 2>/dev/null || true
    nproc
  } >"$OUT_DIR/environment.txt" 2>&1
}

build() {
  local log="$OUT_DIR/build.log" pybind_dir
  pybind_dir="$("$PYTHON" -m pybind11 --cmakedir)"
  run_phase configure 30 "$log" cmake -S . -B build/gpu -G Ninja -DISOGAN_CUDA=ON -Dpybind11_DIR="$pybind_dir" \
    -DPython_EXECUTABLE="$(command -v "$PYTHON")" || return 1
  run_phase compile 140 "$log" cmake --build build/gpu -j "$(nproc)" || return 1
  run_phase import-check 20 "$log" "$PYTHON" -c \
    "import isogan; s = isogan._core.cuda_status(); print(s); assert isogan.cuda_built() and s['available'], s"
}

# The GPU tests are those named cuda/gpu/device; they run first, so that a slow CPU remainder cannot hide them.
GPU_TESTS="cuda or gpu or device"

pytest_phase() {
  local name=$1 limit=$2 selection=$3 parallel=() log="$OUT_DIR/tests.log"
  if "$PYTHON" -c "import xdist" >/dev/null 2>&1; then parallel=(-n 8); fi
  run_phase "$name" "$limit" "$log" "$PYTHON" -m pytest tests -q -ra -p no:cacheprovider "${parallel[@]}" \
    -k "$selection" || true
  grep -E "^(=+ )?[0-9]+ (passed|failed)|^FAILED|^ERROR" "$log" | tail -n 30 | sed 's/^/  /' >>"$SUMMARY" || true
}

sanitize() {
  local log="$OUT_DIR/sanitizer.log"
  # Small GPU tests that reach every kernel family of the exact chain without importing torch:
  # kNN, batched Bellman-Ford, Floyd-Warshall (shared-memory tiles), CSR start matrix, MDS products,
  # DeviceArray copies.
  local tests=(tests/native/test_paths_gpu.py tests/native/test_device_array.py tests/test_isomap_gpu.py)
  local memcheck_subset="floyd_warshall_equals_bellman_ford or device_result_is_a_device_array or round_trip or path_methods_equal_cpu_fit or reads_a_device_array"
  local racecheck_subset="(floyd_warshall_equals_bellman_ford and random) or (path_methods_equal_cpu_fit and float32) or reads_a_device_array"
  if ! command -v compute-sanitizer >/dev/null 2>&1; then
    echo "compute-sanitizer not found on PATH" | tee -a "$log" "$SUMMARY"
    FAILED=1
    return 0
  fi
  run_phase memcheck 30 "$log" compute-sanitizer --tool memcheck --error-exitcode 99 --print-limit 20 \
    "$PYTHON" -m pytest -q -p no:cacheprovider "${tests[@]}" -k "$memcheck_subset" || true
  run_phase racecheck 30 "$log" compute-sanitizer --tool racecheck --error-exitcode 99 --print-limit 20 \
    "$PYTHON" -m pytest -q -p no:cacheprovider "${tests[@]}" -k "$racecheck_subset" || true
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|[0-9]+ (passed|failed)" "$log" | sed 's/^/  /' >>"$SUMMARY" || true
}

bench_phase() {
  local name=$1 limit=$2
  shift 2
  run_phase "$name" "$limit" "$OUT_DIR/bench.log" "$PYTHON" benchmarks/gpu_bench.py "$@" --out "$BENCH_JSONL" || true
}

bench() {
  bench_phase bench-knn 40 knn
  bench_phase bench-eigensolve 20 eigensolve
  bench_phase bench-paths 55 paths --sizes 5000,10000,20000
  bench_phase bench-isomap-gpu 30 isomap --sizes 10000,20000 --implementations isogan-cuda
  bench_phase bench-isomap-cpu 35 isomap --sizes 10000,20000 --implementations isogan-cpu --dtypes float64
  bench_phase bench-sklearn-10k 35 isomap --sizes 10000 --implementations sklearn --dtypes float64
  bench_phase bench-ops 25 ops
  bench_phase bench-landmark-100k 40 landmark --sizes 100000 --implementations isogan-cuda
}

large() {
  bench_phase bench-isomap-100k 150 isomap100k
  bench_phase bench-sklearn-20k 240 isomap --sizes 20000 --implementations sklearn --dtypes float64
}

# bench.jsonl -> bench.csv (one row per measurement, the union of the fields as columns).
tabulate() {
  [ -s "$BENCH_JSONL" ] || return 0
  "$PYTHON" - "$BENCH_JSONL" "$OUT_DIR/bench.csv" <<'PY'
import csv, json, sys
rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
fields = list(dict.fromkeys(key for row in rows for key in row))
with open(sys.argv[2], "w", newline="", encoding="utf-8") as stream:
    writer = csv.DictWriter(stream, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({key: json.dumps(value) if isinstance(value, (dict, list)) else value for key, value in row.items()})
PY
}

main() {
  local groups=("$@")
  [ ${#groups[@]} -gt 0 ] || groups=(build test-gpu sanitize bench)
  environment
  for group in "${groups[@]}"; do
    case $group in
      build) build || { echo "build failed: see $OUT_DIR/build.log"; FAILED=1; break; } ;;
      test-gpu) pytest_phase tests-gpu 60 "$GPU_TESTS" ;;
      test) pytest_phase tests-gpu 60 "$GPU_TESTS"; pytest_phase tests-rest 80 "not ($GPU_TESTS)" ;;
      sanitize) sanitize ;;
      bench) bench ;;
      large) large ;;
      *) echo "unknown phase group '$group' (build, test-gpu, test, sanitize, bench, large)" >&2; exit 2 ;;
    esac
  done
  tabulate
  printf 'total %ss; results in %s\n' $((SECONDS - SUITE_START)) "$OUT_DIR" | tee -a "$SUMMARY"
  cat "$SUMMARY"
  return "$FAILED"
}

main "$@"
