"""Bodies: shapes, the factory's choice, the multi-view sender body."""

import pytest
import torch

from commchannels.agents import CNNBody, MLPBody, SenderBody, make_body


def test_factory_picks_mlp_for_vectors_and_cnn_for_images():
    assert isinstance(make_body((32,), 16), MLPBody)
    assert isinstance(make_body((1, 8, 8), 16), CNNBody)
    with pytest.raises(ValueError, match="object_shape"):
        make_body((4, 4), 16)


@pytest.mark.parametrize("shape", [(12,), (1, 8, 8), (3, 7, 5)])
def test_body_keeps_leading_dimensions(shape):
    body = make_body(shape, 24)
    assert body(torch.rand(5, 3, *shape)).shape == (5, 3, 24)
    assert body(torch.rand(7, *shape)).shape == (7, 24)


@pytest.mark.parametrize("shape", [(12,), (1, 8, 8)])
def test_sender_body_uses_every_view_in_order(shape):
    torch.manual_seed(0)
    body = SenderBody(shape, n_views=3, hidden=16)
    objects = torch.rand(4, 3, *shape)
    out = body(objects)
    assert out.shape == (4, 16)
    swapped = objects[:, [0, 2, 1]]  # the target stays first, distractors swap
    assert not torch.allclose(body(swapped), out)
    with pytest.raises(ValueError, match="expected 3 objects"):
        body(objects[:, :2])
