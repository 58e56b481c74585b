"""What the AEC and Parallel views share: spaces, per-agent observations and rendering of
a one-game :class:`BatchedReferentialEnv`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from commchannels.config import check_choice
from commchannels.envs.actions import action_array
from commchannels.envs.referential.core import BatchedReferentialEnv
from commchannels.envs.referential.game import ReferentialGame

AGENTS = ("sender", "receiver")
RENDER_MODES = ("ansi", "rgb_array")


def build_spaces(game: ReferentialGame) -> tuple[dict[str, spaces.Space], dict[str, spaces.Space]]:
    """Observation and action spaces of both roles (built once per env)."""
    low, high = game.feature_bounds
    message = spaces.MultiDiscrete([game.vocab_size + 1] * game.max_len)

    def objects(n: int) -> spaces.Box:
        return spaces.Box(low, high, (n, *game.object_shape), np.float32)

    receiver_obs: dict[str, spaces.Space] = {"message": message}
    if game.mode == "discrimination":
        receiver_obs["candidates"] = objects(game.n_candidates)
        receiver_action: spaces.Space = spaces.Discrete(game.n_candidates)
    else:
        receiver_action = spaces.MultiDiscrete(list(game.attribute_sizes))
    observation_spaces = {
        "sender": spaces.Dict({"objects": objects(game.sender_views), "message": message}),
        "receiver": spaces.Dict(receiver_obs),
    }
    action_spaces = {"sender": spaces.Discrete(game.vocab_size), "receiver": receiver_action}
    return observation_spaces, action_spaces


def render_modes(game: ReferentialGame) -> list[str]:
    """The render modes ``game`` can produce (``metadata["render_modes"]`` of its envs)."""
    return list(RENDER_MODES if game.is_image else ("ansi",))


def check_render_mode(game: ReferentialGame, render_mode: str | None) -> None:
    """Raise ``ValueError`` for a render mode the game cannot produce."""
    if render_mode is not None:
        check_choice("render_mode", render_mode, render_modes(game))


def observe(core: BatchedReferentialEnv, agent: str) -> dict[str, np.ndarray]:
    """The observation of ``agent`` in game 0 of ``core``, as numpy arrays matching the spaces."""
    obs = core.observation(agent)
    # tensors are float32 / int64 already, so numpy() is a view and copy() detaches it
    return {key: value[0].numpy().copy() for key, value in obs.items()}


def action_tensor(space: spaces.Space, agent: str, action: object) -> torch.Tensor:
    """One agent's action for game 0 as a tensor (integers of the space's shape, see
    :mod:`commchannels.envs.actions`; values are range-checked by ``core.send`` / ``core.guess``)."""
    return torch.from_numpy(action_array(agent, action, space))


def finish_game(core: BatchedReferentialEnv, value: torch.Tensor) -> tuple[Any, dict[str, float], dict[str, Any]]:
    """Apply the receiver's action to game 0: returns the guess as plain Python (for
    rendering), both agents' rewards, and the end-of-game info (``correct``, ``message``)."""
    guess = value.tolist() if value.numel() > 1 else int(value)
    result = core.guess(value)
    rewards = {agent: float(result[agent][0]) for agent in AGENTS}
    message = core.messages[0, : int(core.lengths[0])].tolist()
    return guess, rewards, {"correct": float(result["correct"][0]), "message": message}


def render_text(core: BatchedReferentialEnv, guess: object | None) -> str:
    """Game 0 as text: target, message so far, candidates (target marked) and the guess."""
    game, batch = core.game, core.batch
    if batch is None:
        return "(not reset)"
    pool = game.pool(core.split)
    ids = batch.candidate_ids[0]
    target = int(batch.target_position[0])
    describe = [game.describe_object(pool.features[i], pool.attributes[i]) for i in ids.tolist()]
    tokens = core.messages[0, : int(core.lengths[0])].tolist()
    lines = [
        f"target:     {describe[target]}",
        f"message:    {' '.join(map(str, tokens)) or '(empty)'}" + ("" if core.speaking[0] else "  [done]"),
        "candidates: " + "  ".join(f"[{i}]{'*' if i == target else ''} {d}" for i, d in enumerate(describe)),
    ]
    if guess is not None and core.last_rewards is not None:
        lines.append(f"guess:      {guess}  reward {float(core.last_rewards['receiver'][0]):.2f}")
    return "\n".join(lines)


def render_image(core: BatchedReferentialEnv, guess: object | None, scale: int = 8) -> np.ndarray:
    """Game 0's candidates side by side (``(H, W, 3)`` uint8); green frame = target,
    red frame = a wrong guess."""
    game, batch = core.game, core.batch
    if batch is None:
        return np.zeros((scale * 8, scale * 8, 3), np.uint8)
    tiles = []
    target = int(batch.target_position[0])
    for position, features in enumerate(batch.candidates[0]):
        image = game.object_image(features).float().clamp(0, 1).numpy()
        image = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image
        image = np.kron(image, np.ones((scale, scale, 1)))
        tile = np.full((image.shape[0] + 4, image.shape[1] + 4, 3), 0.5)
        if position == target:
            tile[:] = (0.0, 0.8, 0.0)
        elif guess is not None and np.ndim(guess) == 0 and int(guess) == position:
            tile[:] = (0.9, 0.0, 0.0)
        tile[2:-2, 2:-2] = image
        tiles.append(tile)
    return (np.concatenate(tiles, axis=1) * 255).astype(np.uint8)


def render(core: BatchedReferentialEnv, render_mode: str | None, guess: object | None) -> str | np.ndarray | None:
    """Render game 0 in ``render_mode`` (None renders nothing)."""
    if render_mode == "ansi":
        return render_text(core, guess)
    if render_mode == "rgb_array":
        return render_image(core, guess)
    return None
