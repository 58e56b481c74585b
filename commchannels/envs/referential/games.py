"""The two built-in object sets: attribute-value vectors and scikit-learn's 8x8 digits."""

from __future__ import annotations

from typing import Any

import torch

from commchannels.config import MAX_SEED, check_float, check_int, check_memory
from commchannels.envs.referential.game import ObjectPool, ReferentialGame

MAX_OBJECTS = 2**22  # n_values**n_attributes: every combination is enumerated
MAX_ATTRIBUTES = 22  # with n_values >= 2, more would exceed MAX_OBJECTS


class AttributeValueGame(ReferentialGame):
    """Objects are ``n_attributes`` attributes with ``n_values`` values each, seen as the
    concatenation of one-hot vectors. A random ``holdout_fraction`` of the attribute
    combinations forms the test split (compositional generalisation: every single value is
    seen in training, the held-out combinations never are).

    Args:
        n_attributes: attributes per object, >= 1 (n_values**n_attributes <= 2**22 objects).
        n_values: values per attribute, >= 2.
        holdout_fraction: share of combinations held out for the test split, in [0, 0.5].
        split_seed: seed of the held-out draw (fixed per game, not per episode), in [0, 2**32 - 1].
        **rules: see :class:`ReferentialGame`.
    """

    name = "attributes"

    def __init__(
        self,
        *,
        n_attributes: int = 4,
        n_values: int = 8,
        holdout_fraction: float = 0.1,
        split_seed: int = 0,
        **rules: Any,
    ) -> None:
        n_attributes = check_int("n_attributes", n_attributes, 1, MAX_ATTRIBUTES)
        n_values = check_int("n_values", n_values, 2, MAX_OBJECTS)
        self.holdout_fraction = check_float("holdout_fraction", holdout_fraction, 0.0, 0.5)
        self.split_seed = check_int("split_seed", split_seed, 0, MAX_SEED)
        total = n_values**n_attributes
        if total > MAX_OBJECTS:
            raise ValueError(f"n_values**n_attributes={total} objects is too many to enumerate; "
                             f"expected at most {MAX_OBJECTS}")
        # the train split's one-hot features (float32) and attributes (int64), at most all objects
        check_memory(f"the {total} objects of n_attributes={n_attributes}, n_values={n_values}",
                     total * (4 * n_attributes * n_values + 8 * n_attributes + 32))
        self.n_values = n_values
        self.object_shape = (n_attributes * n_values,)
        self.attribute_sizes = (n_values,) * n_attributes
        super().__init__(**rules)

    def _split_ids(self) -> dict[str, torch.Tensor]:
        total = self.n_values**self.n_attributes
        n_test = int(round(total * self.holdout_fraction))
        order = torch.randperm(total, generator=torch.Generator().manual_seed(self.split_seed))
        return {"train": order[n_test:].sort().values, "test": order[:n_test].sort().values}

    def make_pool(self, split: str) -> ObjectPool:
        ids = self._split_ids()[split]
        if len(ids) == 0:
            raise ValueError(f"the {split!r} split is empty; raise holdout_fraction "
                             f"(={self.holdout_fraction}) to hold out some combinations")
        # object id = its attribute values as the digits of a base-n_values number (the order
        # of itertools.product), so only this split's objects are ever materialised
        powers = self.n_values ** torch.arange(self.n_attributes - 1, -1, -1)
        attributes = torch.div(ids[:, None], powers, rounding_mode="floor") % self.n_values
        offsets = torch.arange(self.n_attributes) * self.n_values
        features = torch.zeros(len(ids), self.n_attributes * self.n_values)
        features.scatter_(1, attributes + offsets, 1.0)
        return ObjectPool(features=features, attributes=attributes, classes=ids)


class DigitsGame(ReferentialGame):
    """Objects are scikit-learn's 8x8 handwritten digits (pixels in [0, 1], shape ``(1, 8, 8)``).
    Distractors are digits of other classes; the test split holds unseen images. The meaning
    (for reconstruction and metrics) is the digit's class.

    Args:
        **rules: see :class:`ReferentialGame` (``n_candidates <= 10``).
    """

    name = "digits"
    object_shape = (1, 8, 8)
    attribute_sizes = (10,)
    is_image = True

    def make_pool(self, split: str) -> ObjectPool:
        from commchannels.data import load_digits

        data = load_digits()
        x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
        return ObjectPool(features=x.reshape(-1, 1, 8, 8), attributes=y[:, None], classes=y)

    def describe_object(self, features: torch.Tensor, attributes: torch.Tensor) -> str:
        return f"digit {int(attributes[0])}"

    def object_image(self, features: torch.Tensor) -> torch.Tensor:
        return features.reshape(8, 8)


GAMES: dict[str, type[ReferentialGame]] = {"attributes": AttributeValueGame, "digits": DigitsGame}
