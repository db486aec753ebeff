#!/usr/bin/env bash
# Equal-budget tuning of rnn-cpu, lstm-cpu and gru-cpu on MNIST (issue 23), on one core, then the
# winners and the hand-picked defaults over seeds 0-2 under the same short protocol (--quick:
# 4,000 training and 1,000 test samples, here 6 epochs). Run from the repository root.
set -euo pipefail
export OPENBLAS_NUM_THREADS=1
R=results/mnist-tune-cpu
COMMON=(--data-dir /work/shared/data --offline --set threads=1 --set epochs=6)
time seqbench tune -m rnn-cpu -m lstm-cpu -m gru-cpu -d mnist --trials 30 --seed 0 --max-train 4000 \
    --space hidden=64:384 "${COMMON[@]}" --out $R/tune
time seqbench run --params-from $R/tune --quick --seeds 0,1,2 "${COMMON[@]}" --out $R/tuned
time seqbench run -m rnn-cpu -m lstm-cpu -m gru-cpu -d mnist --quick --seeds 0,1,2 "${COMMON[@]}" --out $R/defaults
