"""Losses, baselines and evaluation of the referential training loop (``referential.py``).

Kept apart from the loop so that it reads top to bottom; every function works on whole batches
of games (no per-game Python loops).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F

from commchannels.agents.channels import stopping_weights
from commchannels.agents.receivers import Receiver, output_at, sample_guess
from commchannels.agents.senders import Sender
from commchannels.envs.referential.game import SPLITS, GameBatch, ReferentialGame
from commchannels.metrics import (
    bag_of_symbols_disentanglement,
    message_entropy,
    positional_disentanglement,
    topographic_similarity,
)
from commchannels.training.interaction import Interaction

RECEIVER_UPDATES = ("reinforce", "loss")
BASELINES = ("ema", "mean", "batch")
DISTRACTORS = ("game", "batch")
TOPSIM_SAMPLES = 1000  # pairs grow quadratically; 1000 messages give a stable estimate


class RunningMean:
    """The REINFORCE baseline of one reward.

    ``kind="ema"``: an exponential running mean (``decay``), starting at the first batch's mean.
    ``kind="mean"``: the mean over every update so far (EGG's ``MeanBaseline``); early, poor
    rewards keep it low for long, so most sampled messages are reinforced.
    ``kind="batch"``: leave-one-out: each game's baseline is the mean reward of the other games
    of its batch (no state; unbiased, and tracks a fast-changing reward at once).
    """

    def __init__(self, decay: float, kind: str = "ema") -> None:
        self.decay, self.kind, self.value, self.count = float(decay), kind, None, 0

    def update(self, x: torch.Tensor) -> torch.Tensor | float:
        """Fold in the rewards ``x`` of one batch; returns the baseline to subtract from them
        (computed before they are folded in)."""
        if self.kind == "batch":
            n = x.numel()
            return (x.sum() - x) / (n - 1) if n > 1 else torch.zeros_like(x)
        mean = float(x.mean())
        baseline = mean if self.value is None else self.value
        self.count += 1
        rate = 1.0 / self.count if self.kind == "mean" else 1.0 - self.decay
        self.value = baseline + rate * (mean - baseline)
        return baseline if self.count > 1 or self.kind == "ema" else 0.0

    def state_dict(self) -> dict[str, float | int | None]:
        return {"value": self.value, "count": self.count}

    def load_state_dict(self, state: dict[str, float | int | None]) -> None:
        self.value, self.count = state["value"], int(state["count"])


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
    expected_length = (weights * torch.arange(1, length + 1, dtype=weights.dtype, device=weights.device)).sum(dim=1)
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
    classes = game.pool("train").classes.to(batch.candidate_ids.device)[batch.candidate_ids].reshape(-1)  # (B * C,)
    target = torch.arange(b, device=batch.target_position.device) * c + batch.target_position
    same_class = classes[None, :] == classes[target][:, None]
    same_class[torch.arange(b, device=target.device), target] = False
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
    mask = (torch.arange(message.tokens.shape[1], device=lengths.device)[None, :] < lengths[:, None]).float()
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
    sender_loss = -(advantage * sender_log_prob).mean() - cfg.sender_entropy_coef * sender_entropy.mean()
    loss = sender_loss + receiver_loss
    return loss, {"loss": float(loss.detach()), "batch_acc": float(correct.mean()),
                  "sender_entropy": float(sender_entropy.detach().mean())}


def imitation_loss(game: ReferentialGame, student: Sender, objects: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``student`` sending the messages ``tokens`` for ``objects`` (up to and
    including EOS): how a new generation learns the previous one's language (iterated learning)."""
    logits = student.channel.forced_logits(student.body(objects), tokens)
    lengths = game.message_lengths(tokens)
    mask = (torch.arange(tokens.shape[1], device=tokens.device)[None] < lengths[:, None]).float()
    losses = F.cross_entropy(logits.flatten(0, 1), tokens.flatten(), reduction="none").view_as(mask)
    return (losses * mask).sum() / mask.sum()


def game_info(game: ReferentialGame) -> dict[str, Any]:
    """What describes every game of ``game`` alike: the ``info`` of its :class:`Interaction` records."""
    return {"game": game.name, "mode": game.mode, "vocab_size": game.vocab_size, "max_len": game.max_len,
            "n_candidates": game.n_candidates, "attribute_sizes": list(game.attribute_sizes), "splits": list(SPLITS)}


def on_device(batch: GameBatch, device: torch.device) -> GameBatch:
    """``batch`` with every tensor on ``device`` (itself when they already are)."""
    if batch.target_position.device == device:
        return batch
    return GameBatch(**{f.name: getattr(batch, f.name).to(device) for f in dataclasses.fields(batch)})


def agent_device(agent: torch.nn.Module) -> torch.device:
    """Where ``agent``'s parameters are (the CPU for a module without any)."""
    return next((p.device for p in agent.parameters()), torch.device("cpu"))


def receiver_answer(
    game: ReferentialGame,
    receiver: Receiver,
    message: torch.Tensor,
    candidates: torch.Tensor | None,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """The receiver's ``(B, O)`` logits for ``message``: read up to each message's length for
    tokens (``lengths``, default :meth:`~ReferentialGame.message_lengths`), or the whole sequence
    for a continuous channel's float vectors."""
    if message.is_floating_point():
        return receiver(message, candidates)[:, -1]
    lengths = game.message_lengths(message) if lengths is None else lengths
    return output_at(receiver(message, candidates), lengths)


@torch.no_grad()
def play(
    game: ReferentialGame, sender: Sender, receiver: Receiver, method: str, batch: GameBatch, split: str
) -> Interaction:
    """Play ``batch`` (games of ``split``) greedily and record it, scored by ``game.rewards``
    (on the agents' device: the record's tensors are there too).

    Discrete channels send argmax tokens and the receiver answers after the message's length;
    the continuous channel's receiver reads its vectors (its ``tokens`` are only a view).
    ``aux`` holds ``correct``, ``sender_reward``, ``guess``, ``candidate_ids``, ``object_id`` (the
    target's index in the split's pool) and ``split`` (index into ``info["splits"]``).
    """
    batch = on_device(batch, agent_device(sender))
    was_training = sender.training, receiver.training
    sender.eval()
    receiver.eval()
    try:
        message = sender(batch.sender_objects, greedy=True)
        lengths = game.message_lengths(message.tokens)
        sent = message.symbols if method == "continuous" else message.tokens
        outputs = receiver_answer(game, receiver, sent, batch.candidates, lengths)
    finally:
        sender.train(was_training[0])
        receiver.train(was_training[1])
    guesses = game.guess_from_output(outputs)
    rewards = game.rewards(batch, message.tokens, guesses, lengths)
    discrimination = game.mode == "discrimination"
    return Interaction(
        sender_input=batch.sender_objects, message=game.mask_after_eos(message.tokens), message_length=lengths,
        receiver_input=batch.candidates, receiver_output=outputs,
        labels=batch.target_position if discrimination else batch.target_attributes,
        meanings=batch.target_attributes,
        aux={"correct": rewards["correct"], "sender_reward": rewards["sender"], "guess": guesses,
             "candidate_ids": batch.candidate_ids, "object_id": batch.target_ids,
             "split": torch.full((batch.batch_size,), SPLITS.index(split), dtype=torch.long, device=lengths.device)},
        info=game_info(game))


def evaluate(
    game: ReferentialGame,
    sender: Sender,
    receiver: Receiver,
    method: str,
    generator: torch.Generator,
    split: str,
    n_games: int,
) -> tuple[Interaction, dict[str, float]]:
    """Play ``n_games`` fresh games of ``split`` greedily (:func:`play`).

    Returns:
        The :class:`Interaction` and its summary ``{"acc": ..., "mean_length": ...}``.
    """
    interaction = play(game, sender, receiver, method, game.sample(n_games, generator, split), split)
    return interaction, interaction.summary()


def games_for_every_object(
    game: ReferentialGame, split: str, targets: torch.Tensor, generator: torch.Generator
) -> GameBatch:
    """One game per object id in ``targets`` (indices into ``game.pool(split)``), each the target of
    its game, with distractors drawn as ``game.sample`` draws them (other classes, shuffled).

    A sampled game whose candidates include the target's class takes the target in that slot;
    otherwise the target replaces the sampled one. Either way the classes stay distinct.
    """
    pool = game.pool(split)
    n = len(targets)
    batch = game.sample(n, generator, split)
    ids = batch.candidate_ids.clone()
    same = pool.classes[ids] == pool.classes[targets][:, None]  # at most one column per row
    position = torch.where(same.any(dim=1), same.long().argmax(dim=1), batch.target_position)
    rows = torch.arange(n)
    ids[rows, position] = targets
    if game.sender_sees_candidates:  # the target first, then the distractors
        others = ids[torch.arange(ids.shape[1])[None, :] != position[:, None]].reshape(n, -1)
        sender_ids = torch.cat([targets[:, None], others], dim=1)
    else:
        sender_ids = targets[:, None]
    return GameBatch(sender_objects=pool.features[sender_ids], candidates=pool.features[ids],
                     target_position=position, target_attributes=pool.attributes[targets], candidate_ids=ids)


def play_pool(
    game: ReferentialGame,
    sender: Sender,
    receiver: Receiver,
    method: str,
    split: str,
    generator: torch.Generator,
    chunk: int = 4096,
    limit: int | None = None,
) -> Interaction:
    """Every object of ``split`` is the target of one greedy game (:func:`play`), in pool order;
    a pool of more than ``limit`` objects plays a sample of ``limit`` of them (drawn from
    ``generator``, still in pool order).

    The objects shown are not kept (``sender_input`` / ``receiver_input`` are ``None``: a pool may
    hold a million objects); ``aux["candidate_ids"]`` and ``aux["object_id"]`` index the pool.
    """
    n = len(game.pool(split).classes)
    ids = torch.arange(n) if limit is None or n <= limit else \
        torch.randperm(n, generator=generator)[:limit].sort().values
    parts = [play(game, sender, receiver, method, games_for_every_object(game, split, targets, generator), split)
             .replace(sender_input=None, receiver_input=None) for targets in ids.split(chunk)]
    return Interaction.concat(parts)


def language_metrics(interaction: Interaction) -> dict[str, float]:
    """Topographic similarity (on at most 1000 games), posdis, bosdis and message entropy of the
    language of ``interaction`` (its ``meanings`` and ``message``)."""
    if interaction.meanings is None:
        raise ValueError("language_metrics needs an interaction with meanings")
    meanings, messages = interaction.meanings.cpu().numpy(), interaction.message.cpu().numpy()
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

    When the sender also sees distractors they are drawn at random (from ``generator``). The
    sender runs on its device; the results are on the CPU.
    """
    pool = game.pool(split)
    device = agent_device(sender)
    objects = pool.features[:, None]
    if game.sender_views > 1:
        distractors = game.sample(len(objects), generator, split).sender_objects[:, 1:]
        objects = torch.cat([objects, distractors], dim=1)
    was_training = sender.training
    sender.eval()
    try:
        messages = torch.cat([sender(part.to(device), greedy=True).tokens.cpu() for part in objects.split(chunk)])
    finally:
        sender.train(was_training)
    return pool.attributes.clone(), game.mask_after_eos(messages)
