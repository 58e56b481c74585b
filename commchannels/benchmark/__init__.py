"""``commchannels benchmark``: a standard protocol and reference scores for communication policies.

- :mod:`~commchannels.benchmark.tasks`: the versioned task list (referential tiers, teaching,
  output exchange), each fixing its environment, budget, evaluation and metrics;
- :mod:`~commchannels.benchmark.protocol`: the method interface (``make(task, seed) -> policy``)
  and one run under the protocol;
- :mod:`~commchannels.benchmark.referential`, :mod:`~commchannels.benchmark.teaching`,
  :mod:`~commchannels.benchmark.exchange`: each track's evaluation and built-in methods
  (:mod:`~commchannels.benchmark.rl_methods`: SB3 and BenchMARL on the referential games);
- :mod:`~commchannels.benchmark.runner`: result files, resuming, the reference scores;
- :mod:`~commchannels.benchmark.report`: IQM, bootstrap intervals, performance profiles, plots.

See ``docs/benchmark.md``.
"""

from commchannels.benchmark.protocol import BUILTIN, run_one
from commchannels.benchmark.tasks import TASK_LIST, TASKS_VERSION, Task, get_task, select_tasks

__all__ = ["BUILTIN", "TASK_LIST", "TASKS_VERSION", "Task", "get_task", "run_one", "select_tasks"]
