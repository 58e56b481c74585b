"""Stable-Baselines3 PPO as the teacher: the Gymnasium view of the teaching environment.

``gymnasium.make("commchannels/Teaching-v0")`` is the teacher's single-agent view (passive
student). PPO learns which data, learning rate and targets to give a fresh student each step;
the greedy teacher is then compared with plain SGD on held-out students (SGD updates needed to
reach the target validation accuracy; the project's own batched trainer is
``commchannels train teacher``).

    python examples/train_teacher_sb3.py [--quick] [--timesteps 20000]
"""

from __future__ import annotations

import argparse
import time

import gymnasium
import numpy as np
import torch
from stable_baselines3 import PPO

import commchannels  # noqa: F401  (registers commchannels/Teaching-v0)

ENV = {"target_accuracy": 0.9, "horizon": 40}
QUICK = {"target_accuracy": 0.5, "horizon": 4, "hidden": (8,), "max_val": 100, "teacher_epochs": 2}


def steps_to_target(env: gymnasium.Env, act, episodes: int, seed: int = 1_000_000) -> float:
    """Mean SGD updates to reach the target (the horizon's worth when never reached)."""
    total = 0.0
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done, info = False, {}
        while not done:
            obs, _, terminated, truncated, info = env.step(act(obs))
            done = terminated or truncated
        total += info["sgd_steps"] if info["reached"] else env.unwrapped.core.settings.horizon * \
            env.unwrapped.core.settings.updates_per_step
    return total / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny environment and budget (smoke test)")
    parser.add_argument("--timesteps", type=int, default=20_000, help="PPO environment steps (directives)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    kwargs, timesteps = (QUICK, 128) if args.quick else (ENV, args.timesteps)
    torch.set_num_threads(1)  # tiny networks: threads cost more than they give

    env = gymnasium.make("commchannels/Teaching-v0", **kwargs)
    env.reset(seed=args.seed)
    print(f"teacher observation {env.observation_space.shape}, directive {env.action_space}")
    start = time.perf_counter()
    model = PPO("MlpPolicy", env, n_steps=min(512, timesteps), batch_size=64, learning_rate=1e-3,
                ent_coef=0.01, gamma=1.0, seed=args.seed, verbose=0)
    model.learn(timesteps)
    print(f"trained PPO for {timesteps} directives in {time.perf_counter() - start:.1f} s")

    plain_level = env.unwrapped.core.settings.plain_lr_level
    plain = np.array([0, plain_level, 0])
    episodes = 3 if args.quick else 10
    learned = steps_to_target(env, lambda obs: model.predict(obs, deterministic=True)[0], episodes)
    baseline = steps_to_target(env, lambda obs: plain, episodes)
    print(f"SGD steps to reach {kwargs['target_accuracy']:.2f} validation accuracy, {episodes} held-out students:")
    print(f"  PPO teacher {learned:6.1f}   plain SGD {baseline:6.1f}")


if __name__ == "__main__":
    main()
