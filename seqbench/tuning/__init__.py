"""``seqbench tune``: an equal-budget hyperparameter search per model x dataset, with Optuna, on
the validation split only. Optuna is imported only when a tune runs (``pip install optuna``).

:mod:`.space` builds each model's search space from its typed declarations, :mod:`.trial`
trains one trial under the harness protocol, :mod:`.pool` runs trials here or on Dask workers,
:mod:`.study` drives the studies in their SQLite store, :mod:`.summary` and :mod:`.report` say
what the tune found; ``seqbench run --params-from`` trains the winners.
"""
