"""Stable-Baselines3 PPO on the referential game: sender and receiver trained in alternation.

Each role is a single-agent Gymnasium env (``commchannels.wrappers.RoleEnv``) whose partner is
the other role's PPO model acting greedily; the two models take turns learning. SuperSuit's
vector wrapper cannot do this (the two roles have different spaces); the role adapter can.

    python examples/sb3_referential.py [--quick] [--rounds 12] [--steps 2048]
"""

from __future__ import annotations

import argparse
import time

import torch
from stable_baselines3 import PPO

from commchannels import make
from commchannels.wrappers import RoleEnv

# holdout_fraction=0.25 keeps 4 of the 16 objects out of training (enough for a 3-candidate test split)
GAME = {"n_attributes": 2, "n_values": 4, "holdout_fraction": 0.25, "n_candidates": 3, "vocab_size": 8,
        "max_len": 1}


def accuracy(sender: PPO, receiver: PPO, games: int, seed: int = 123, game: dict | None = None) -> float:
    """Greedy accuracy of the pair on ``games`` games of a separate evaluation env."""
    sender_view = RoleEnv(make("referential_v0", **(game or GAME)), "sender", flatten=True)
    env = RoleEnv(make("referential_v0", **(game or GAME)), "receiver", flatten=True,
                  partners={"sender": sender_view.policy(sender)})
    correct = 0.0
    obs, _ = env.reset(seed=seed)
    for _ in range(games):
        _, _, _, _, info = env.step(receiver.predict(obs, deterministic=True)[0])
        correct += info["correct"]
        obs, _ = env.reset()
    return correct / games


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred steps (smoke test)")
    parser.add_argument("--rounds", type=int, default=12, help="alternations (sender, then receiver)")
    parser.add_argument("--steps", type=int, default=2048, help="env steps per model per round")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rounds, steps = (1, 128) if args.quick else (args.rounds, args.steps)
    torch.set_num_threads(1)  # tiny networks: threads cost more than they give

    # flatten=True: one float vector per observation, so the plain MlpPolicy fits both roles
    sender_env = RoleEnv(make("referential_v0", **GAME), "sender", flatten=True)
    receiver_env = RoleEnv(make("referential_v0", **GAME), "receiver", flatten=True)
    ppo = {"n_steps": min(steps, 512), "batch_size": min(steps, 128), "learning_rate": 1e-3, "ent_coef": 0.01,
           "gamma": 1.0, "verbose": 0}
    sender = PPO("MlpPolicy", sender_env, seed=args.seed, **ppo)
    receiver = PPO("MlpPolicy", receiver_env, seed=args.seed + 1, **ppo)
    sender_env.set_partner("receiver", receiver_env.policy(receiver))
    receiver_env.set_partner("sender", sender_env.policy(sender))
    sender_env.reset(seed=args.seed)
    receiver_env.reset(seed=args.seed + 1)

    start = time.perf_counter()
    print(f"game {GAME}; chance accuracy {1 / GAME['n_candidates']:.3f}")
    for r in range(rounds):
        sender.learn(steps, reset_num_timesteps=False)
        receiver.learn(steps, reset_num_timesteps=False)
        acc = accuracy(sender, receiver, games=50 if args.quick else 1000)
        print(f"round {r + 1:2d}: {2 * (r + 1) * steps:6d} env steps, greedy accuracy {acc:.3f}, "
              f"{time.perf_counter() - start:5.1f} s")
    print(f"final greedy accuracy {acc:.3f} (chance {1 / GAME['n_candidates']:.3f})")


if __name__ == "__main__":
    main()
