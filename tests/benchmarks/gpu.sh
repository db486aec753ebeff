#!/usr/bin/env bash
# The GPU checks in one command, for a machine with CuPy and a CUDA device:
#   bash tests/benchmarks/gpu.sh [OUT_DIR]        (default: results/gpu-<date>)
# Runs the GPU tests, the GPU benchmarks (train step, inference batch, MNIST-shaped epoch) and,
# when MNIST is found (SEQBENCH_DATA_DIR or --data-dir below), rnn-gpu against torch-rnn.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-results/gpu-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
# Offline-friendly install (the dependencies must already be there: numpy, pluggy, click,
# tabulate, matplotlib, threadpoolctl, pytest, pytest-benchmark, cupy, and torch for the plugin).
python3 -m pip install -q --no-deps --no-build-isolation -e . -e plugins/seqbench-torch
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -m pytest -q tests 2>&1 | tee "$out/tests.txt" || echo "some tests failed; benchmarks follow"  # GPU/CUDA tests run here
python3 -m pytest tests/benchmarks -m bench -k "cupy or reference" -q \
  --benchmark-json "$out/gpu-bench.json" --benchmark-columns min,mean,median,stddev,rounds 2>&1 | tee "$out/gpu-bench.txt"
if [ -n "${MNIST_DATA_DIR:-}" ]; then
  seqbench run -m rnn-gpu -m torch-rnn -d mnist --seeds 0,1,2 --data-dir "$MNIST_DATA_DIR" --offline \
    --out "$out/mnist-rnn-gpu-vs-torch" 2>&1 | tail -n 30 | tee "$out/run.txt"
fi
