"""Referential (Lewis signalling) games: base class, built-in games, batched core, views."""

from commchannels.envs.referential.core import BatchedReferentialEnv
from commchannels.envs.referential.game import EOS, GameBatch, ObjectPool, ReferentialGame
from commchannels.envs.referential.games import GAMES, AttributeValueGame, DigitsGame

__all__ = ["EOS", "GAMES", "AttributeValueGame", "BatchedReferentialEnv", "DigitsGame", "GameBatch",
           "ObjectPool", "ReferentialGame"]
