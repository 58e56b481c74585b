"""
# Referential game, hard tier: the language must compose

| Import             | `from commchannels.envs import referential_hard_v0`               |
|--------------------|-------------------------------------------------------------------|
| Actions            | Discrete (sender), MultiDiscrete `[10] * 6` (receiver)            |
| Parallel API       | Yes                                                               |
| Agents             | `agents = ['sender', 'receiver']`                                 |
| Observation shape  | Dict; objects are 60 attribute-value one-hots                     |
| Batched core       | `commchannels.envs.referential.BatchedReferentialEnv`            |

The referential game of `referential_v0` (see its page for the rules, observations, actions,
rewards, `flatten=True` and the global `state()`) with defaults chosen so that only a
compositional language does well (Chaabouni et al. 2020; Kottur et al. 2017):

- 6 attributes x 10 values: a million objects, 10% of the combinations held out (`split="test"`);
- reconstruction: the receiver outputs every attribute of the target, so a message must carry
  all of it, not only what tells the target from a few distractors;
- a vocabulary of 12 symbols (11 besides EOS, barely more than the 10 values) and messages of 6
  symbols, one position per attribute: 11^6 messages for 10^6 objects leave no room for a
  wasteful holistic code, and held-out combinations can only be named by composing the names of
  values seen in training.

The reward is the fraction of attributes reconstructed. `benchmarks/compositionality.py`
compares population training, receiver resets, iterated learning and a memoryless sender on it,
and agents built so that a positional language is the easy one to learn (`sender_attention`,
`receiver_additive` in `commchannels train referential`): only those reach 0.9 held out.

### Arguments
```python
referential_hard_v0.env(n_attributes=6, n_values=10, holdout_fraction=0.1, split_seed=0,
                        n_candidates=5, vocab_size=12, max_len=6, mode="reconstruction",
                        sender_sees_candidates=False, length_cost=0.0, split="train",
                        render_mode=None, fast=True, flatten=False)
```

### Version history
- v0: initial release.
"""

from __future__ import annotations

from commchannels.envs.referential.constructors import constructors_for
from commchannels.envs.referential.games import AttributeValueGame


class HardAttributeValueGame(AttributeValueGame):
    """:class:`AttributeValueGame` with the hard tier's defaults (see the module docstring).

    Args:
        n_attributes: attributes per object.
        n_values: values per attribute.
        holdout_fraction: share of combinations held out for the test split.
        vocab_size: message symbols, 0 = EOS.
        max_len: maximum message length.
        mode: ``"reconstruction"`` (output every attribute) or ``"discrimination"``.
        **rules: see :class:`AttributeValueGame`.
    """

    def __init__(self, *, n_attributes: int = 6, n_values: int = 10, holdout_fraction: float = 0.1,
                 vocab_size: int = 12, max_len: int = 6, mode: str = "reconstruction", **rules) -> None:
        super().__init__(n_attributes=n_attributes, n_values=n_values, holdout_fraction=holdout_fraction,
                         vocab_size=vocab_size, max_len=max_len, mode=mode, **rules)


env, parallel_env, raw_env = constructors_for(HardAttributeValueGame, "referential_hard_v0")
