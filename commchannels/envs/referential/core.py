"""The batched core: B referential games stepped together as tensor operations.

Turn order, message bookkeeping, observations and rewards live here once; the PettingZoo AEC
and Parallel views are this class with ``batch_size=1``. Trainers that sample whole messages
at once use the game's functional API (``game.sample`` / ``game.rewards``) directly.

Life of a batch: ``reset()`` draws B games (``start(batch)`` plays games drawn elsewhere);
``send(tokens)`` appends one token to every game still speaking (a game stops speaking after EOS
or ``max_len`` tokens); once all games have finished speaking, ``guess(actions)`` scores them and
returns the rewards. Vector envs whose games end at different times score and redraw only some
games: ``guess(actions, games=mask)`` then ``reset_games(mask)``.
"""

from __future__ import annotations

from dataclasses import fields

import torch

from commchannels.config import check_int, check_memory
from commchannels.envs import forksafe  # noqa: F401  (forked workers run torch single-threaded)
from commchannels.envs.actions import integer_tensor
from commchannels.envs.referential.game import EOS, GameBatch, ReferentialGame
from commchannels.seeding import torch_generator

_BATCH_FIELDS = [f.name for f in fields(GameBatch)]
MAX_BATCH = 2**24  # games per batch; check_memory catches smaller batches of large games


def game_bytes(game: ReferentialGame, n_classes: int) -> int:
    """Rough bytes one game of a batch needs while it is sampled and stepped: message buffers
    (int64, a few temporaries), the sender's and receiver's objects (float32), candidate ids and
    the sampling permutation (int64), rewards."""
    features = 1
    for size in game.object_shape:
        features *= int(size)
    c = game.n_candidates
    return (4 * 8 * game.max_len + 4 * features * (game.sender_views + c) + 6 * 8 * c
            + 12 * min(n_classes, 64) + 16 * game.n_attributes + 64)


class BatchedReferentialEnv:
    """B games of ``game`` stepped as tensors.

    Args:
        game: the game (objects and rules).
        batch_size: games per batch, in [1, 2**24] (and small enough to fit in memory).
        split: ``"train"`` or ``"test"`` objects.
        seed: seed of the env's own generator (``reset(seed=...)`` reseeds).
    """

    def __init__(
        self, game: ReferentialGame, batch_size: int, split: str = "train", seed: int | None = None
    ) -> None:
        batch_size = check_int("batch_size", batch_size, 1, MAX_BATCH)
        self.game, self.batch_size, self.split = game, batch_size, split
        pool = game.pool(split)  # build and validate now, not on first reset
        check_memory(f"a batch of {batch_size} {game.name!r} games", batch_size * game_bytes(game, pool.n_classes))
        self.generator = torch_generator(seed)
        self.batch: GameBatch | None = None
        # tokens sent so far, stored shifted by one (0 = nothing sent): the observation encoding
        self._message_obs = torch.zeros(self.batch_size, game.max_len, dtype=torch.long)
        self._any_speaking = False
        self._positions = torch.arange(game.max_len)[None, :]
        self.lengths = torch.zeros(self.batch_size, dtype=torch.long)
        self.speaking = torch.zeros(self.batch_size, dtype=torch.bool)
        self._make_column_views()
        self.last_rewards: dict[str, torch.Tensor] | None = None

    def _make_column_views(self) -> None:
        # column views sharing memory with lengths / speaking (updated in place), built once
        self._lengths_col, self._speaking_col = self.lengths[:, None], self.speaking[:, None]

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._make_column_views()  # unpickled views would be copies, not views

    # ----------------------------------------------------------------- stepping
    def reset(self, seed: int | None = None) -> GameBatch:
        """Draw B new games (reseeding the generator when ``seed`` is given)."""
        if seed is not None:
            self.generator.manual_seed(int(seed))
        return self.start(self.game.sample(self.batch_size, self.generator, self.split))

    def start(self, batch: GameBatch) -> GameBatch:
        """Play the B games of ``batch`` (drawn by ``game.sample``) from their first turn."""
        if batch.batch_size != self.batch_size:
            raise ValueError(f"start() got {batch.batch_size} games; expected batch_size={self.batch_size}")
        self.batch = batch
        self._message_obs = torch.zeros_like(self._message_obs)  # never mutate what observation() returned
        self.lengths.zero_()
        self.speaking.fill_(True)
        self._any_speaking = True
        self.last_rewards = None
        return self.batch

    def reset_games(self, games: torch.Tensor) -> None:
        """Draw new games in the rows where the ``(B,)`` bool mask ``games`` is True; the other
        games go on. (All rows: the same draws as ``reset()``.)"""
        self._require_reset()
        games = torch.as_tensor(games, dtype=torch.bool).reshape(self.batch_size)
        rows = games.nonzero().squeeze(1)
        if len(rows) == 0:
            return
        if len(rows) == self.batch_size:
            self.start(self.game.sample(self.batch_size, self.generator, self.split))
            return
        new = self.game.sample(len(rows), self.generator, self.split)
        old = self.batch
        # out of place: tensors handed out by observation() keep their values
        self.batch = GameBatch(*(getattr(old, f).index_put((rows,), getattr(new, f)) for f in _BATCH_FIELDS))
        self._message_obs = self._message_obs.masked_fill(games[:, None], 0)
        self.lengths.masked_fill_(games, 0)
        self.speaking |= games
        self._any_speaking = True

    def send(self, tokens: torch.Tensor) -> torch.Tensor:
        """Append one token to every game still speaking (ignored for the others).

        Returns:
            ``(B,)`` bool: which games are still speaking afterwards.
        """
        self._require_reset()
        tokens = torch.as_tensor(tokens)
        if tokens.numel() != self.batch_size:
            raise ValueError(f"send() got {tokens.numel()} tokens; expected one per game ({self.batch_size})")
        if not self._any_speaking:
            raise ValueError("the sender acted after every message was complete; the receiver must act now")
        tokens = tokens.reshape(self.batch_size, 1)  # a column: it broadcasts along positions
        self.game.check_messages(tokens)
        # masked writes, not advanced indexing: a few cheap ops whatever B is
        write = (self._positions == self._lengths_col) & self._speaking_col
        self._message_obs = torch.where(write, tokens.long() + 1, self._message_obs)
        self.lengths += self.speaking
        self._speaking_col &= tokens != EOS
        self.speaking &= self.lengths < self.game.max_len
        self._any_speaking = bool(self.speaking.any())
        return self.speaking

    @property
    def any_speaking(self) -> bool:
        """Whether some game's message is still being sent (the sender must act)."""
        return self._any_speaking

    def guess(self, actions: torch.Tensor, games: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The receivers' actions for all B games; returns ``sender``/``receiver``/``correct`` rewards.

        Args:
            actions: one valid receiver action per game.
            games: optional ``(B,)`` bool mask: score only these games (whose messages must be
                complete); the rewards of the other games are 0 and their actions are ignored
                (but must still be valid actions).
        """
        self._require_reset()
        if games is not None:
            games = torch.as_tensor(games, dtype=torch.bool).reshape(self.batch_size)
        speaking = self.speaking if games is None else self.speaking & games
        if self._any_speaking and bool(speaking.any()):
            raise ValueError(f"the receiver acted while {int(speaking.sum())} message(s) were "
                             f"still being sent; the sender must finish first")
        actions = integer_tensor("receiver actions", actions)
        if self.game.mode == "discrimination":
            actions = actions.reshape(self.batch_size)
        else:
            actions = actions.reshape(self.batch_size, self.game.n_attributes)
        self.game.check_guesses(actions)
        rewards = self.game.rewards(self.batch, self.messages, actions, self.lengths)
        if games is not None:
            rewards = {key: value.masked_fill(~games, 0.0) for key, value in rewards.items()}
        self.last_rewards = rewards
        return rewards

    def _require_reset(self) -> None:
        if self.batch is None:
            raise ValueError("the environment must be reset before it is stepped")

    # ----------------------------------------------------------------- observations
    @property
    def messages(self) -> torch.Tensor:
        """``(B, max_len)`` tokens sent so far (EOS-padded)."""
        return (self._message_obs - 1).clamp_(min=0)

    def observation(self, agent: str) -> dict[str, torch.Tensor]:
        """What ``agent`` sees in every game, as tensors shared with the core (copy them before
        changing them): the sender its objects and message so far; the receiver the message
        so far and, in discrimination, the candidates."""
        self._require_reset()
        if agent == "sender":
            return {"objects": self.batch.sender_objects, "message": self._message_obs}
        if agent == "receiver":
            if self.game.mode == "discrimination":
                return {"message": self._message_obs, "candidates": self.batch.candidates}
            return {"message": self._message_obs}
        raise ValueError(f"agent={agent!r} is not allowed; expected one of ['sender', 'receiver']")
