"""Teaching benchmark: SGD steps a fresh student needs to reach the target validation accuracy
(learned teacher vs baselines, held-out students), and the throughput of the batched core.

    python benchmarks/teaching.py [--quick] [--datasets digits mnist1d]

Steps are SGD updates (directives x updates_per_step), censored at the horizon when the target
is never reached; mean and 95% Student-t interval over held-out seeds (each seed's mean over
its students). Timings use one torch thread (tiny tensors: threads cost more than they give).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402

from commchannels.agents.classifiers import MLPClassifier  # noqa: E402
from commchannels.agents.students import BatchedMLP  # noqa: E402
from commchannels.envs.teaching import TeachingCore, TeachingSettings  # noqa: E402
from commchannels.run_folder import RunOptions  # noqa: E402
from commchannels.training.teacher import Config, train  # noqa: E402
from commchannels.training.teaching_baselines import TUNED  # noqa: E402

SETUPS = {  # the environment (env) and training budget of each data set
    "digits": {"env": {"target_accuracy": 0.9, "horizon": 40, "updates_per_step": 10}, "n_envs": 64,
               "iterations": 200},
    "mnist1d": {"env": {"target_accuracy": 0.4, "horizon": 50, "updates_per_step": 20}, "n_envs": 32,
                "iterations": 80},
}


def timed(fn, seconds: float) -> float:
    """Calls of ``fn`` per second (at least 3 calls)."""
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or calls < 3:
        fn()
        calls += 1
    return calls / (time.perf_counter() - start)


def core_throughput(n_envs: int, seconds: float) -> float:
    """Environment directive steps per second (n_envs stepped together, default digits settings)."""
    core = TeachingCore(TeachingSettings(target_accuracy=None), n_envs=n_envs, seed=0)
    core.reset(seed=0)
    directive = torch.tensor([[0, 1, 0]]).expand(n_envs, 3)

    def step() -> None:
        if bool(core.done.all()):
            core.reset()
        core.step(directive)
    return timed(step, seconds) * n_envs


def update_implementations(n_students: int, seconds: float) -> dict[str, float]:
    """Student SGD updates per second (n_students each on its own batch of 16) by three methods."""
    n, f, c, lr = 16, 64, 10, 0.1
    x, y = torch.rand(n_students, n, f), torch.randint(c, (n_students, n))
    targets = F.one_hot(y, c).float()
    batched = BatchedMLP(f, c, (32,), n_students)
    batched.init_(torch.Generator().manual_seed(0))
    rates = torch.full((n_students,), lr)
    models = [MLPClassifier(f, c, (32,)) for _ in range(n_students)]
    params, _ = torch.func.stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def loss_fn(p, xb, tb):
        return F.cross_entropy(torch.func.functional_call(base, p, (xb,)), tb)
    grad_fn = torch.func.vmap(torch.func.grad(loss_fn))

    def vmapped() -> None:
        grads = grad_fn(params, x, targets)
        for key in params:
            params[key] = params[key] - lr * grads[key]

    def loop() -> None:
        for i, model in enumerate(models):
            model.zero_grad()
            F.cross_entropy(model(x[i]), targets[i]).backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= lr * p.grad

    return {name: timed(fn, seconds) * n_students for name, fn in (
        ("bmm (BatchedMLP)", lambda: batched.sgd_step(x, targets, rates)),
        ("torch.func vmap", vmapped), ("python loop", loop))}


def teaching_rows(dataset: str, quick: bool) -> tuple[list[dict], dict]:
    setup = dict(SETUPS[dataset])
    if quick:
        setup.update(iterations=5, n_envs=16)
    cfg = Config(**{**setup, "env": {**setup["env"], "dataset": dataset}}, compare_baselines=True,
                 eval_seeds=3 if quick else 10, eval_students=4,
                 run=RunOptions(run_dir=f"runs/benchmark_teacher_{dataset}", overwrite=True, progress=False))
    start = time.perf_counter()
    result = train(cfg)
    seconds = time.perf_counter() - start
    evaluations = result.extras["evaluations"]
    plain = evaluations["plain SGD"]["steps_mean"]
    rows = [{"dataset": dataset, "teacher": name, "steps": ev["steps_mean"], "ci95": ev["steps_ci95"],
             "reached": ev["reached"], "vs plain": plain / ev["steps_mean"]} for name, ev in evaluations.items()]
    # the goal names the five baselines; the tuned fixed directive is an extra, stronger reference
    listed = {n: ev["steps_mean"] for n, ev in evaluations.items() if n != "learned teacher" and TUNED not in n}
    tuned = next(ev["steps_mean"] for n, ev in evaluations.items() if TUNED in n)
    learned = evaluations["learned teacher"]["steps_mean"]
    summary = {"setup": setup, "train_seconds": seconds, "learned": learned, "plain": plain,
               "best_baseline": min(listed.values()), "best_fixed_directive": tuned,
               "speedup_vs_plain": plain / learned, "goal_1.5x_fewer_than_plain": plain / learned >= 1.5,
               "goal_beats_best_baseline": learned < min(listed.values()),
               "beats_best_fixed_directive": learned < tuned,
               "greedy_directives": result.extras["greedy_directives"], "evaluations": evaluations}
    return rows, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny training budgets and short timings")
    parser.add_argument("--datasets", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    seconds = 0.5 if args.quick else 3.0

    throughput = {n: core_throughput(n, seconds) for n in (1, 64)}
    speedup = throughput[64] / throughput[1]
    print_table([{"environments stepped together": n, "directive steps/s": rate} for n, rate in throughput.items()])
    print(f"batching speed-up at 64 environments: {speedup:.1f}x\n")
    updates = update_implementations(64, seconds)
    print_table([{"64 students, SGD update by": k, "student updates/s": v} for k, v in updates.items()])
    print()

    rows, summaries = [], {}
    for dataset in args.datasets:
        dataset_rows, summaries[dataset] = teaching_rows(dataset, args.quick)
        rows += dataset_rows
    print_table(rows)
    for dataset, s in summaries.items():
        print(f"{dataset}: learned teacher {s['learned']:.1f} SGD steps, plain SGD {s['plain']:.1f} "
              f"({s['speedup_vs_plain']:.2f}x), best baseline {s['best_baseline']:.1f}; goals: "
              f"1.5x fewer than plain {s['goal_1.5x_fewer_than_plain']}, beats best baseline "
              f"{s['goal_beats_best_baseline']}; vs best fixed directive {s['best_fixed_directive']:.1f}: "
              f"{'better' if s['beats_best_fixed_directive'] else 'not better'} (trained in "
              f"{s['train_seconds']:.0f} s)\n  greedy directives on one held-out student: {s['greedy_directives']}")
    write_results("teaching", {"quick": args.quick, "throughput_directive_steps_per_s": throughput,
                               "batching_speedup_64": speedup, "student_updates_per_s_64": updates,
                               "steps_to_target": rows, "summaries": summaries})


if __name__ == "__main__":
    main()
