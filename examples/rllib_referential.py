"""RLlib multi-agent PPO on the referential game: one policy per role, trained together.

The AEC env goes through RLlib's own PettingZoo wrapper (``PettingZooEnv``), which allows
different spaces per agent; ``FlattenObservations`` turns the Dict observations into vectors.
Needs the optional extra: ``pip install -e '.[rllib]'``. Runs on a local Ray instance, or on a
cluster with ``--address auto`` (after ``ray start --head`` / ``ray start --address HEAD:6379``).

    python examples/rllib_referential.py [--quick] [--iterations 40] [--address auto]
"""

from __future__ import annotations

import argparse
import time

import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.connectors.env_to_module import FlattenObservations
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.env.wrappers.pettingzoo_env import PettingZooEnv
from ray.tune.registry import register_env

# holdout_fraction=0.25 keeps 4 of the 16 objects out of training (enough for a 3-candidate test split)
GAME = {"n_attributes": 2, "n_values": 4, "holdout_fraction": 0.25, "n_candidates": 3, "vocab_size": 8,
        "max_len": 1}
ROLES = ("sender", "receiver")


def make_env(env_config: dict) -> PettingZooEnv:
    import commchannels  # imported in each Ray worker

    return PettingZooEnv(commchannels.make("referential_v0", **{**GAME, **env_config}))


def build_config(args: argparse.Namespace) -> PPOConfig:
    """Multi-agent PPO: agent ``sender`` -> policy ``sender``, ``receiver`` -> ``receiver``."""
    batch = 256 if args.quick else 2000
    return (
        PPOConfig()
        .environment("commchannels_referential")
        .env_runners(num_env_runners=args.env_runners, num_envs_per_env_runner=16,
                     env_to_module_connector=lambda env, spaces, device: FlattenObservations(multi_agent=True))
        .multi_agent(policies=set(ROLES), policy_mapping_fn=lambda agent_id, *a, **kw: agent_id)
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={r: RLModuleSpec() for r in ROLES}),
                   model_config=DefaultModelConfig(fcnet_hiddens=[128]))
        .training(lr=1e-3, gamma=1.0, entropy_coeff=0.0, use_kl_loss=False, train_batch_size_per_learner=batch,
                  minibatch_size=128, num_epochs=10)
        .evaluation(evaluation_num_env_runners=0, evaluation_duration=200,
                    evaluation_duration_unit="episodes", evaluation_config={"explore": False})
        .debugging(seed=args.seed)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small iterations (smoke test)")
    parser.add_argument("--iterations", type=int, default=40, help="PPO training iterations")
    parser.add_argument("--env-runners", type=int, default=0,
                        help="sampling workers (Ray actors); 0 samples in the driver process")
    parser.add_argument("--address", default=None, help="Ray cluster address ('auto'); local if unset")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    register_env("commchannels_referential", make_env)
    algo = build_config(args).build_algo()
    start = time.perf_counter()
    print(f"game {GAME}; chance accuracy {1 / GAME['n_candidates']:.3f}")
    for i in range(2 if args.quick else args.iterations):
        result = algo.train()
        returns = result["env_runners"].get("agent_episode_returns_mean", {})
        steps = result["env_runners"].get("num_env_steps_sampled_lifetime", 0)
        print(f"iteration {i + 1:2d}: {int(steps):6d} env steps, sampled accuracy "
              f"{returns.get('receiver', float('nan')):.3f}, {time.perf_counter() - start:5.1f} s")
    evaluation = algo.evaluate()["env_runners"]["agent_episode_returns_mean"]
    print(f"final greedy accuracy {evaluation['receiver']:.3f} (chance {1 / GAME['n_candidates']:.3f})")
    algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    main()
