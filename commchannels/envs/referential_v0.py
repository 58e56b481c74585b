"""
# Referential game

| Import             | `from commchannels.envs import referential_v0`                    |
|--------------------|-------------------------------------------------------------------|
| Actions            | Discrete (sender), Discrete or MultiDiscrete (receiver)           |
| Parallel API       | Yes                                                               |
| Manual control     | No                                                                |
| Agents             | `agents = ['sender', 'receiver']`                                 |
| Number of agents   | 2                                                                 |
| Action shape       | sender `()`, receiver `()` or `(n_attributes,)`                   |
| Observation shape  | Dict (see below); Box with `flatten=True`                         |
| State shape        | `(D,)` float32: both agents' flattened observations               |
| Batched core       | `commchannels.envs.referential.BatchedReferentialEnv`            |
| Vector envs        | `gymnasium.make_vec("commchannels/Referential-<role>-v0", num_envs=B)` |
| TorchRL            | `commchannels.integrations.torchrl.make_env("referential_v0", batch_size=B)` |

A Lewis signalling game (Lazaridou et al. 2017; Chaabouni et al. 2020). The *sender* sees a
target object and sends a message of up to `max_len` tokens from a vocabulary of `vocab_size`,
one token per turn; token 0 ends the message early. The *receiver* then reads the message and
either picks the target among `n_candidates` shuffled objects (`mode="discrimination"`) or
outputs the target's attribute values (`mode="reconstruction"`).

Objects (`objects=`):
- `"attributes"`: `n_attributes` x `n_values` attribute-value vectors (concatenated one-hots).
  A random `holdout_fraction` of the combinations is kept out of training: build the env with
  `split="test"` to play on them (compositional generalisation).
- `"digits"`: scikit-learn's 8x8 digit images `(1, 8, 8)`; distractors are other digits;
  `split="test"` holds unseen images (registered on its own as `referential_digits_v0`).

The AEC and Parallel envs play one game at a time, drawn by the batched core's sampler in
chunks of up to 128 (`game.sample`), with the turn bookkeeping in numpy (`fast=True`, the
default) or in the batched core at B=1 (`fast=False`): both give identical trajectories. The
core plays thousands of games per step as tensor operations; it is behind the Gymnasium vector
envs of each role (`gymnasium.make_vec`, B games per call, partner policy batched), the TorchRL
env, and the trainers (which also use the game's functional API `game.sample`, `game.rewards`,
`game.receiver_loss` for the differentiable path).

### Observations
Dicts. `message` is a `MultiDiscrete([vocab_size + 1] * max_len)`: the tokens sent so far,
each shifted by one (token `t` appears as `t + 1`), 0 where nothing was sent.
- sender: `objects` `Box(S, *object_shape)` with S = 1 (the target), or `n_candidates`
  (target first) when `sender_sees_candidates=True`; `message` (its own message so far).
- receiver: `message`; in discrimination also `candidates` `Box(n_candidates, *object_shape)`.

### Actions
- sender: `Discrete(vocab_size)`, one token per turn (0 = end of message).
- receiver: `Discrete(n_candidates)` (discrimination) or `MultiDiscrete([n_values] * n_attributes)`
  (reconstruction).
Actions are integers (an int, a numpy integer or integer array, a list or tuple of ints);
floats (even `2.0`), bools, NaN, strings and out-of-range values raise `ValueError`. In the
Parallel view both agents act every step but only the acting agent's action counts (and is
checked); `infos[agent]["is_turn"]` says whether the agent's next action counts.

### Flat spaces (`flatten=True`)
`env(flatten=True)` and `parallel_env(flatten=True)` give every agent one `Box((D + 2,),
float32)` observation (its own flattened, zero-padded to the longer agent's length D, then a
one-hot agent indicator, sender first) and one `Discrete(A)` action space, A the larger action
count (a reconstruction receiver's actions are numbered in mixed radix); an action beyond an
agent's own count acts as action 0, and `infos[agent]["action_mask"]` marks the agent's own
actions. SuperSuit's wrappers and parameter-sharing PPO then apply
(`examples/cleanrl_ppo_referential.py`).

### Rewards
Both agents get 1 when the receiver picks the target, else 0 (reconstruction: the fraction of
attributes right). The sender additionally pays `length_cost` per token sent (EOS included).
AEC view: `infos[agent]["correct"]` and `["message"]` (the tokens sent, a list) are set at the
end. Parallel view: every step's `infos[agent]` has the same keys and shapes (TorchRL's
`PettingZooWrapper` turns them into tensors): `is_turn`, `correct` (0.0 until the receiver has
acted) and `message` (the `(max_len,)` tokens sent so far, EOS-padded).

### State
`state()` (both views; `state_space` a `Box`) is the global state for centralised critics: the
sender's then the receiver's observation, each flattened by `gymnasium.spaces.flatten`
(one-hot message tokens), concatenated.

### Episode end
After the receiver's action (the episode lasts at most `max_len + 1` agent steps).

### Arguments
```python
referential_v0.env(objects="attributes", n_attributes=4, n_values=8, holdout_fraction=0.1,
                   split_seed=0, n_candidates=5, vocab_size=16, max_len=4,
                   mode="discrimination", sender_sees_candidates=False, length_cost=0.0,
                   split="train", render_mode=None, fast=True, flatten=False)
```
`render_mode`: `"ansi"` (text) or `"rgb_array"` (the candidates side by side, the target framed
in green; images for image objects, the one-hot grid, one row per attribute, for attribute
objects), at `metadata["render_fps"]` = 2. Integer options must be ints
(not `3.5`, `"3"` or `True`); sizes are bounded (`n_candidates <= 65536`, `vocab_size <= 2**20`,
`max_len <= 1024`, `n_values**n_attributes <= 2**22`, `split_seed` in `[0, 2**32 - 1]`) and checked
against the machine's memory before anything is allocated.

### Version history
- v0: initial release. Later within v0 (rules and spaces unchanged): `render_mode="rgb_array"`
  for every game, `state()`, `flatten=True`, the Parallel view's `infos["is_turn"]` (instead of
  the string `infos["turn"]`), games drawn in chunks (a seed gives other games than before).
"""

from __future__ import annotations

from typing import Any

from commchannels.config import check_choice
from commchannels.envs.referential.constructors import constructors_for
from commchannels.envs.referential.game import ReferentialGame
from commchannels.envs.referential.games import GAMES


def build_game(objects: str = "attributes", **game_kwargs: Any) -> ReferentialGame:
    """The game behind this environment: ``GAMES[objects](**game_kwargs)``."""
    check_choice("objects", objects, GAMES)
    return GAMES[objects](**game_kwargs)


env, parallel_env, raw_env = constructors_for(build_game, "referential_v0")
