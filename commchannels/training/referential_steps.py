"""Losses, baselines and evaluation of the referential training loop (``referential.py``).

Kept apart from the loop so that it reads top to bottom; every function works on whole batches
of games (no per-game Python loops).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from commchannels.agents.channels import stopping_weights
from commchannels.agents.receivers import Receiver, output_at, sample_guess
from commchannels.agents.senders import Sender
from commchannels.envs.referential.game import GameBatch, ReferentialGame
from commchannels.metrics import (
    bag_of_symbols_disentanglement,
    message_entropy,
    positional_disentanglement,
    topographic_similarity,
)

RECEIVER_UPDATES = ("reinforce", "loss")
DISTRACTORS = ("game", "batch")
TOPSIM_SAMPLES = 1000  # pairs grow quadratically; 1000 messages give a stable estimate


class RunningMean:
    """Exponential running mean of a reward, the REINFORCE baseline (starts at the first value)."""

    def __init__(self, decay: float) -> None:
        self.decay, self.value = float(decay), None

    def update(self, x: torch.Tensor) -> float:
        """Fold in the batch mean of ``x``; returns the baseline to use for this batch (before it)."""
        mean = float(x.mean())
        baseline = mean if self.value is None else self.value
        self.value = baseline + (1.0 - self.decay) * (mean - baseline)
        return baseline


def differentiable_loss(
    game: ReferentialGame,
    sender: Sender,
    receiver: Receiver,
    batch: GameBatch,
    method: str,
    entropy_coef: float = 0.0,
    distractors: str = "game",
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of the Gumbel-Softmax, straight-through and continuous channels.

    Discrete relaxations: ``sum_t w_t * loss_t`` with ``w = stopping_weights(P(EOS))`` and
    ``loss_t`` the receiver's loss after ``t + 1`` symbols, plus ``length_cost`` times the
    expected length (EGG, ``SenderReceiverRnnGS``), minus ``entropy_coef`` times the sender's
    mean per-position entropy (against early collapse onto a few symbols). Continuous: the loss
    after all positions. ``distractors="batch"`` (discrimination only) scores each message
    against every candidate of the batch instead of its game's (:func:`batch_distractor_losses`).
    """
    message = sender(batch.sender_objects)
    if distractors == "batch" and game.mode == "discrimination":
        step_losses = batch_distractor_losses(game, receiver, batch, message.symbols)
    else:
        outputs = receiver(message.symbols, batch.candidates)  # (B, L, O)
        step_losses = torch.stack([game.receiver_loss(batch, outputs[:, t])
                                   for t in range(outputs.shape[1])], dim=1)
    length = step_losses.shape[1]
    if method == "continuous":
        loss = step_losses[:, -1].mean()
        return loss, {"loss": float(loss.detach())}
    weights = stopping_weights(message.symbols[..., 0])
    expected_length = (weights * torch.arange(1, length + 1, dtype=weights.dtype)).sum(dim=1)
    entropy = message.entropies.mean()
    loss = ((weights * step_losses).sum(dim=1) + game.length_cost * expected_length).mean()
    loss = loss - entropy_coef * entropy
    return loss, {"loss": float(loss.detach()), "expected_length": float(expected_length.detach().mean()),
                  "sender_entropy": float(entropy.detach())}


def batch_distractor_losses(
    game: ReferentialGame, receiver: Receiver, batch: GameBatch, symbols: torch.Tensor
) -> torch.Tensor:
    """``(B, L)`` cross-entropies of picking each target among all ``B * C`` candidates of the batch.

    Far more distractors per message than the game's ``C``, so two objects sharing a message
    are penalised almost every update instead of in the rare games that show both (Chaabouni et
    al. 2022 also draw distractors from the batch). Copies of the target's class elsewhere in the
    batch are masked out. Only training uses this; evaluation plays the game.
    """
    b, c = batch.candidate_ids.shape
    logits = receiver.score_shared(symbols, batch.candidates.reshape(b * c, *game.object_shape))
    classes = game.pool("train").classes[batch.candidate_ids].reshape(-1)  # (B * C,)
    target = torch.arange(b) * c + batch.target_position
    same_class = classes[None, :] == classes[target][:, None]
    same_class[torch.arange(b), target] = False
    logits = logits.masked_fill(same_class[:, None, :], float("-inf"))
    return F.cross_entropy(logits.transpose(1, 2), target[:, None].expand(b, logits.shape[1]),
                           reduction="none")


def reinforce_loss(
    game: ReferentialGame,
    sender: Sender,
    receiver: Receiver,
    batch: GameBatch,
    cfg: Any,
    baselines: dict[str, RunningMean],
) -> tuple[torch.Tensor, dict[str, float]]:
    """Surrogate loss of REINFORCE for both agents (``cfg``: a referential ``Config``).

    Sender: ``-(R_s - b_s) * sum_{t < len} log pi(token_t) - beta_s * mean_{t < len} H_t`` with
    ``R_s`` the game's sender reward (length cost included). Receiver: REINFORCE on its sampled
    guess, or its cross-entropy when ``cfg.receiver_update == "loss"`` (then
    ``R_s = -cross-entropy - length_cost * length``, a denser signal, as in EGG; with
    ``cfg.distractors == "batch"`` that cross-entropy is over the whole batch's candidates).
    """
    message = sender(batch.sender_objects)
    lengths = game.message_lengths(message.tokens)
    outputs = output_at(receiver(message.tokens, batch.candidates), lengths)
    mask = (torch.arange(message.tokens.shape[1])[None, :] < lengths[:, None]).float()
    sender_log_prob = (message.log_probs * mask).sum(dim=1)
    sender_entropy = (message.entropies * mask).sum(dim=1) / lengths
    sizes = None if game.mode == "discrimination" else game.attribute_sizes
    if cfg.receiver_update == "reinforce":
        guess, receiver_log_prob, receiver_entropy = sample_guess(outputs, sizes)
        rewards = game.rewards(batch, message.tokens, guess)
        advantage = rewards["receiver"] - baselines["receiver"].update(rewards["receiver"])
        receiver_loss = (-(advantage * receiver_log_prob).mean()
                         - cfg.receiver_entropy * receiver_entropy.mean())
        sender_reward, correct = rewards["sender"], rewards["correct"]
    else:
        if cfg.distractors == "batch" and game.mode == "discrimination":
            losses = batch_distractor_losses(game, receiver, batch, message.tokens)
            cross_entropy = losses.gather(1, (lengths - 1)[:, None]).squeeze(1)
        else:
            cross_entropy = game.receiver_loss(batch, outputs)
        receiver_loss = cross_entropy.mean()
        sender_reward = -cross_entropy.detach() - game.length_cost * lengths.float()
        correct = game.score(batch, game.guess_from_output(outputs.detach()))
    advantage = sender_reward - baselines["sender"].update(sender_reward)
    sender_loss = -(advantage * sender_log_prob).mean() - cfg.sender_entropy * sender_entropy.mean()
    loss = sender_loss + receiver_loss
    return loss, {"loss": float(loss.detach()), "batch_acc": float(correct.mean()),
                  "sender_entropy": float(sender_entropy.detach().mean())}


@torch.no_grad()
def evaluate(
    game: ReferentialGame,
    sender: Sender,
    receiver: Receiver,
    method: str,
    generator: torch.Generator,
    split: str,
    n_games: int,
) -> dict[str, Any]:
    """Play ``n_games`` fresh games of ``split`` greedily, scored by ``game.rewards``.

    Discrete channels send argmax tokens and the receiver answers after the message's length;
    the continuous channel's receiver reads its vectors (its ``tokens`` are only a view).

    Returns:
        ``acc``, ``mean_length`` and, for metrics, ``meanings`` / ``messages`` tensors.
    """
    was_training = sender.training, receiver.training
    sender.eval()
    receiver.eval()
    batch = game.sample(n_games, generator, split)
    message = sender(batch.sender_objects, greedy=True)
    lengths = game.message_lengths(message.tokens)
    if method == "continuous":
        outputs = receiver(message.symbols, batch.candidates)[:, -1]
    else:
        outputs = output_at(receiver(message.tokens, batch.candidates), lengths)
    rewards = game.rewards(batch, message.tokens, game.guess_from_output(outputs))
    sender.train(was_training[0])
    receiver.train(was_training[1])
    return {"acc": float(rewards["correct"].mean()), "mean_length": float(lengths.float().mean()),
            "meanings": batch.target_attributes, "messages": game.mask_after_eos(message.tokens)}


def language_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """Topographic similarity (on at most 1000 games), posdis, bosdis and message entropy."""
    meanings, messages = evaluation["meanings"].numpy(), evaluation["messages"].numpy()
    return {
        "topsim": topographic_similarity(meanings[:TOPSIM_SAMPLES], messages[:TOPSIM_SAMPLES]),
        "posdis": positional_disentanglement(meanings, messages),
        "bosdis": bag_of_symbols_disentanglement(meanings, messages),
        "entropy": message_entropy(messages),
    }


@torch.no_grad()
def pool_language(
    game: ReferentialGame, sender: Sender, split: str, generator: torch.Generator, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy messages for every object of ``split``: ``(meanings (N, n_attr), messages (N, L))``.

    When the sender also sees distractors they are drawn at random (from ``generator``).
    """
    pool = game.pool(split)
    objects = pool.features[:, None]
    if game.sender_views > 1:
        distractors = game.sample(len(objects), generator, split).sender_objects[:, 1:]
        objects = torch.cat([objects, distractors], dim=1)
    was_training = sender.training
    sender.eval()
    messages = torch.cat([sender(part, greedy=True).tokens for part in objects.split(chunk)])
    sender.train(was_training)
    return pool.attributes.clone(), game.mask_after_eos(messages)
