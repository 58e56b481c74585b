"""Stable-Baselines3 PPO on the referential game: sender and receiver trained in alternation,
each on a batched vector env that plays B games per call.

Each role is ``gymnasium.make_vec("commchannels/Referential-<role>-v0", num_envs=B)`` (the
batched core behind Gymnasium's vector API) wrapped as an SB3 ``VecEnv``; its partner is the
other role's PPO model, sampling its actions (greedy partners freeze the other role's
exploration, and the pair then stalls near 0.66) on all B games at once; the two models take
turns. Accuracy is measured with both models greedy.

    python examples/sb3_referential.py [--quick] [--seconds 120] [--envs 256]
"""

from __future__ import annotations

import argparse
import time

import gymnasium
import numpy as np
import torch
from stable_baselines3 import PPO

import commchannels  # noqa: F401  (registers the Gymnasium ids)
from commchannels.wrappers.sb3 import ppo_pair, role_vector_env

# holdout_fraction=0.25 keeps 4 of the 16 objects out of training (enough for a 3-candidate test split)
GAME = {"n_attributes": 2, "n_values": 4, "holdout_fraction": 0.25, "n_candidates": 3, "vocab_size": 8,
        "max_len": 1}


def role_env(role: str, envs: int, game: dict, seed: int) -> gymnasium.vector.VectorEnv:
    return role_vector_env("referential_v0", role, envs, seed, **game)


def accuracy(sender: PPO, receiver: PPO, games: int, seed: int = 123, game: dict | None = None) -> float:
    """Greedy accuracy of the pair on ``games`` games played as one batch."""
    sender_env = role_env("sender", games, game or GAME, seed)
    env = role_env("receiver", games, game or GAME, seed)
    env.set_partner(sender_env.policy(sender))
    obs, _ = env.reset(seed=seed)
    _, _, _, _, info = env.step(receiver.predict(obs, deterministic=True)[0])
    return float(info["final_info"]["correct"].mean())


def build(envs: int, seed: int, game: dict | None = None, n_steps: int = 8) -> tuple[dict, dict]:
    """The two role envs (as SB3 VecEnvs) and their PPO models, each the other's (sampling) partner."""
    return ppo_pair("referential_v0", game or GAME, envs, seed, n_steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds (smoke test)")
    parser.add_argument("--seconds", type=float, default=120.0, help="training time budget")
    parser.add_argument("--envs", type=int, default=256, help="games per call (B)")
    parser.add_argument("--steps", type=int, default=8192, help="env steps per model per round")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seconds, steps = (3.0, 2048) if args.quick else (args.seconds, args.steps)
    torch.set_num_threads(1)  # tiny networks: threads cost more than they give

    _, models = build(args.envs, args.seed)
    start, rounds, acc = time.perf_counter(), 0, 0.0
    print(f"game {GAME}; chance accuracy {1 / GAME['n_candidates']:.3f}; {args.envs} games per call")
    while time.perf_counter() - start < seconds:
        for model in models.values():
            model.learn(steps, reset_num_timesteps=False)
        rounds += 1
        acc = accuracy(models["sender"], models["receiver"], games=1000)
        games = sum(m.num_timesteps for m in models.values())  # max_len=1: one step per game per role
        print(f"round {rounds:2d}: {games:7d} games, greedy accuracy {acc:.3f}, {time.perf_counter() - start:5.1f} s")
    print(f"final greedy accuracy {acc:.3f} (chance {1 / GAME['n_candidates']:.3f}; "
          f"at most {optimum(GAME):.3f} with this vocabulary)")


def optimum(game: dict) -> float:
    """The best accuracy any one-token language reaches: objects beyond the vocabulary share
    symbols, and a receiver shown two objects with the same symbol can only guess."""
    objects = round(game["n_values"] ** game["n_attributes"] * (1 - game["holdout_fraction"]))
    vocab, c = game["vocab_size"], game["n_candidates"]
    shared = 2 * max(0, objects - vocab)  # objects in symbol pairs (when objects <= 2 * vocab)
    others = objects - 1
    # a target in a pair is confused when its partner is among the c - 1 distractors
    p_partner = 1 - np.prod([(others - 1 - k) / (others - k) for k in range(c - 1)])
    return 1 - shared / objects * p_partner / 2


if __name__ == "__main__":
    main()
