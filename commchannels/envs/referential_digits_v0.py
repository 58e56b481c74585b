"""
# Referential game over digit images

| Import             | `from commchannels.envs import referential_digits_v0`             |
|--------------------|-------------------------------------------------------------------|
| Actions            | Discrete (sender), Discrete or MultiDiscrete (receiver)           |
| Parallel API       | Yes                                                               |
| Agents             | `agents = ['sender', 'receiver']`                                 |
| Observation shape  | Dict; objects are `(1, 8, 8)` images                              |
| Batched core       | `commchannels.envs.referential.BatchedReferentialEnv`            |

The referential game of `referential_v0` (see its page for the rules, observations, actions,
rewards, `flatten=True` and the global `state()`) played over scikit-learn's 8x8 handwritten
digits (`commchannels.envs.referential.DigitsGame`): distractors are digits of other classes,
the meaning of an object is its class, and `split="test"` holds unseen images.

### Arguments
```python
referential_digits_v0.env(n_candidates=5, vocab_size=16, max_len=4, mode="discrimination",
                          sender_sees_candidates=False, length_cost=0.0, split="train",
                          render_mode=None, fast=True, flatten=False)
```
`n_candidates <= 10`. `render_mode`: `"ansi"` (text) or `"rgb_array"` (the candidate images).

### Version history
- v0: initial release (before 0.2, `referential_v0.env(objects="digits")`, which still works,
  but reports `metadata["name"] == "referential_v0"`).
"""

from __future__ import annotations

from commchannels.envs.referential.constructors import constructors_for
from commchannels.envs.referential.games import DigitsGame

env, parallel_env, raw_env = constructors_for(DigitsGame, "referential_digits_v0")
