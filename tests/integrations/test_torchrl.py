"""The native TorchRL env over the batched referential core (issue #10). Optional: needs
``pip install -e '.[torchrl]'`` (in the dev set-up)."""

import pytest
import torch

pytest.importorskip("torchrl", reason="TorchRL is an optional extra: pip install -e '.[torchrl]'")

from torchrl.envs.utils import check_env_specs  # noqa: E402

from commchannels.integrations.torchrl import make_env  # noqa: E402

GAME = {"n_attributes": 2, "n_values": 4, "n_candidates": 3, "vocab_size": 5, "max_len": 3}


@pytest.mark.parametrize("kwargs", [GAME, {**GAME, "mode": "reconstruction"}, {"env_id": "referential_digits_v0",
                                    "debug": True}, {**GAME, "sender_sees_candidates": True, "length_cost": 0.1}],
                         ids=["attributes", "reconstruction", "digits", "length_cost"])
def test_passes_torchrls_spec_check(kwargs):
    env = make_env(batch_size=8, seed=0, **kwargs)
    check_env_specs(env, seed=0)
    td = env.rollout(12, break_when_any_done=False)
    assert td.batch_size == torch.Size([8, 12])
    assert set(env.group_map) == {"sender", "receiver"}


def test_turns_masks_rewards_and_partial_resets():
    env = make_env(batch_size=2, seed=1, **GAME)
    td = env.reset()
    assert td["sender", "mask"].all() and not td["receiver", "mask"].any()
    target = env.core.batch.target_position.clone()
    ids = env.core.batch.candidate_ids.clone()
    # game 0 sends EOS at once (its receiver guesses next turn); game 1 keeps speaking
    td["sender", "action"] = torch.tensor([[0], [2]])
    td["receiver", "action"] = torch.tensor([[1], [1]])  # ignored: no message is complete yet
    out = env.step(td)["next"]
    assert out["receiver", "mask"][:, 0].tolist() == [True, False] and not out["done"].any()
    assert out["sender", "reward"].abs().sum() == 0
    td = out.clone()
    td["sender", "action"] = torch.tensor([[3], [3]])
    td["receiver", "action"] = target[:, None]  # game 0's receiver is right
    stepped, td = env.step_and_maybe_reset(td)  # then redraws game 0 only
    out = stepped["next"]
    assert out["done"][:, 0].tolist() == [True, False]
    assert out["sender", "reward"][:, 0, 0].tolist() == [1.0, 0.0] == out["receiver", "reward"][:, 0, 0].tolist()
    assert torch.equal(env.core.batch.candidate_ids[1], ids[1])
    assert td["sender", "mask"][:, 0].tolist() == [True, True]
    assert td["sender", "observation", "message"][:, 0].tolist() == [[0, 0, 0], [3, 4, 0]]


def test_seeded_rollouts_repeat():
    def rollout():
        env = make_env(batch_size=4, **GAME)
        env.set_seed(5)
        torch.manual_seed(0)  # the random policy of rollout() draws from torch's global generator
        return env.rollout(10, break_when_any_done=False)

    first, second = rollout(), rollout()
    assert (first == second).all()
