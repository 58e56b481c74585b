"""One game at a time, for the PettingZoo views: a numpy fast path and the batched core at B=1.

Both draw their games from one :class:`GameSource` (``game.sample`` in chunks, so one tensor
call serves many games) and give identical trajectories (``tests/envs/test_referential_single.py``):

- :class:`FastGame` (the default) keeps the current game's turn bookkeeping in numpy and
  Python scalars, which is about 4x cheaper per agent step than tensor operations on B=1; it
  scores discrimination without a length cost itself (1 for the target, else 0) and every
  other case with the game's own ``game.rewards``; range errors come from the game's checkers.
- :class:`CoreGame` plays each game in a :class:`BatchedReferentialEnv` with ``batch_size=1``:
  the reference the fast path is tested against.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from commchannels.config import check_memory
from commchannels.envs.referential.core import BatchedReferentialEnv, game_bytes
from commchannels.envs.referential.game import EOS, GameBatch, ReferentialGame
from commchannels.seeding import torch_generator

MAX_CHUNK = 128  # games drawn per game.sample call
CHUNK_BYTES = 2**22  # fewer games per chunk when one game is large


def row(batch: GameBatch, index: int) -> GameBatch:
    """Game ``index`` of ``batch`` as a batch of one (views, not copies)."""
    return GameBatch(*(getattr(batch, name)[index:index + 1] for name in batch.__dataclass_fields__))


class GameSource:
    """Games drawn ``chunk_size`` at a time from the env's own generator.

    Args:
        game: the game.
        split: ``"train"`` or ``"test"``.
        chunk_size: games per draw (default: up to 64, fewer for large games).
    """

    def __init__(self, game: ReferentialGame, split: str, chunk_size: int | None = None) -> None:
        pool = game.pool(split)  # build and validate now, not on first reset
        per_game = game_bytes(game, pool.n_classes)
        self.chunk_size = chunk_size or max(1, min(MAX_CHUNK, CHUNK_BYTES // per_game))
        check_memory(f"a chunk of {self.chunk_size} {game.name!r} games", self.chunk_size * per_game)
        self.game, self.split = game, split
        self.generator = torch_generator(None)
        self.chunk: GameBatch | None = None
        self.arrays: dict[str, np.ndarray] = {}
        self.index = 0

    def reseed(self, seed: int) -> None:
        """Restart the stream of games from ``seed`` (the chunk drawn so far is dropped)."""
        self.generator.manual_seed(int(seed))
        self.chunk = None

    def next(self) -> int:
        """Advance to the next game; returns its row in ``self.chunk`` / ``self.arrays``."""
        if self.chunk is None or self.index + 1 >= self.chunk_size:
            threads = torch.get_num_threads()
            # a chunk is too small to gain from intra-op threads, and on a busy machine their
            # barrier costs milliseconds (15 ms instead of 0.5 ms for 64 games on 2 loaded cores)
            torch.set_num_threads(1)
            try:
                self.chunk = self.game.sample(self.chunk_size, self.generator, self.split)
            finally:
                torch.set_num_threads(threads)
            # numpy views of the chunk's tensors, converted once per chunk
            self.arrays = {name: getattr(self.chunk, name).numpy() for name in self.chunk.__dataclass_fields__}
            self.index = 0
        else:
            self.index += 1
        return self.index


class FastGame:
    """The current game in numpy (see the module docstring).

    Attributes:
        tokens: the message sent so far (Python ints).
        speaking: whether the sender must act.
        last_rewards: ``sender`` / ``receiver`` / ``correct`` after the receiver acted, else None.
    """

    def __init__(self, game: ReferentialGame, split: str = "train", chunk_size: int | None = None) -> None:
        self.game, self.split = game, split
        self.source = GameSource(game, split, chunk_size)
        self._simple_score = game.mode == "discrimination" and game.length_cost == 0.0
        self._message = np.zeros(game.max_len, np.int64)
        self.tokens: list[int] = []
        self.speaking = False
        self.last_rewards: dict[str, float] | None = None
        self._index = -1

    @property
    def started(self) -> bool:
        return self._index >= 0

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.source.reseed(seed)
        self._index = self.source.next()
        self._message = np.zeros(self.game.max_len, np.int64)  # never mutate what observe() returned
        self.tokens = []
        self.speaking = True
        self.last_rewards = None

    def batch(self) -> GameBatch:
        """The current game as a batch of one."""
        return row(self.source.chunk, self._index)

    @property
    def any_speaking(self) -> bool:
        return self.speaking

    def send(self, token: int) -> None:
        if not 0 <= token < self.game.vocab_size:
            self.game.check_messages(torch.tensor([[token]]))  # raises the game's own message
        if not self.speaking:
            raise ValueError("the sender acted after every message was complete; the receiver must act now")
        self._message[len(self.tokens)] = token + 1
        self.tokens.append(token)
        self.speaking = token != EOS and len(self.tokens) < self.game.max_len

    def guess(self, action: Any) -> dict[str, float]:
        """Score the receiver's action (an int, or an int64 array in reconstruction)."""
        if self.speaking:
            raise ValueError("the receiver acted while 1 message(s) were still being sent; the sender must "
                             "finish first")
        game, arrays, i = self.game, self.source.arrays, self._index
        if self._simple_score and type(action) is int:
            if not 0 <= action < game.n_candidates:
                game.check_guesses(torch.tensor([action]))
            correct = 1.0 if action == arrays["target_position"][i] else 0.0
            self.last_rewards = {"sender": correct, "receiver": correct, "correct": correct}
            return self.last_rewards
        guesses = torch.as_tensor(np.asarray(action, dtype=np.int64)).reshape(
            (1,) if game.mode == "discrimination" else (1, game.n_attributes))
        game.check_guesses(guesses)
        messages = torch.from_numpy(self.message_array())[None]
        result = game.rewards(self.batch(), messages, guesses, torch.tensor([len(self.tokens)]))
        self.last_rewards = {key: float(value[0]) for key, value in result.items()}
        return self.last_rewards

    def message_array(self) -> np.ndarray:
        """``(max_len,)`` tokens sent so far, EOS-padded."""
        return np.maximum(self._message - 1, 0)

    def observe(self, agent: str) -> dict[str, np.ndarray]:
        arrays, i = self.source.arrays, self._index
        if agent == "sender":
            return {"objects": arrays["sender_objects"][i].copy(), "message": self._message.copy()}
        if self.game.mode == "discrimination":
            return {"message": self._message.copy(), "candidates": arrays["candidates"][i].copy()}
        return {"message": self._message.copy()}


class CoreGame:
    """The current game played by a :class:`BatchedReferentialEnv` with ``batch_size=1``
    (same interface as :class:`FastGame`)."""

    def __init__(self, game: ReferentialGame, split: str = "train", chunk_size: int | None = None) -> None:
        self.game, self.split = game, split
        self.source = GameSource(game, split, chunk_size)
        self.core = BatchedReferentialEnv(game, batch_size=1, split=split)
        self.last_rewards: dict[str, float] | None = None

    @property
    def started(self) -> bool:
        return self.core.batch is not None

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.source.reseed(seed)
        index = self.source.next()  # may draw a new chunk
        self.core.start(row(self.source.chunk, index))
        self.last_rewards = None

    def batch(self) -> GameBatch:
        return self.core.batch

    @property
    def tokens(self) -> list[int]:
        return self.core.messages[0, : int(self.core.lengths[0])].tolist()

    @property
    def speaking(self) -> bool:
        return bool(self.core.speaking[0])

    @property
    def any_speaking(self) -> bool:
        return self.core.any_speaking

    def send(self, token: int) -> None:
        self.core.send(torch.tensor([token]))

    def guess(self, action: Any) -> dict[str, float]:
        result = self.core.guess(torch.as_tensor(np.asarray(action, dtype=np.int64))[None])
        self.last_rewards = {key: float(value[0]) for key, value in result.items()}
        return self.last_rewards

    def message_array(self) -> np.ndarray:
        return self.core.messages[0].numpy().copy()

    def observe(self, agent: str) -> dict[str, np.ndarray]:
        # tensors are float32 / int64 already, so numpy() is a view and copy() detaches it
        return {key: value[0].numpy().copy() for key, value in self.core.observation(agent).items()}


OneGame = FastGame | CoreGame


def one_game(game: ReferentialGame, split: str, fast: bool = True, chunk_size: int | None = None) -> OneGame:
    """The fast path (default) or the batched core at B=1."""
    return (FastGame if fast else CoreGame)(game, split, chunk_size)
