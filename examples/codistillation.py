"""Codistillation vs synchronous SGD with 4 simulated workers on mnist1d.

Each worker trains on its own quarter of the data. sync-sgd averages gradients every step;
codistillation only exchanges 8-bit class probabilities on a shared public batch every few
steps and distils toward its peers. The script prints accuracy and bytes for both (and for
independent training, the no-communication baseline).

    python examples/codistillation.py            # about a minute on a laptop core
    python examples/codistillation.py --quick    # a few seconds (smoke test)
"""

import argparse

from commchannels.run_folder import RunOptions
from commchannels.training.exchange import Config, compare, format_table

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="tiny budget (digits, few steps)")
args = parser.parse_args()

if args.quick:
    cfg = Config(dataset="digits", workers=4, steps=40, eval_every=20, hidden=(32,),
                 exchange_every=10, public_batch=100, burn_in=10, run=RunOptions(progress=False))
else:
    cfg = Config(workers=4, steps=1500, eval_every=250)

out = compare(cfg, methods=("independent", "sync-sgd", "codistill"))
print(format_table(out["rows"]))
by = {r["method"]: r for r in out["rows"]}
ratio = by["sync-sgd"]["bytes_sent"] / max(by["codistill"]["bytes_sent"], 1)
print(f"\ncodistill sent {ratio:.0f}x fewer bytes than sync-sgd; accuracy "
      f"{by['codistill']['test_acc']:.3f} vs {by['sync-sgd']['test_acc']:.3f} "
      f"(independent workers: {by['independent']['test_acc']:.3f})")
