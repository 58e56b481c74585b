"""Teaching benchmark: does a teacher that watches the student customise its training?

    python benchmarks/teaching.py [--quick] [--presets mlp-arch] [--seeds 10] [--parts throughput main channel]

For each student preset (``commchannels.envs.teaching.families``) it trains

- the *sighted* teacher (GRU memory, sees the student's statistics) and
- the *blind* teacher (same policy and budget, sees progress only: the channel cut),

tunes every baseline of ``commchannels.training.teaching_baselines`` on the training families
with the same number of student runs as one teacher's training (``n_envs * iterations``), and
scores all of them on the **held-out families** (never seen in training or tuning, except by the
row marked *oracle*) over ``--seeds`` evaluation seeds. The score is SGD updates to the target
validation accuracy (censored at ``horizon * updates_per_step``); mean and 95% Student-t interval
over seeds, and the paired per-seed ratio of each row to the sighted teacher (same students).

``--parts channel`` runs the speaking-student sweep: the student reports ``report_len`` tokens
of ``report_vocab`` symbols and the teacher sees only the report; benefit (blind steps / steps)
is plotted against the report's bandwidth in bits (0 bits: the blind teacher), next to the
sighted teacher that reads the full statistics, all with ``--channel-iterations`` each.

``--parts throughput`` times the batched core (directive steps/s at 1 and 64 environments, one
torch thread, and 64 environments on every core) for every preset, and three ways of updating
64 students.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import json
import math
import multiprocessing
import os
import shutil
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
from commchannels.envs.teaching.families import PRESETS  # noqa: E402
from commchannels.run_folder import RunOptions  # noqa: E402
from commchannels.runs import save_figure  # noqa: E402
from commchannels.training import teaching_baselines as tb  # noqa: E402
from commchannels.training.teacher import Config, train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SETUPS = {  # the environment and the teacher's training budget per preset
    "mlp-arch": {"env": {"students": "mlp-arch", "target_accuracy": 0.9, "horizon": 25, "updates_per_step": 20},
                 "n_envs": 64, "iterations": 300, "lr": 0.01},
    "mlp-data": {"env": {"students": "mlp-data", "target_accuracy": 0.85, "horizon": 25, "updates_per_step": 20},
                 "n_envs": 64, "iterations": 300, "lr": 0.01},
    "mlp-fixed": {"env": {"students": "mlp-fixed", "target_accuracy": 0.9, "horizon": 25, "updates_per_step": 20},
                  "n_envs": 64, "iterations": 300, "lr": 0.01},
}
BANDWIDTHS = ((1, 2), (2, 4), (4, 8))  # (report_len, report_vocab) of the speaking-student sweep
SIGHTED, BLIND = "learned teacher (sighted)", "learned teacher (blind)"
PARTS = {"main": "teachers against tuned baselines", "channel": "the report-bandwidth sweep",
         "throughput": "the batched core's speed"}


# ---------------------------------------------------------------------------- throughput
def timed(fn, seconds: float) -> float:
    """Calls of ``fn`` per second (at least 3 calls)."""
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or calls < 3:
        fn()
        calls += 1
    return calls / (time.perf_counter() - start)


def core_throughput(students: str, n_envs: int, seconds: float, threads: int = 1) -> float:
    """Directive steps per second of ``n_envs`` environments of a preset's training families
    (the best of three timings: the shared machine's noise only ever slows a run down)."""
    core = TeachingCore(TeachingSettings(students=students, target_accuracy=None), n_envs=n_envs, seed=0)
    core.reset(seed=0)
    directive = torch.tensor([[0, 3, 0]]).expand(n_envs, 3)

    def step() -> None:
        if bool(core.done.all()):
            core.reset()
        core.step(directive)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return max(timed(step, seconds / 3) for _ in range(3)) * n_envs
    finally:
        torch.set_num_threads(previous)


def torchrl_throughput(students: str, n_envs: int, seconds: float) -> float | None:
    """Directive steps per second of ``env.rollout`` (TorchRL's random policy) on the TorchRL
    teaching env (``None`` without torchrl)."""
    try:
        from commchannels.integrations.torchrl_teaching import make_teaching_env
    except ImportError:
        return None
    env = make_teaching_env(batch_size=n_envs, seed=0, students=students, target_accuracy=None)
    env.rollout(2, break_when_any_done=False)
    return max(timed(lambda: env.rollout(10, break_when_any_done=False), seconds / 3) for _ in range(3)) * 10 * n_envs


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

    def loss_fn(p, xb, tb_):
        return F.cross_entropy(torch.func.functional_call(base, p, (xb,)), tb_)
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


# ---------------------------------------------------------------------------- teaching
def paired_ratio(baseline: list[float], teacher: list[float]) -> tuple[float, float]:
    """Mean and 95% half-width over seeds of baseline steps / teacher steps (same students)."""
    return tb.mean_ci([b / t for b, t in zip(baseline, teacher)])


def train_teacher(preset: str, setup: dict, name: str, seeds: int, students: int, **options) -> dict:
    """Train one teacher under the protocol and return its held-out evaluation."""
    run_dir = ROOT / "runs" / "benchmark_teaching" / preset / name
    torch.set_num_threads(1)  # also in a worker process
    cfg = Config(env=setup["env"], n_envs=setup["n_envs"], iterations=setup["iterations"], lr=setup["lr"],
                 eval_seeds=seeds,
                 eval_students=students, run=RunOptions(run_dir=str(run_dir), overwrite=True, progress=False,
                                                        tensorboard=False), **options)
    start = time.perf_counter()
    result = train(cfg)
    evaluation = dict(result.extras["evaluations"]["learned teacher"])
    evaluation["train_seconds"] = time.perf_counter() - start
    evaluation["run_dir"] = str(run_dir)
    return evaluation


def stored_teachers(path: Path, preset: str, setup: dict, seeds: int, students: int) -> dict[str, dict]:
    """The sighted and blind teachers' held-out evaluations from an earlier results JSON of this
    script, checked to come from the same setup, seeds and students (they are deterministic)."""
    summary = json.loads(Path(path).read_text()).get("summaries", {}).get(preset, {})
    if not {"setup", "eval_seeds", "eval_students", "evaluations"} <= set(summary):
        raise ValueError(f"--teachers-from {path} holds no {preset} teachers with their setup, seeds and "
                         "students; expected the results JSON of a run of this script")
    stored = {"setup": summary["setup"], "seeds": summary["eval_seeds"], "students": summary["eval_students"]}
    wanted = {"setup": setup, "seeds": seeds, "students": students}
    if stored != wanted:
        raise ValueError(f"--teachers-from {path}: its {preset} teachers were run with {stored}; expected {wanted}")
    return {name: summary["evaluations"][name] for name in (SIGHTED, BLIND)}


def teaching_rows(preset: str, setup: dict, seeds: int, students: int, jobs: int,
                  baseline_budget: int | None = None, teachers_from: Path | None = None) -> tuple[list[dict], dict]:
    """Sighted and blind teachers and every tuned baseline, scored on the held-out families.

    With ``jobs > 1`` the two teachers train in worker processes while this one tunes the baselines;
    each baseline is tuned with ``baseline_budget`` student runs (default: as many as one teacher's
    training, ``n_envs * iterations``). ``teachers_from`` reuses the teachers' evaluations of an
    earlier run (:func:`stored_teachers`) instead of training them again.
    """
    budget = baseline_budget or setup["n_envs"] * setup["iterations"]
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch thread pool
    spawn = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) if jobs > 1 and not teachers_from \
        else None
    stored = stored_teachers(teachers_from, preset, setup, seeds, students) if teachers_from else {}
    runs = {name: (spawn.submit(train_teacher, preset, setup, key, seeds, students, **options) if spawn else
                   (key, options))
            for name, key, options in ((SIGHTED, "sighted", {}), (BLIND, "blind", {"observe": "progress"}))
            if name not in stored}
    train_settings = TeachingSettings(**setup["env"])
    held_out = tb.with_split(train_settings, "held-out")
    start = time.perf_counter()
    policies = tb.baselines(train_settings, seed=0, budget=budget)
    tuning_seconds = time.perf_counter() - start
    evaluations = dict(stored)
    for name, run in runs.items():
        evaluations[name] = run.result() if spawn else train_teacher(preset, setup, run[0], seeds, students, **run[1])
    if spawn:
        spawn.shutdown()
    for name, policy in policies.items():
        evaluations[name] = tb.evaluate(held_out, policy, seeds, students)
    sighted = evaluations[SIGHTED]
    rows = []
    for name, ev in evaluations.items():
        ratio, half = paired_ratio(ev["per_seed_steps"], sighted["per_seed_steps"])
        rows.append({"preset": preset, "teacher": name, "steps": ev["steps_mean"], "ci95": ev["steps_ci95"],
                     "reached": ev["reached"], "steps / sighted": ratio, "ratio ci95": half})
    tuned = {n: ev for n, ev in evaluations.items() if n not in (SIGHTED, BLIND) and tb.ORACLE not in n}
    best_name = min(tuned, key=lambda n: tuned[n]["steps_mean"])
    vs_best = paired_ratio(tuned[best_name]["per_seed_steps"], sighted["per_seed_steps"])
    vs_blind = paired_ratio(evaluations[BLIND]["per_seed_steps"], sighted["per_seed_steps"])
    constant = next(ev for n, ev in evaluations.items() if n.startswith("best constant lr"))
    summary = {
        "setup": setup, "eval_seeds": seeds, "eval_students": students, "teachers_reused_from":
            str(teachers_from) if teachers_from else None, "budget_student_runs": budget,
        "tuning_seconds": tuning_seconds,
        "best_tuned_baseline": best_name, "best_tuned_steps": tuned[best_name]["steps_mean"],
        "sighted_steps": sighted["steps_mean"], "blind_steps": evaluations[BLIND]["steps_mean"],
        "ratio_best_baseline_over_sighted": vs_best, "ratio_blind_over_sighted": vs_blind,
        "goal_1.3x_fewer_than_best_tuned": vs_best[0] >= 1.3, "goal_1.2x_fewer_than_blind": vs_blind[0] >= 1.2,
        "tuned_constant_lr_steps": constant["steps_mean"], "goal_target_needs_200_tuned_sgd_updates":
            constant["steps_mean"] >= 200, "evaluations": evaluations}
    return rows, summary


def channel_sweep(preset: str, setup: dict, seeds: int, students: int, jobs: int) -> list[dict]:
    """The speaking student's report bandwidth against the teacher's benefit (blind / steps),
    with the blind (0 bits) and the full-statistics teachers as references, one budget for all."""
    runs = {"none (blind)": (0.0, setup, {"observe": "progress"}),
            "full statistics": (math.nan, setup, {})}
    for length, vocab in BANDWIDTHS:
        env = {**setup["env"], "student_speaks": True, "report_len": length, "report_vocab": vocab}
        runs[f"{length} x {vocab} symbols"] = (length * math.log2(vocab), {**setup, "env": env}, {})
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = {name: pool.submit(train_teacher, preset, run_setup, "channel_" + name.split(" (")[0].replace(
            " ", ""), seeds, students, **options) for name, (_, run_setup, options) in runs.items()}
        steps = {name: future.result()["steps_mean"] for name, future in futures.items()}
    blind = steps["none (blind)"]
    return [{"report": name, "bits": bits, "steps": steps[name], "benefit": blind / steps[name]}
            for name, (bits, _, _) in runs.items()]


# ---------------------------------------------------------------------------- plots
def plot_steps(path: Path, rows: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.2))
    names = [r["teacher"] for r in rows]
    ax.barh(range(len(rows)), [r["steps"] for r in rows], xerr=[r["ci95"] for r in rows], color=[
        "tab:green" if n == SIGHTED else "tab:red" if n == BLIND else "tab:gray" for n in names])
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("SGD updates to target on held-out families (mean, 95% CI over seeds)")
    save_figure(fig, path, dpi=120)


def plot_channel(path: Path, rows: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    reports = [r for r in rows if not math.isnan(r["bits"])]
    ax.plot([r["bits"] for r in reports], [r["benefit"] for r in reports], "o-", label="student reports")
    for r in reports:
        ax.annotate(r["report"], (r["bits"], r["benefit"]), fontsize=7)
    for r in rows:
        if math.isnan(r["bits"]):
            ax.axhline(r["benefit"], color="tab:green", ls="--", label="teacher reads the full statistics")
    ax.axhline(1.0, color="gray", lw=0.5)
    ax.legend(fontsize=7)
    ax.set_xlabel("student report bandwidth (bits per directive)")
    ax.set_ylabel("benefit: blind steps / steps")
    save_figure(fig, path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets and short timings (a smoke run)")
    parser.add_argument("--presets", nargs="+", default=["mlp-arch"], choices=list(SETUPS))
    parser.add_argument("--seeds", type=int, default=10, help="held-out evaluation seeds")
    parser.add_argument("--students", type=int, default=8, help="students per evaluation seed")
    parser.add_argument("--parts", nargs="+", default=["throughput", "main"], choices=list(PARTS),
                        help="; ".join(f"{k}: {v}" for k, v in PARTS.items()))
    parser.add_argument("--channel-iterations", type=int, default=100, help="teacher budget in the channel sweep")
    parser.add_argument("--jobs", type=int, default=2, help="processes: the teachers train beside the tuning")
    parser.add_argument("--baseline-budget", type=int, default=None,
                        help="student runs to tune each baseline (default: the teacher's n_envs x iterations)")
    parser.add_argument("--teachers-from", type=Path, default=None, metavar="RESULTS_JSON",
                        help="reuse the teachers' held-out evaluations of an earlier run of this script "
                             "(same setup, seeds and students) instead of training them again")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seconds = 0.5 if args.quick else 3.0
    part = next(p for p in PARTS if p in args.parts)  # the results file is named after the main part run
    name = "teaching" + ("_quick" if args.quick else "") + ("" if part == "main" else f"_{part}")

    throughput, updates = [], {}
    if "throughput" in args.parts:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        throughput = [{"preset": p, "environments": n, "torch threads": t, "view": "batched core",
                       "directive steps/s": core_throughput(p, n, seconds, t)}
                      for p in PRESETS for n, t in ((1, 1), (64, 1), (64, cores))]
        for p in PRESETS:
            throughput.append({"preset": p, "environments": 64, "torch threads": 1, "view": "TorchRL env rollout",
                               "directive steps/s": torchrl_throughput(p, 64, seconds) or "torchrl not installed"})
        print_table(throughput, ["preset", "environments", "torch threads", "view", "directive steps/s"])
        updates = update_implementations(64, seconds)
        print_table([{"64 students, SGD update by": k, "student updates/s": v} for k, v in updates.items()])

    rows, summaries, channel = [], {}, {}
    for preset in args.presets:
        setup = copy.deepcopy(SETUPS[preset])
        if args.quick:
            setup.update(n_envs=16, iterations=8)  # 128 student runs: enough to tune per family
            setup["env"]["horizon"] = 10
        if "main" in args.parts:
            preset_rows, summaries[preset] = teaching_rows(preset, setup, args.seeds, args.students, args.jobs,
                                                           args.baseline_budget, args.teachers_from)
            rows += preset_rows
        if "channel" in args.parts:
            iterations = setup["iterations"] if args.quick else args.channel_iterations
            channel[preset] = channel_sweep(preset, {**setup, "iterations": iterations}, args.seeds,
                                            args.students, args.jobs)
    if rows:
        print_table(rows)
    for preset, s in summaries.items():
        (r_best, h_best), (r_blind, h_blind) = s["ratio_best_baseline_over_sighted"], s["ratio_blind_over_sighted"]
        print(f"{preset}: sighted {s['sighted_steps']:.0f} SGD updates; best tuned baseline "
              f"({s['best_tuned_baseline']}) {s['best_tuned_steps']:.0f}: {r_best:.2f}x ± {h_best:.2f} "
              f"(goal 1.3x: {s['goal_1.3x_fewer_than_best_tuned']}); blind {s['blind_steps']:.0f}: "
              f"{r_blind:.2f}x ± {h_blind:.2f} (goal 1.2x: {s['goal_1.2x_fewer_than_blind']}); tuned constant lr "
              f"needs {s['tuned_constant_lr_steps']:.0f} (>= 200: {s['goal_target_needs_200_tuned_sgd_updates']})")
    for preset, sweep in channel.items():
        print(f"\n{preset}: the speaking student's channel")
        print_table(sweep)
    payload = {"quick": args.quick, "steps_to_target": rows, "summaries": summaries, "channel": channel}
    if throughput:
        payload.update(throughput_directive_steps_per_s=throughput, student_updates_per_s_64=updates)
    write_results(name, payload)
    if not args.quick:
        images = ROOT / "docs" / "img"
        images.mkdir(parents=True, exist_ok=True)
        for preset in summaries:
            plot_steps(images / f"teaching_{preset}.png", [r for r in rows if r["preset"] == preset])
            run_dir = summaries[preset]["evaluations"][SIGHTED].get("run_dir")  # absent for reused teachers
            traces = Path(run_dir or "") / "directives.png"
            if run_dir and traces.exists():
                shutil.copy(traces, images / f"teaching_{preset}_directives.png")
        for preset, sweep in channel.items():
            plot_channel(images / f"teaching_{preset}_channel.png", sweep)


if __name__ == "__main__":
    main()
