#!/usr/bin/env bash
# The GPU checks in one command, for a machine with CuPy, PyTorch and a CUDA device:
#   MNIST_DATA_DIR=DIR bash tests/benchmarks/gpu.sh [OUT_DIR] [SECONDS]
# In order, each stage bounded so that the whole stays within SECONDS (default 480):
#   1. the test suite (GPU tests included),
#   2. the GPU benchmarks (train step, inference batch, MNIST-shaped epoch; eager and CUDA graph),
#   3. with MNIST_DATA_DIR (a folder holding mnist/): the models named in GPU_MODELS (default rnn-gpu
#      torch-rnn), 3 seeds, then (unless GATED=0) the gated cells lstm-gpu and gru-gpu, 3 seeds.
# GPU_TESTS narrows stage 1 (default: the whole suite but the pip-installing plugin guide).
# Writes gpu.txt, tests.txt, bench.txt, gpu-bench.json and runs.tgz (the run folders) to OUT_DIR.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-results/gpu-$(date +%Y%m%d-%H%M%S)}
deadline=$(( $(date +%s) + ${2:-480} ))
left() { echo $(( deadline - $(date +%s) )); }
finish() { tar czf "$out/runs.tgz" -C "$out" runs && rm -rf "$out/runs"; echo "done, $(left) s to spare"; exit 0; }
mkdir -p "$out/runs"
export PYTHONUNBUFFERED=1

# Offline install: the dependencies (numpy, pluggy, click, tabulate, matplotlib, threadpoolctl,
# pytest, pytest-benchmark, cupy, torch) must already be there.
python3 -m pip install -q --no-deps --no-build-isolation -e . -e plugins/seqbench-torch -e plugins/seqbench-example \
  >"$out/install.txt" 2>&1 || { echo "install failed:"; tail -n 20 "$out/install.txt"; }
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c "import sys, cupy, numpy, torch; print('python', sys.version.split()[0], '| cupy', cupy.__version__,
    '| numpy', numpy.__version__, '| torch', torch.__version__, '| CUDA runtime', cupy.cuda.runtime.runtimeGetVersion())"
  nproc
} 2>&1 | tee "$out/gpu.txt"

echo "== tests ($(left) s left)"
# shellcheck disable=SC2086
timeout $(( $(left) * 30 / 100 )) python3 -m pytest -q -p no:cacheprovider ${GPU_TESTS:-tests --ignore=tests/test_plugin_guide.py} \
  >"$out/tests.txt" 2>&1
echo "tests exit $?"; tail -n 25 "$out/tests.txt"
graph_ok=1
grep -q "test_cuda_graph_training_matches_eager.* FAILED\|FAILED.*test_cuda_graph" "$out/tests.txt" && graph_ok=0

echo "== benchmarks ($(left) s left)"
timeout $(( $(left) * 35 / 100 )) python3 -m pytest -q -p no:cacheprovider tests/benchmarks -m bench -k "cupy" \
  --benchmark-json "$out/gpu-bench.json" --benchmark-columns min,median,mean,stddev,rounds --benchmark-sort name \
  >"$out/bench.txt" 2>&1
echo "benchmarks exit $?"; grep -v "^$" "$out/bench.txt" | tail -n 40

if [ -n "${MNIST_DATA_DIR:-}" ]; then
  set_graph=()
  [ "$graph_ok" = 1 ] || { echo "CUDA-graph test failed: the runs train eagerly"; set_graph=(--set cuda_graph=false); }
  models=(); for m in ${GPU_MODELS:-rnn-gpu torch-rnn}; do models+=(-m "$m"); done
  echo "== ${GPU_MODELS:-rnn-gpu torch-rnn} on MNIST ($(left) s left)"
  share=40; [ "${GATED:-1}" = 1 ] || share=95
  timeout $(( $(left) * share / 100 )) seqbench run "${models[@]}" -d mnist --seeds 0,1,2 "${set_graph[@]}" \
    --data-dir "$MNIST_DATA_DIR" --offline --out "$out/runs/mnist-rnn-gpu" >"$out/runs/rnn.log" 2>&1
  echo "exit $?"; tail -n 12 "$out/runs/rnn.log"
  [ "${GATED:-1}" = 1 ] || finish
  echo "== gated cells on MNIST ($(left) s left)"
  timeout $(( $(left) - 15 )) seqbench run -m lstm-gpu -m gru-gpu -d mnist --seeds 0,1,2 \
    "${set_graph[@]}" --data-dir "$MNIST_DATA_DIR" --offline --out "$out/runs/mnist-gated-gpu" \
    >"$out/runs/gated.log" 2>&1
  echo "exit $?"; tail -n 12 "$out/runs/gated.log"
fi
finish
