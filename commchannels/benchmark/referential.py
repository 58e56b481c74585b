"""The referential track: policy interface, evaluation, and the built-in methods.

**Policy interface.** A :class:`ReferentialPolicy` has two batched methods:

* ``send(objects)``: ``(B, S, *object_shape)`` what the sender sees (the target first) ->
  ``(B, L)`` long tokens (symbol 0 ends a message), or ``(B, L, D)`` floats for a continuous
  channel (then no language metrics are computed);
* ``receive(message, candidates)``: the message and ``(B, C, *object_shape)`` candidates
  (``None`` in reconstruction, where the receiver sees no objects) -> ``(B,)`` candidate
  indices, or ``(B, n_attributes)`` attribute values in reconstruction.

Policies that act on the batched environment's observations, one token per call (what an RL
library trains on the Gymnasium vector envs), are wrapped by :class:`RolePolicies`, which plays
them through the same :class:`~commchannels.envs.referential.core.BatchedReferentialEnv`.

**Evaluation** (:func:`evaluate`): ``task.eval_games`` greedy games per split, drawn by a
generator seeded with :data:`~commchannels.benchmark.tasks.EVAL_SEED` (every method plays the
same games), scored by the game's own rules. ``train_acc`` and ``test_acc`` (held-out objects);
``cut_acc``: the same training games with the channel cut, each receiver reading the message
sent about the previous game's target (the same agents, so ``channel_gain = train_acc - cut_acc``
is what the channel is worth to them); ``topsim`` and ``posdis`` of the messages sent in the
training games (discrete channels).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from commchannels.benchmark.tasks import EVAL_SEED, Task
from commchannels.envs.referential.core import BatchedReferentialEnv
from commchannels.envs.referential.game import GameBatch, ReferentialGame
from commchannels.registry import game_settings_for
from commchannels.seeding import torch_generator
from commchannels.training.interaction import Interaction
from commchannels.training.referential_steps import language_metrics, receiver_answer

UPDATE_GAMES = 128  # games per update of the built-in trainers (task budgets are whole updates)


class ReferentialPolicy(Protocol):
    """A trained sender-receiver pair, batched (see the module docstring)."""

    def send(self, objects: torch.Tensor) -> torch.Tensor: ...

    def receive(self, message: torch.Tensor, candidates: torch.Tensor | None) -> torch.Tensor: ...


def make_game(task: Task) -> ReferentialGame:
    """The task's game, built by the registered game's own constructor."""
    return game_settings_for(task.env_id, ())(**task.env).make_game()


# ---------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(task: Task, policy: ReferentialPolicy) -> dict[str, Any]:
    """Score ``policy`` on the task's evaluation games (see the module docstring)."""
    game = make_game(task)
    generator = torch_generator(EVAL_SEED)
    out: dict[str, Any] = {}
    discrimination = game.mode == "discrimination"
    for split in ("train", "test"):
        batch = game.sample(task.eval_games, generator, split)
        candidates = batch.candidates if discrimination else None
        message = policy.send(batch.sender_objects)
        guesses = _guesses(game, policy.receive(message, candidates))
        out[f"{split}_acc"] = float(game.score(batch, guesses).mean())
        if split != "train":
            continue
        # the channel cut: game i's receiver reads the message about game i-1's target
        cut = _guesses(game, policy.receive(message.roll(1, dims=0), candidates))
        out["cut_acc"] = float(game.score(batch, cut).mean())
        out["channel_gain"] = out["train_acc"] - out["cut_acc"]
        out.update(_language(game, batch.target_attributes, message))
    return out


def _guesses(game: ReferentialGame, guesses: Any) -> torch.Tensor:
    guesses = torch.as_tensor(guesses)
    if guesses.is_floating_point():
        raise ValueError(f"receive() returned {guesses.dtype} guesses; expected integer candidate indices "
                         "(or attribute values in reconstruction)")
    guesses = guesses.long()
    game.check_guesses(guesses)
    return guesses


def _language(game: ReferentialGame, meanings: torch.Tensor, message: torch.Tensor) -> dict[str, float | None]:
    if message.is_floating_point():  # a continuous channel has no symbols to analyse
        return {"topsim": None, "posdis": None, "mean_length": None}
    message = message.long()
    game.check_messages(message)
    lengths = game.message_lengths(message)
    record = Interaction(message=game.mask_after_eos(message), message_length=lengths, meanings=meanings)
    metrics = language_metrics(record)
    return {"topsim": metrics["topsim"], "posdis": metrics["posdis"], "mean_length": float(lengths.float().mean())}


# ---------------------------------------------------------------------------- adapters
class RolePolicies:
    """Two role policies over the batched env's observations as a :class:`ReferentialPolicy`.

    Args:
        game: the task's game.
        sender: ``{"objects", "message"} -> (B,)`` tokens, called once per message position.
        receiver: ``{"message", "candidates"} -> (B,)`` guesses (``{"message"}`` and ``(B,
            n_attributes)`` in reconstruction), called once the messages are complete.

    Both are played through a :class:`BatchedReferentialEnv`, so they see exactly the
    observations of the Gymnasium vector envs and PettingZoo views.
    """

    def __init__(self, game: ReferentialGame, sender: Any, receiver: Any) -> None:
        self.game, self.sender, self.receiver = game, sender, receiver

    def send(self, objects: torch.Tensor) -> torch.Tensor:
        core = BatchedReferentialEnv(self.game, len(objects))
        core.start(_batch_for(objects, None, self.game))
        while core.any_speaking:
            core.send(torch.as_tensor(self.sender(core.observation("sender"))).long())
        return core.messages.clone()

    def receive(self, message: torch.Tensor, candidates: torch.Tensor | None) -> torch.Tensor:
        core = BatchedReferentialEnv(self.game, len(message))
        core.start(_batch_for(None, candidates, self.game, len(message)))
        for position in range(message.shape[1]):  # replay the tokens: the core encodes the observation
            if not core.any_speaking:
                break
            core.send(message[:, position])
        return torch.as_tensor(self.receiver(core.observation("receiver")))


def _batch_for(objects: torch.Tensor | None, candidates: torch.Tensor | None, game: ReferentialGame,
               n: int | None = None) -> GameBatch:
    """A :class:`GameBatch` holding only what one role sees (the rest zeros: never scored)."""
    n = len(objects) if objects is not None else n
    shape = game.object_shape
    return GameBatch(
        sender_objects=objects if objects is not None else torch.zeros(n, game.sender_views, *shape),
        candidates=candidates if candidates is not None else torch.zeros(n, game.n_candidates, *shape),
        target_position=torch.zeros(n, dtype=torch.long),
        target_attributes=torch.zeros(n, game.n_attributes, dtype=torch.long),
        candidate_ids=torch.zeros(n, game.n_candidates, dtype=torch.long))


class TrainedPair:
    """A sender and a receiver of :mod:`commchannels.training.referential` as a policy (greedy)."""

    def __init__(self, game: ReferentialGame, sender: torch.nn.Module, receiver: torch.nn.Module, method: str,
                 budget_used: int) -> None:
        self.game, self.sender, self.receiver, self.method = game, sender.eval(), receiver.eval(), method
        self.budget_used = budget_used

    @torch.no_grad()
    def send(self, objects: torch.Tensor) -> torch.Tensor:
        message = self.sender(objects, greedy=True)
        return message.symbols if self.method == "continuous" else message.tokens

    @torch.no_grad()
    def receive(self, message: torch.Tensor, candidates: torch.Tensor | None) -> torch.Tensor:
        return self.game.guess_from_output(receiver_answer(self.game, self.receiver, message, candidates))


# ---------------------------------------------------------------------------- built-in methods
def train_pair(task: Task, seed: int, method: str, **options: Any) -> TrainedPair:
    """The project's trainer (``commchannels train referential``) on the task's game, with its
    defaults, for ``task.budget`` games (whole updates of :data:`UPDATE_GAMES`), no run folder."""
    from commchannels.training.referential import Config, train

    steps = task.budget // UPDATE_GAMES
    if steps < 1:
        raise ValueError(f"{task.key}'s budget of {task.budget} games is less than one update of {UPDATE_GAMES} "
                         "games; expected a larger budget")
    cfg = Config(env_id=task.env_id, env=task.env, method=method, steps=steps, batch_size=UPDATE_GAMES, seed=seed,
                 eval_every=steps, metrics_every=steps, eval_games=64, threads=0, run={"progress": False},
                 **options)
    result = train(cfg)
    extras = result.extras
    # the steps actually run (options such as stop_accuracy may end training early)
    return TrainedPair(extras["game"], extras["sender"], extras["receiver"], method,
                       int(result.final["steps"]) * UPDATE_GAMES)


def gumbel(task: Task, seed: int) -> TrainedPair:
    """Gumbel-Softmax relaxation (differentiable through the channel), the trainer's defaults."""
    return train_pair(task, seed, "gumbel")


def reinforce(task: Task, seed: int) -> TrainedPair:
    """REINFORCE for the sender (mean baseline, entropy bonus), the receiver on its loss."""
    return train_pair(task, seed, "reinforce")


def continuous(task: Task, seed: int) -> TrainedPair:
    """A continuous channel of the same length: the bandwidth upper bound (no discrete symbols)."""
    return train_pair(task, seed, "continuous")


class random_policy:  # noqa: N801 - a policy class named like the other methods on the command line
    """Untrained: random tokens and random guesses (chance, the lower reference)."""

    budget_used = 0

    def __init__(self, task: Task, seed: int) -> None:
        self.game = make_game(task)
        self.generator = torch_generator(seed)

    def send(self, objects: torch.Tensor) -> torch.Tensor:
        return torch.randint(1, self.game.vocab_size, (len(objects), self.game.max_len), generator=self.generator)

    def receive(self, message: torch.Tensor, candidates: torch.Tensor | None) -> torch.Tensor:
        if self.game.mode == "discrimination":
            return torch.randint(self.game.n_candidates, (len(message),), generator=self.generator)
        columns = [torch.randint(size, (len(message),), generator=self.generator)
                   for size in self.game.attribute_sizes]
        return torch.stack(columns, dim=1)
