"""CleanRL-style PPO with parameter sharing on the referential game (one network, both roles).

The Parallel env with ``flatten=True`` gives every agent the same Box observation (its own
observation flattened, padded, plus an agent indicator) and one Discrete action space, so
SuperSuit's vector wrappers stack senders and receivers into one batch, as CleanRL's
``ppo_pettingzoo_ma_atari.py`` does. ``infos["action_mask"]`` masks padded actions and
``infos["is_turn"]`` masks the loss of actions that do not count (the partner's turn).

    python examples/cleanrl_ppo_referential.py [--quick] [--total-timesteps 400000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import supersuit as ss
import torch
from torch import nn
from torch.distributions import Categorical

import commchannels

GAME = {"n_attributes": 2, "n_values": 4, "holdout_fraction": 0.25, "n_candidates": 3, "vocab_size": 8,
        "max_len": 1}


def make_envs(num_games: int, seed: int):
    par = commchannels.make("referential_v0", parallel=True, flatten=True, **GAME)
    envs = ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(par), num_games, num_cpus=0, base_class="gymnasium")
    obs, infos = envs.reset(seed=seed)
    return envs, obs, infos


def masks(infos: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.tensor(np.stack([i["action_mask"] for i in infos]), dtype=torch.bool),
            torch.tensor([float(i["is_turn"]) for i in infos]))


class Agent(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 128) -> None:
        super().__init__()
        self.critic = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.actor = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, n_actions))

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def get_action_and_value(self, x, mask, action=None, greedy=False):
        logits = self.actor(x).masked_fill(~mask, -1e8)
        dist = Categorical(logits=logits)
        if action is None:
            action = logits.argmax(-1) if greedy else dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.get_value(x)


def greedy_accuracy(agent: Agent, games: int = 300, seed: int = 123) -> float:
    envs, obs, infos = make_envs(games, seed)
    with torch.no_grad():
        for _ in range(GAME["max_len"] + 1):  # the sender's tokens, then the receiver's guess
            action, *_ = agent.get_action_and_value(torch.as_tensor(obs), masks(infos)[0], greedy=True)
            obs, reward, *_, infos = envs.step(action.numpy())
    return float(reward[1::2].mean())  # the receivers' rewards at the end of every game


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few updates (smoke test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--total-timesteps", type=int, default=400_000, help="agent steps (both roles)")
    p.add_argument("--num-games", type=int, default=64, help="parallel games (2 agents each)")
    p.add_argument("--num-steps", type=int, default=16, help="steps per rollout")
    p.add_argument("--learning-rate", type=float, default=2.5e-3)
    p.add_argument("--update-epochs", type=int, default=4)
    p.add_argument("--num-minibatches", type=int, default=4)
    p.add_argument("--clip-coef", type=float, default=0.2)
    p.add_argument("--ent-coef", type=float, default=0.01)
    p.add_argument("--vf-coef", type=float, default=0.5)
    args = p.parse_args()
    total = 1 if args.quick else args.total_timesteps  # quick: one update
    if args.quick:
        args.num_games = 8

    # seeding
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)

    # setup
    envs, next_obs, infos = make_envs(args.num_games, args.seed)
    n, steps = envs.num_envs, args.num_steps
    agent = Agent(envs.observation_space.shape[0], envs.action_space.n)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    obs_b = torch.zeros(steps, n, envs.observation_space.shape[0])
    mask_b = torch.zeros(steps, n, envs.action_space.n, dtype=torch.bool)
    actions, logprobs, rewards, dones, values, turns = (torch.zeros(steps, n) for _ in range(6))
    next_obs, next_done = torch.as_tensor(next_obs), torch.zeros(n)
    start, update = time.perf_counter(), 0
    while update * steps * n < total:
        update += 1
        # rollout
        for t in range(steps):
            obs_b[t], dones[t] = next_obs, next_done
            mask_b[t], turns[t] = masks(infos)
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs, mask_b[t])
            actions[t], logprobs[t], values[t] = action, logprob, value
            obs, reward, term, trunc, infos = envs.step(action.numpy())
            rewards[t] = torch.as_tensor(reward, dtype=torch.float32)
            next_obs = torch.as_tensor(obs)
            next_done = torch.as_tensor(np.logical_or(term, trunc), dtype=torch.float32)
        # advantages: GAE with gamma = lambda = 1 (an episode's return is its final reward)
        with torch.no_grad():
            advantages, gae, next_value = torch.zeros_like(rewards), torch.zeros(n), agent.get_value(next_obs)
            for t in reversed(range(steps)):
                not_done = 1.0 - (next_done if t == steps - 1 else dones[t + 1])
                delta = rewards[t] + not_done * next_value - values[t]
                advantages[t] = gae = delta + not_done * gae
                next_value = values[t]
            returns = advantages + values
        # loss and update: only actions that counted (is_turn) carry a policy gradient
        batch = (obs_b, mask_b, actions, logprobs, advantages, returns, turns)
        b_obs, b_mask, b_actions, b_logprobs, b_adv, b_returns, b_turns = (x.flatten(0, 1) for x in batch)
        for _ in range(args.update_epochs):
            for idx in torch.randperm(steps * n).chunk(args.num_minibatches):
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[idx], b_mask[idx],
                                                                              b_actions[idx].long())
                ratio, adv, w = (newlogprob - b_logprobs[idx]).exp(), b_adv[idx], b_turns[idx]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                pg = torch.max(-adv * ratio, -adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef))
                pg_loss = (pg * w).sum() / w.sum().clamp(min=1)
                v_loss = 0.5 * ((newvalue - b_returns[idx]) ** 2).mean()
                loss = pg_loss - args.ent_coef * (entropy * w).sum() / w.sum().clamp(min=1) + args.vf_coef * v_loss
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
                optimizer.step()
        # log
        if update % 20 == 0 or args.quick:
            print(f"update {update:4d}: {update * steps * n:7d} agent steps, greedy accuracy "
                  f"{greedy_accuracy(agent):.3f}, {time.perf_counter() - start:5.1f} s")
    print(f"final greedy accuracy {greedy_accuracy(agent):.3f} (chance {1 / GAME['n_candidates']:.3f})")


if __name__ == "__main__":
    main()
