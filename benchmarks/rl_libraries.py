"""RL libraries on one small referential game: throughput and seconds to an accuracy.

Compared: Stable-Baselines3 PPO on the batched vector envs (``examples/sb3_referential.py``:
sender and receiver in alternation, 256 games per call), SB3 PPO through the one-game role
adapter (the same alternation, one game per call), RLlib multi-agent PPO through its PettingZoo
wrapper (when ``ray`` is installed), BenchMARL MAPPO and IPPO through its ``Experiment``
(``examples/benchmarl_referential.py``: 1024 games per iteration from 512 batched envs, when
``benchmarl`` is installed), and the project's batched REINFORCE trainer
(``commchannels.training.referential``, 256 games per update).
Games per second count every game played while learning; seconds-to-accuracy is training
wall time (evaluation excluded) until the greedy pair reaches each of ``--targets``.

A run of every library writes ``results/rl_libraries.json`` afresh; a run of a subset
(``--only``) merges its rows into it, replacing the rows of the same libraries and keeping the
others. Each row records its own budget, targets and date (``measured``; rows without them were
measured with the file's ``budget_s`` and ``targets``). ``--quick`` writes
``results/rl_libraries_quick.json`` only.

    python benchmarks/rl_libraries.py [--quick] [--budget 120] [--targets 0.5 0.6 0.7]
                                      [--only sb3-vector,sb3,rllib,benchmarl-mappo,benchmarl-ippo,batched]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, print_table, write_results  # noqa: E402

# holdout_fraction=0.25 keeps 4 of the 16 objects out of training (enough for a 3-candidate test split)
GAME = {"n_attributes": 2, "n_values": 4, "holdout_fraction": 0.25, "n_candidates": 3, "vocab_size": 8,
        "max_len": 1}


class Clock:
    """Training wall time with evaluation excluded; records when each target was first reached."""

    def __init__(self, targets: tuple[float, ...]) -> None:
        self.elapsed, self.reached = 0.0, dict.fromkeys(targets)
        self._start = time.perf_counter()

    def pause(self) -> None:
        self.elapsed += time.perf_counter() - self._start

    def resume(self, accuracy: float) -> None:
        for target, seconds in self.reached.items():
            if seconds is None and accuracy >= target:
                self.reached[target] = self.elapsed
        self._start = time.perf_counter()


def run_sb3_vector(budget: float, targets: tuple[float, ...], envs: int, steps: int) -> dict:
    """SB3 PPO on the batched vector envs, as ``examples/sb3_referential.py`` trains it."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from sb3_referential import accuracy, build

    _, models = build(envs, seed=0, game=GAME)
    clock, acc = Clock(targets), 0.0
    while clock.elapsed < budget:
        for model in models.values():
            model.learn(steps, reset_num_timesteps=False)
        clock.pause()
        acc = accuracy(models["sender"], models["receiver"], games=1000, game=GAME)
        clock.resume(acc)
    games = sum(m.num_timesteps for m in models.values())  # max_len=1: one step per game per role
    return {"games": games, "train_s": clock.elapsed, "accuracy": acc, "s_to_target": clock.reached}


def run_sb3(budget: float, targets: tuple[float, ...], steps: int) -> dict:
    from stable_baselines3 import PPO

    from commchannels import make
    from commchannels.wrappers import RoleEnv

    def accuracy(sender: PPO, receiver: PPO, games: int, seed: int = 123) -> float:
        """Greedy accuracy of the pair, one game at a time through the role adapter."""
        sender_view = RoleEnv(make("referential_v0", **GAME), "sender", flatten=True)
        env = RoleEnv(make("referential_v0", **GAME), "receiver", flatten=True,
                      partners={"sender": sender_view.policy(sender)})
        correct, (obs, _) = 0.0, env.reset(seed=seed)
        for _ in range(games):
            correct += env.step(receiver.predict(obs, deterministic=True)[0])[4]["correct"]
            obs, _ = env.reset()
        return correct / games

    envs = {role: RoleEnv(make("referential_v0", **GAME), role, flatten=True) for role in ("sender", "receiver")}
    ppo = {"n_steps": min(steps, 512), "batch_size": 128, "learning_rate": 1e-3, "ent_coef": 0.01,
           "gamma": 1.0, "verbose": 0}
    models = {role: PPO("MlpPolicy", env, seed=i, **ppo) for i, (role, env) in enumerate(envs.items())}
    envs["sender"].set_partner("receiver", envs["receiver"].policy(models["receiver"]))
    envs["receiver"].set_partner("sender", envs["sender"].policy(models["sender"]))
    clock, acc = Clock(targets), 0.0
    while clock.elapsed < budget:
        for model in models.values():
            model.learn(steps, reset_num_timesteps=False)
        clock.pause()
        acc = accuracy(models["sender"], models["receiver"], games=1000)
        clock.resume(acc)
    # max_len=1: one sender step and one receiver step per game, whichever role is learning
    games = sum(m.num_timesteps for m in models.values())
    return {"games": games, "train_s": clock.elapsed, "accuracy": acc, "s_to_target": clock.reached}


def run_rllib(budget: float, targets: tuple[float, ...], quick: bool) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    import ray
    from ray.tune.registry import register_env
    from rllib_referential import build_config, make_env

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    register_env("commchannels_referential", make_env)
    args = argparse.Namespace(quick=quick, env_runners=0, seed=0)
    algo = build_config(args).build_algo()
    clock, acc, games = Clock(targets), 0.0, 0
    while clock.elapsed < budget:
        result = algo.train()
        games = int(result["env_runners"].get("num_episodes_lifetime", games))
        clock.pause()
        acc = float(algo.evaluate()["env_runners"]["agent_episode_returns_mean"]["receiver"])
        clock.resume(acc)
    algo.stop()
    ray.shutdown()
    return {"games": games, "train_s": clock.elapsed, "accuracy": acc, "s_to_target": clock.reached}


def run_benchmarl(budget: float, targets: tuple[float, ...], algorithm: str, quick: bool) -> dict:
    """BenchMARL MAPPO or IPPO, built as ``examples/benchmarl_referential.py`` builds it (its
    defaults: 1024 games per iteration from 512 envs, 4 epochs of 4 minibatches, greedy evaluation
    on 500 games every 5 iterations, excluded from the clock), stopped after the iteration that
    spends ``budget`` training seconds."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from benchmarl_referential import AccuracyClock, BudgetSpent, build_experiment, greedy_accuracy, options

    args = options(["--algorithm", algorithm] + (["--quick"] if quick else []))
    args.iterations = 10**6  # the budget stops it
    clock = AccuracyClock(targets, budget=budget)
    with tempfile.TemporaryDirectory() as folder:
        experiment = build_experiment(args, folder, clock)
        try:
            experiment.run()
        except BudgetSpent:
            experiment.close()  # what run() does at its end
    acc = greedy_accuracy(experiment.policy, experiment.task, games=1000, seed=123)
    clock.record(acc)  # like the other runners, the last evaluation counts towards the targets
    # max_len=1: a game is 2 frames (the sender's token, then the receiver's guess)
    return {"games": experiment.total_frames // 2, "train_s": clock.train_s, "accuracy": acc,
            "s_to_target": clock.reached}


def merge_rows(path: Path, payload: dict, order: list[str]) -> dict:
    """``payload`` merged into the results already at ``path``: its rows replace those of the same
    library (a skipped library's note row replaces only a note), the file's other rows and fields
    stay; rows in ``order`` (library names) first."""
    if not path.exists():
        return payload
    old = json.loads(path.read_text())
    old.pop("machine", None)  # write_results adds the current one
    rows = {row["library"]: row for row in old.get("rows", [])}
    for row in payload["rows"]:
        if "games" in row or "games" not in rows.get(row["library"], {}):
            rows[row["library"]] = row
    rank = {name: i for i, name in enumerate(order)}
    ordered = sorted(rows.values(), key=lambda row: rank.get(row["library"], len(rank)))
    return {**payload, **old, "rows": ordered}


def run_batched(budget: float, targets: tuple[float, ...], batch_size: int) -> dict:
    """The project's batched trainer (``commchannels train referential --method reinforce``):
    whole batches of games from the game's functional API, REINFORCE for both agents."""
    from commchannels.training.referential import Config, train

    cfg = Config(method="reinforce", batch_size=batch_size, max_seconds=budget, steps=10**7,
                 eval_every=20, targets=targets, metrics_every=10**7, env=GAME, run={"progress": False})
    final = train(cfg).final
    # the trainer's clock includes its evaluations (1024 greedy games per split every 20 updates)
    return {"games": final["samples"], "train_s": final["seconds"], "accuracy": final["train_acc"],
            "s_to_target": {t: final.get(f"seconds_to_{t * 100:g}") for t in targets}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per library")
    parser.add_argument("--budget", type=float, default=120.0, help="training seconds per library")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.5, 0.6, 0.7],
                        help="greedy accuracies to time")
    parser.add_argument("--only", default="sb3-vector,sb3,rllib,benchmarl-mappo,benchmarl-ippo,batched",
                        help="comma-separated subset (a subset merges its rows into the results file)")
    parser.add_argument("--vocab-size", type=int, default=GAME["vocab_size"],
                        help="symbols (8: at most 0.939 for 12 training objects; 13 or more: 1.0 is possible)")
    args = parser.parse_args()
    GAME["vocab_size"] = args.vocab_size
    budget, targets = (3.0 if args.quick else args.budget), tuple(args.targets)
    torch.set_num_threads(1)  # tiny networks and tensors: threads cost more than they give on 2 busy cores
    runners = {
        "sb3 PPO (vector env, 256 games/call)": ("sb3-vector", lambda: run_sb3_vector(
            budget, targets, 256, 2048 if args.quick else 8192)),
        "sb3 PPO (role adapter)": ("sb3", lambda: run_sb3(budget, targets, 256 if args.quick else 1024)),
        "rllib PPO (PettingZooEnv)": ("rllib", lambda: run_rllib(budget, targets, args.quick)),
        "benchmarl MAPPO (Experiment, batched env)": ("benchmarl-mappo", lambda: run_benchmarl(
            budget, targets, "mappo", args.quick)),
        "benchmarl IPPO (Experiment, batched env)": ("benchmarl-ippo", lambda: run_benchmarl(
            budget, targets, "ippo", args.quick)),
        "batched REINFORCE (trainer)": ("batched", lambda: run_batched(budget, targets, 256)),
    }
    only = args.only.split(",")
    unknown = set(only) - {key for key, _ in runners.values()}
    if unknown:
        parser.error(f"unknown --only keys {sorted(unknown)}; choose from {[key for key, _ in runners.values()]}")
    missing = {"rllib": (("ray",), "ray not installed (pip install -e '.[rllib]')")}
    for key in ("benchmarl-mappo", "benchmarl-ippo"):  # found, not imported: benchmarl 1.5 needs the shim first
        missing[key] = (("torchrl", "hydra", "benchmarl"), "benchmarl not installed (pip install -e '.[benchmarl]', "
                                                           "then pip install --no-deps benchmarl==1.5.2)")
    rows = []
    for name, (key, run) in runners.items():
        if key not in only:
            continue
        if key in missing and any(importlib.util.find_spec(module) is None for module in missing[key][0]):
            rows.append({"library": name, "note": missing[key][1], "measured": time.strftime("%Y-%m-%d %H:%M:%S")})
            continue
        result = run()
        measured = {"budget s": budget, "targets": list(targets), "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
        rows.append({"library": name, "games/s": result["games"] / result["train_s"],
                     "final acc": result["accuracy"], "train s": result["train_s"], "games": result["games"],
                     **{f"s to {t}": s if s is not None else "-" for t, s in result["s_to_target"].items()},
                     **measured})
    print(f"game {GAME}, chance {1 / GAME['n_candidates']:.3f}")
    print_table(rows, ["library", "games/s", "final acc", *(f"s to {t}" for t in targets), "train s", "games",
                       "note"])
    name = "rl_libraries_quick" if args.quick else "rl_libraries"  # a smoke run never overwrites results
    if args.vocab_size != 8:
        name += f"_vocab{args.vocab_size}"
    payload = {"game": GAME, "budget_s": budget, "targets": targets, "rows": rows}
    if set(only) != {key for key, _ in runners.values()}:  # a subset: keep the file's other rows
        payload = merge_rows(RESULTS / f"{name}.json", payload, list(runners))
    write_results(name, payload)


if __name__ == "__main__":
    main()
