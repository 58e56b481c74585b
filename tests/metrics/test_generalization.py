"""Accuracy on held-out attribute combinations."""

import numpy as np
import pytest
import torch

from commchannels.metrics import heldout_accuracy, unseen_mask


def test_unseen_mask_marks_combinations_absent_from_training():
    meanings = torch.tensor([[0, 1], [1, 1], [2, 0], [1, 1]])
    assert unseen_mask(meanings, [[0, 1], [2, 0]]).tolist() == [False, True, False, True]


def test_reconstruction_rows_need_every_attribute_right():
    targets = np.array([[0, 1], [1, 1], [2, 0], [2, 2]])
    guesses = np.array([[0, 1], [1, 0], [2, 0], [0, 0]])
    assert heldout_accuracy(guesses, targets) == 0.5
    mask = unseen_mask(targets, seen_meanings=[[0, 1], [1, 1]])
    assert heldout_accuracy(guesses, targets, mask=mask) == 0.5  # rows 2 and 3


def test_discrimination_indices_and_torch_inputs():
    guesses, targets = torch.tensor([0, 2, 1, 1]), torch.tensor([0, 2, 0, 1])
    assert heldout_accuracy(guesses, targets) == 0.75
    assert heldout_accuracy(guesses, targets, mask=torch.tensor([0, 0, 1, 1]).bool()) == 0.5


def test_bad_shapes_and_empty_masks_raise():
    with pytest.raises(ValueError, match="expected equal shapes"):
        heldout_accuracy([[0, 1]], [[0, 1, 2]])
    with pytest.raises(ValueError, match="one per row"):
        heldout_accuracy([0, 1], [0, 1], mask=[True])
    with pytest.raises(ValueError, match="selects no row"):
        heldout_accuracy([0, 1], [0, 1], mask=[False, False])
    with pytest.raises(ValueError, match="same number"):
        unseen_mask([[0, 1]], [[0]])
