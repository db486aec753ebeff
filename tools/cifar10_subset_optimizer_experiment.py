"""Optimizer, step size, clipping, standardisation and input-weight scale of rnn-cpu (hidden 256) on a
15,000-image CIFAR-10 subset (6 epochs, one thread, validation on 5,000 other training images; data
in /tmp/data).

    python3 tools/cifar10_subset_optimizer_experiment.py NAME OPTIMIZER LR CLIP std|raw [INPUT_SCALE]

Prints one line an epoch: name, epoch, mean training loss, validation accuracy (%), seconds. Its
runs are results/cifar10-dev-tuning/subset/{adam-raw,sgd-raw,sgd-std,input-scale-0.5}.log.

It imports seqbench's private modules on purpose: it replaces the RNN cell's initialisation
(``RNN.init``), which no public API exposes, and trains ``RecurrentClassifier`` directly on a
fixed subset, outside the protocol. Kept as it ran: it may break when those modules change.
"""
import pathlib
import sys
import time

import numpy as np

from seqbench.datasets import loader
from seqbench.models import rnn as rnnmod
from seqbench.models.recurrent import RecurrentClassifier
from seqbench.preprocess import channel_stats, standardize
from seqbench.types import LoadContext

name, opt, lr, clip, std = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "std"
ds = loader.load("cifar10", LoadContext(pathlib.Path("/tmp/data"), False))
rng = np.random.default_rng(0); idx = rng.permutation(50000); tr, va = idx[:15000], idx[45000:]
xtr, xva = ds.train_x[tr], ds.train_x[va]
if std:
    st = channel_stats(xtr, 3); xtr = standardize(xtr, *st, 3); xva = standardize(xva, *st, 3)
ytr, yva = ds.train_y[tr], ds.train_y[va]
scale = float(sys.argv[6]) if len(sys.argv) > 6 else 1.0
orig = rnnmod.RNN.init
def init(self, rng, F, H):
    p = orig(self, rng, F, H); p["W_ax"] *= scale; return p
rnnmod.RNN.init = init
m = RecurrentClassifier(rnnmod.RNN, 96, 10, hidden=256, lr=lr, clip=clip, optimizer=opt, threads=1)
r2 = np.random.default_rng(1)
for ep in range(1, 7):
    o = r2.permutation(len(ytr)); t=time.time(); L=[]
    for b in range(0, len(o), 128):
        i = o[b:b+128]; L.append(float(m.train_batch(xtr[i], ytr[i].astype(np.int64))))
    acc = (m.predict_proba(xva).argmax(1) == yva).mean()
    print(name, ep, round(np.mean(L),4), round(100*acc,2), round(time.time()-t,1), flush=True)
