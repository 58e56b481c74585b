"""Throughput of the referential game: the batched core (random actions, whole games per
second at several batch sizes) and the PettingZoo AEC / Parallel views (agent steps per second).

    python benchmarks/referential_env.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402

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


def aec_steps_per_second(seconds: float, **kwargs) -> float:
    env = referential_v0.env(**kwargs)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short measurements")
    args = parser.parse_args()
    seconds = 0.5 if args.quick else 3.0
    rows = []
    for name, game in (("attributes 4x8", AttributeValueGame(**STANDARD)),
                       ("digits", DigitsGame(n_candidates=5, vocab_size=16, max_len=4))):
        for batch_size in (1, 64, 1024, 4096, 16384):
            rate = core_games_per_second(game, batch_size, seconds)
            rows.append({"view": "batched core", "objects": name, "B": batch_size, "games/s": rate})
    aec = aec_steps_per_second(seconds, **STANDARD)
    par = parallel_steps_per_second(seconds, **STANDARD)
    rows.append({"view": "AEC (agent steps/s)", "objects": "attributes 4x8", "B": 1, "games/s": aec})
    rows.append({"view": "Parallel (steps/s)", "objects": "attributes 4x8", "B": 1, "games/s": par})
    print_table(rows)
    write_results("referential_env", {"rows": rows, "goals": {
        "core_games_per_second_at_4096": 1_000_000, "aec_agent_steps_per_second": 20_000}})


if __name__ == "__main__":
    main()
