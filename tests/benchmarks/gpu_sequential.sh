#!/usr/bin/env bash
# The pixel-task GPU checks of issue 16 in one command, for a machine with CuPy, PyTorch and CUDA:
#   MNIST_DATA_DIR=DIR bash tests/benchmarks/gpu_sequential.sh [OUT_DIR] [SECONDS]
# Each stage bounded so that the whole stays within SECONDS (default 540):
#   1. the GPU tests of the long sequences (chunked BPTT on CuPy = CPU, graph replay = eager),
#   2. one training step at T=784 (B=128, H=128) of every cell on CuPy, eager and graphed, and
#      torch-gru (cuDNN) in the same call,
#   3. with MNIST_DATA_DIR (a folder holding mnist/): gru-gpu, lstm-gpu, torch-gru and torch-lstm
#      on smnist and psmnist, seed 0, EPOCHS epochs each (default 3: the cosine schedule over them,
#      not the 50 of the defaults), for what is left of the time; a run stopped by the time limit
#      keeps its finished pairs (resume with seqbench run --resume OUT_DIR/runs/pixels).
# Writes tests.txt, bench.txt, bench.json, pixels.log and the run folder to OUT_DIR.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-results/gpu-pixels-$(date +%Y%m%d-%H%M%S)}
deadline=$(( $(date +%s) + ${2:-540} ))
left() { echo $(( deadline - $(date +%s) )); }
mkdir -p "$out/runs"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . -e plugins/seqbench-torch >"$out/install.txt" 2>&1 \
  || { echo "install failed:"; tail -n 20 "$out/install.txt"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$out/gpu.txt"

echo "== GPU tests ($(left) s left)"
timeout $(( $(left) * 15 / 100 )) python3 -m pytest -q -p no:cacheprovider -m gpu \
  tests/test_sequential_tasks.py tests/test_gpu_backend.py >"$out/tests.txt" 2>&1
echo "tests exit $?"; tail -n 15 "$out/tests.txt"

echo "== train step at T=784 ($(left) s left)"
timeout $(( $(left) * 25 / 100 )) python3 -m pytest -q -p no:cacheprovider tests/benchmarks/test_long_bench.py -m bench \
  -k "cupy or cudnn" --benchmark-json "$out/bench.json" --benchmark-columns min,median,mean,rounds \
  --benchmark-sort name >"$out/bench.txt" 2>&1
echo "benchmarks exit $?"; grep -v "^$" "$out/bench.txt" | tail -n 20

if [ -n "${MNIST_DATA_DIR:-}" ]; then
  echo "== smnist, psmnist ($(left) s left)"
  timeout $(( $(left) - 20 )) seqbench run -m gru-gpu -m lstm-gpu -m torch-gru -m torch-lstm -d smnist -d psmnist \
    --seeds 0 --set epochs="${EPOCHS:-3}" --data-dir "$MNIST_DATA_DIR" --offline --out "$out/runs/pixels" \
    >"$out/pixels.log" 2>&1
  echo "exit $? (124 or 143: stopped by the time limit; the epochs reached are in pixels.log)"
  grep -E "^\[|epoch|test accuracy" "$out/pixels.log" | tail -n 40
fi
echo "done, $(left) s to spare"
