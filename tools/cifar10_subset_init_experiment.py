"""The recurrent initialisation and step size of rnn-cpu on a 15,000-image CIFAR-10 subset
(6 epochs, one thread, validation on 5,000 other training images; data in /tmp/data).

    python3 tools/cifar10_subset_init_experiment.py MODE LR [HIDDEN [BATCH]]   # MODE: normal, orth, orth09, eye

Prints one line an epoch: mode, lr, hidden, epoch, mean training loss, validation accuracy (%),
seconds. Its runs are results/cifar10-dev-tuning/subset/{normal,normal3,orth,orth3}.log.

It imports seqbench's private modules on purpose: it replaces the RNN cell's initialisation
(``RNN.init``), which no public API exposes, and trains ``RecurrentClassifier`` directly on a
fixed subset, outside the protocol. Kept as it ran: it may break when those modules change.
"""
import sys
import time

import numpy as np

from seqbench.datasets import loader
from seqbench.models import rnn as rnnmod
from seqbench.models.recurrent import RecurrentClassifier
from seqbench.preprocess import channel_stats, standardize
from seqbench.types import LoadContext

mode = sys.argv[1]; lr=float(sys.argv[2]); H=int(sys.argv[3]) if len(sys.argv)>3 else 256
ds = loader.load("cifar10", LoadContext(__import__('pathlib').Path("/tmp/data"), False))
rng = np.random.default_rng(0); idx = rng.permutation(50000); tr, va = idx[:15000], idx[45000:]
st = channel_stats(ds.train_x[tr], 3)
xtr = standardize(ds.train_x[tr], *st, 3); xva = standardize(ds.train_x[va], *st, 3)
ytr, yva = ds.train_y[tr], ds.train_y[va]
orig = rnnmod.RNN.init
def init(self, rng, F, Hh):
    p = orig(self, rng, F, Hh)
    if mode == "orth":
        q, r = np.linalg.qr(rng.standard_normal((Hh, Hh))); p["W_aa"] = q * np.sign(np.diag(r))
    elif mode == "orth09":
        q, r = np.linalg.qr(rng.standard_normal((Hh, Hh))); p["W_aa"] = 0.9 * q * np.sign(np.diag(r))
    elif mode == "eye":
        p["W_aa"] = np.eye(Hh) * 0.9
    return p
rnnmod.RNN.init = init
m = RecurrentClassifier(rnnmod.RNN, 96, 10, hidden=H, lr=lr, clip=1.0, threads=1)
r2 = np.random.default_rng(1)
for ep in range(1, 7):
    o = r2.permutation(len(ytr)); t=time.time(); L=[]
    BS=int(sys.argv[4]) if len(sys.argv)>4 else 128
    for b in range(0, len(o), BS):
        i = o[b:b+BS]; L.append(float(m.train_batch(xtr[i], ytr[i].astype(np.int64))))
    acc = (m.predict_proba(xva).argmax(1) == yva).mean()
    print(mode, lr, H, ep, round(np.mean(L),4), round(100*acc,2), round(time.time()-t,1), flush=True)
