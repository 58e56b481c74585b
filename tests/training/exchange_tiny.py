"""The tiny output-exchange setting the exchange tests share (imported by them, not collected)."""

from __future__ import annotations

import dataclasses

from commchannels.run_folder import RunOptions
from commchannels.training.exchange import Config

# digits: 64 features, 10 classes; hidden (8,) -> 64*8 + 8 + 8*10 + 10 = 610 parameters.
N_PARAMS = 610
TINY = dict(dataset="digits", train_size=600, hidden=(8,), steps=12, batch_size=8, eval_every=6,
            exchange_every=5, public_size=40, public_batch=20, burn_in=0, workers=3)
RUN_OPTIONS = {f.name for f in dataclasses.fields(RunOptions)}
TIMES = ("wall_time", "compute_time", "sim_time")  # measured, so they differ between runs


def tiny(**kw) -> Config:
    """The tiny config; run options (run_dir, resume, checkpoint_every, ...) may be given flat."""
    run = {"tensorboard": False, "progress": False, **{k: kw.pop(k) for k in list(kw) if k in RUN_OPTIONS}}
    return Config(**{**TINY, **kw, "run": run})
