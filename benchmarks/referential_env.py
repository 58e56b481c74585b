"""Throughput of the referential game: the batched core (random actions, whole games per
second at several batch sizes), the PettingZoo AEC / Parallel views (agent steps per second;
the AEC view beside PettingZoo's own ``rps_v2`` measured in the same process, which needs
``pip install pygame``), the batched Gymnasium vector envs of each role and the TorchRL env.

    python benchmarks/referential_env.py [--quick] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import gymnasium
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402

import commchannels  # noqa: E402, F401  (registers the Gymnasium ids)
from commchannels.envs import referential_v0  # noqa: E402
from commchannels.envs.referential import AttributeValueGame, BatchedReferentialEnv, DigitsGame  # noqa: E402

STANDARD = {"n_attributes": 4, "n_values": 8, "n_candidates": 5, "vocab_size": 16, "max_len": 4}


def core_games_per_second(game, batch_size: int, seconds: float) -> float:
    """Full games (reset, max_len random tokens, one random guess) per second."""
    core = BatchedReferentialEnv(game, batch_size, seed=0)
    actions = torch.Generator().manual_seed(1)
    games, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or games == 0:
        core.reset()
        while bool(core.speaking.any()):
            core.send(torch.randint(game.vocab_size, (batch_size,), generator=actions))
        core.guess(torch.randint(game.n_candidates, (batch_size,), generator=actions))
        games += batch_size
    return games / (time.perf_counter() - start)


def aec_steps_per_second(seconds: float, env=None, **kwargs) -> float:
    """Agent steps per second of the loop in PettingZoo's documentation (random actions)."""
    env = env if env is not None else referential_v0.env(**kwargs)
    env.reset(seed=0)
    for agent in env.possible_agents:
        env.action_space(agent).seed(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.reset()
        for agent in env.agent_iter():
            _, _, term, trunc, _ = env.last()
            env.step(None if term or trunc else env.action_space(agent).sample())
            steps += 1
    return steps / (time.perf_counter() - start)


def parallel_steps_per_second(seconds: float, **kwargs) -> float:
    env = referential_v0.parallel_env(**kwargs)
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.reset()
        while env.agents:
            env.step({a: env.action_space(a).sample() for a in env.agents})
            steps += 1
    return steps / (time.perf_counter() - start)


def rps_env():
    """PettingZoo's rock-paper-scissors (``rps_v2``), or None without pygame."""
    try:
        from pettingzoo.classic import rps_v2
    except ImportError:  # pettingzoo.classic's renderer needs pygame
        return None
    return rps_v2.env()


def aec_against_rps(seconds: float, rounds: int = 3) -> tuple[float, float, float, float | None]:
    """Agent steps/s of the AEC view (fast path and core at B=1) and of ``rps_v2``, alternated
    in this process so that all see the same load; medians over ``rounds``."""
    fast, core, rps = [], [], []
    for _ in range(rounds):
        fast.append(aec_steps_per_second(seconds, **STANDARD))
        core.append(aec_steps_per_second(seconds, referential_v0.env(fast=False, **STANDARD)))
        env = rps_env()
        if env is not None:
            rps.append(aec_steps_per_second(seconds, env))
    median = statistics.median
    return median(fast), median(core), median(rps) if rps else None, (median(fast) / median(rps)) if rps else None


def vector_games_per_second(role: str, batch_size: int, seconds: float) -> float:
    """Games per second of one role's batched vector env (random actions, random partner)."""
    env = gymnasium.make_vec(f"commchannels/Referential-{role}-v0", num_envs=batch_size, flatten=True, **STANDARD)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(8)]
    games, steps, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps == 0:
        _, _, terminated, _, _ = env.step(actions[steps % 8])
        games += int(terminated.sum())
        steps += 1
    return games / (time.perf_counter() - start)


def torchrl_agent_steps_per_second(batch_size: int, seconds: float) -> float | None:
    """Agent steps per second of ``env.rollout`` (TorchRL's random policy) on the TorchRL env."""
    try:
        from commchannels.integrations.torchrl import make_env
    except ImportError:
        return None
    env = make_env(batch_size=batch_size, seed=0, **STANDARD)
    env.rollout(5, break_when_any_done=False)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps == 0:
        env.rollout(50, break_when_any_done=False)
        steps += 50
    return steps * batch_size / (time.perf_counter() - start)  # one agent acts per game per step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short measurements")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (tiny tensor ops: on a busy 2-core machine more threads "
                             "cost far more than they give)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seconds = 0.5 if args.quick else 3.0
    rows = []
    for name, game in (("attributes 4x8", AttributeValueGame(**STANDARD)),
                       ("digits", DigitsGame(n_candidates=5, vocab_size=16, max_len=4))):
        for batch_size in (1, 64, 1024, 4096, 16384):
            rate = core_games_per_second(game, batch_size, seconds)
            rows.append({"view": "batched core", "objects": name, "B": batch_size, "games/s": rate})
    fast, core, rps, ratio = aec_against_rps(seconds)
    par = parallel_steps_per_second(seconds, **STANDARD)
    rows.append({"view": "AEC, fast path (agent steps/s)", "objects": "attributes 4x8", "B": 1, "games/s": fast})
    rows.append({"view": "AEC, core at B=1 (agent steps/s)", "objects": "attributes 4x8", "B": 1, "games/s": core})
    rows.append({"view": "PettingZoo rps_v2 AEC (agent steps/s)", "objects": "-", "B": 1,
                 "games/s": rps if rps is not None else "pygame not installed"})
    rows.append({"view": "Parallel (steps/s)", "objects": "attributes 4x8", "B": 1, "games/s": par})
    for role in ("sender", "receiver"):
        rows.append({"view": f"vector env, {role} (games/s)", "objects": "attributes 4x8", "B": 1024,
                     "games/s": vector_games_per_second(role, 1024, seconds)})
    trl = torchrl_agent_steps_per_second(1024, seconds)
    rows.append({"view": "TorchRL env rollout (agent steps/s)", "objects": "attributes 4x8", "B": 1024,
                 "games/s": trl if trl is not None else "torchrl not installed"})
    print_table(rows)
    if ratio is not None:
        print(f"AEC view / rps_v2 agent steps per second: {ratio:.2f}x (goal: at least 1x)")
    name = "referential_env_quick" if args.quick else "referential_env"  # a smoke run never overwrites results
    write_results(name, {"rows": rows, "threads": args.threads, "aec_over_rps": ratio, "goals": {
        "core_games_per_second_at_4096": 1_000_000, "aec_agent_steps_per_second": 20_000, "aec_over_rps": 1.0,
        "torchrl_agent_steps_per_second_at_1024": 100_000}})


if __name__ == "__main__":
    main()
