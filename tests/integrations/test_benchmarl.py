"""BenchMARL tasks over the native TorchRL env (issue #10). Optional: needs
``pip install -e '.[benchmarl]'`` and ``pip install --no-deps benchmarl==1.5.2``."""

import importlib.util
import re
import warnings

import pytest
import torch

INSTALL = "pip install -e '.[benchmarl]' && pip install --no-deps benchmarl==1.5.2"
for module in ("torchrl", "hydra", "benchmarl"):  # found, not imported: benchmarl 1.5 needs the shim first
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"BenchMARL is optional ({module!r} is missing): {INSTALL}", allow_module_level=True)

# commchannels' module first: it aliases the torchrl name that benchmarl 1.5 imports
import commchannels.integrations.benchmarl as benchmarl_tasks  # noqa: E402

# isort: split
from benchmarl.algorithms import IppoConfig  # noqa: E402
from benchmarl.experiment import Experiment, ExperimentConfig  # noqa: E402
from benchmarl.experiment.callback import Callback  # noqa: E402
from benchmarl.models.mlp import MlpConfig  # noqa: E402
from torchrl.envs.utils import check_env_specs  # noqa: E402

ReferentialTask = benchmarl_tasks.ReferentialTask
# holdout_fraction=0.25: 4 of the 16 objects in the test split (enough for 3 candidates)
GAME = {"n_attributes": 2, "n_values": 4, "holdout_fraction": 0.25, "n_candidates": 3, "vocab_size": 5, "max_len": 2}


class CountEvaluations(Callback):
    """Counts BenchMARL's evaluations (module level: BenchMARL pickles its callbacks)."""

    def __init__(self) -> None:
        super().__init__()
        self.evaluations = 0

    def on_evaluation_end(self, rollouts) -> None:
        self.evaluations += 1


def tiny_experiment(folder, task, iterations: int = 2, seed: int = 0, callbacks=None) -> Experiment:
    config = ExperimentConfig.get_from_yaml()
    config.prefer_continuous_actions = False
    config.on_policy_n_envs_per_worker = 16
    config.on_policy_collected_frames_per_batch = 96
    config.on_policy_minibatch_size = 48
    config.on_policy_n_minibatch_iters = 1
    config.max_n_frames, config.max_n_iters = None, iterations
    config.evaluation_interval, config.evaluation_episodes = 96, 8
    config.loggers, config.create_json, config.render = [], True, False  # JSON only: evaluation still runs
    config.save_folder, config.checkpoint_at_end = str(folder), False
    model = MlpConfig(num_cells=[16], layer_class=torch.nn.Linear, activation_class=torch.nn.Tanh)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*missing transforms required by the policy.*")
        return Experiment(task=task, algorithm_config=IppoConfig.get_from_yaml(), model_config=model,
                          critic_model_config=model, seed=seed, config=config, callbacks=callbacks)


def test_task_builds_the_env_with_benchmarl_specs(one_torch_thread):
    task = ReferentialTask.REFERENTIAL_V0.get_task(GAME)
    env = task.get_env_fun(num_envs=4, continuous_actions=False, seed=0, device="cpu")()
    assert env.batch_size == torch.Size([4]) and env.game.n_candidates == 3
    transformed = benchmarl_tasks.make_task_env(task, games=4, seed=0)
    check_env_specs(transformed, seed=0)
    assert task.group_map(env) == {"sender": ["sender"], "receiver": ["receiver"]}
    assert task.max_steps(env) == 3 and task.supports_discrete_actions() and not task.supports_continuous_actions()
    obs = task.observation_spec(transformed)
    # per game: sender 8 object features + 2 one-hot tokens of 6; receiver 12 + 3 candidates of 8
    assert obs["sender", "features"].shape == (1, 20) and obs["receiver", "features"].shape == (1, 36)
    assert set(obs["sender"].keys()) == {"features"}
    masks = task.action_mask_spec(transformed)
    assert masks["sender", "action_mask"].shape == (1, 5) and masks["receiver", "action_mask"].shape == (1, 3)
    assert task.action_spec(transformed)["receiver", "action"].shape == (1,)
    assert task.info_spec(transformed) is None and task.state_spec(transformed) is None


def test_action_masks_follow_turns_and_features_encode_the_message(one_torch_thread):
    task = ReferentialTask.REFERENTIAL_V0.get_task(GAME)
    env = benchmarl_tasks.make_task_env(task, games=2, seed=1)
    td = env.reset()
    assert td["sender", "action_mask"].all()
    assert td["receiver", "action_mask"][:, 0].tolist() == [[True, False, False]] * 2
    td["sender", "action"] = torch.tensor([[0], [3]])  # game 0 ends its message; game 1 goes on
    td["receiver", "action"] = torch.zeros(2, 1, dtype=torch.long)
    out = env.step(td)["next"]
    assert out["receiver", "action_mask"][:, 0].tolist() == [[True] * 3, [True, False, False]]
    assert out["sender", "action_mask"][0, 0].tolist() == [True, False, False, False, False]
    # the receiver's message part: position 0 holds token + 1 one-hot, position 1 nothing sent (0)
    message = out["receiver", "features"][:, 0, :12].reshape(2, 2, 6)
    assert message.argmax(-1).tolist() == [[1, 0], [4, 0]] and message.sum().item() == 4


def test_reconstruction_and_continuous_actions_are_refused():
    task = ReferentialTask.REFERENTIAL_V0.get_task({**GAME, "mode": "reconstruction"})
    with pytest.raises(ValueError, match="mode='reconstruction' is not supported"):
        task.get_env_fun(num_envs=2, continuous_actions=False, seed=0, device="cpu")
    with pytest.raises(ValueError, match="continuous_actions=True is not supported"):
        ReferentialTask.REFERENTIAL_V0.get_task(GAME).get_env_fun(2, True, 0, "cpu")


def test_tiny_experiment_runs_and_evaluates(tmp_path, one_torch_thread):
    task = ReferentialTask.REFERENTIAL_V0.get_task(GAME)
    counter = CountEvaluations()
    experiment = tiny_experiment(tmp_path, task, iterations=2, callbacks=[counter])
    experiment.run()
    assert experiment.n_iters_performed == 2 and experiment.total_frames == 192 and counter.evaluations == 2
    accuracy = benchmarl_tasks.greedy_accuracy(experiment.policy, task, games=50, seed=3)
    assert 0.0 <= accuracy <= 1.0
    assert 0.0 <= benchmarl_tasks.greedy_accuracy(experiment.policy, task, games=20, split="test") <= 1.0


def test_digits_task_builds():
    task = ReferentialTask.REFERENTIAL_DIGITS_V0.get_task({"debug": True})
    env = benchmarl_tasks.make_task_env(task, games=3, seed=0)
    assert task.observation_spec(env)["sender", "features"].shape == (1, 64 + 2 * 6)


@pytest.mark.slow
def test_mappo_learns_the_small_game_above_chance(tmp_path, run_example):
    out = run_example("benchmarl_referential.py", "--iterations", "120", "--eval-every", "40", cwd=tmp_path,
                      timeout=600)
    accuracy = float(re.search(r"final greedy accuracy ([0-9.]+)", out).group(1))
    assert accuracy > 0.5, out[-3000:]  # chance 1/3 (3 candidates); about 0.75 after 120 iterations
