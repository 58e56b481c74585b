"""Bodies: shapes, the factory's choice, the multi-view sender body."""

import pytest
import torch

from commchannels.agents import AttributeAttentionBody, CNNBody, MLPBody, SenderBody, make_body


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


def test_attribute_attention_positions_read_only_the_attributes_they_attend_to():
    torch.manual_seed(0)
    body = AttributeAttentionBody(attribute_sizes=(3, 4, 2), positions=2, hidden=8)
    objects = torch.cat([torch.eye(3)[[0, 2]], torch.eye(4)[[1, 3]], torch.eye(2)[[0, 1]]], dim=1)[:, None]
    out = body(objects)
    assert out.shape == (2, 2, 8)
    assert torch.allclose(body.attention().sum(-1), torch.ones(2))
    with torch.no_grad():  # position 0 reads attribute 1 alone, position 1 attribute 2 alone
        body.mixing.copy_(torch.tensor([[-1e4, 1e4, -1e4], [-1e4, -1e4, 1e4]]))
    changed = objects.clone()
    changed[0, 0, :3] = torch.eye(3)[1]  # another value of attribute 0: neither position sees it
    changed[1, 0, 3:7] = torch.eye(4)[0]  # another value of attribute 1: only position 0 sees it
    before, after = body(objects), body(changed)
    assert torch.equal(before[0], after[0])
    assert not torch.equal(before[1, 0], after[1, 0]) and torch.equal(before[1, 1], after[1, 1])
    with pytest.raises(ValueError, match=r"expected objects of shape \(B, 1, 9\)"):
        body(torch.rand(2, 3, 9))
    with pytest.raises(ValueError, match="attribute_sizes"):
        AttributeAttentionBody((), positions=2, hidden=8)
