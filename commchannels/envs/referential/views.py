"""What the AEC and Parallel views share: spaces, the global state, actions and rendering of
the game being played (:mod:`commchannels.envs.referential.single`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from commchannels.config import check_choice
from commchannels.envs.actions import action_array
from commchannels.envs.referential.game import ReferentialGame
from commchannels.envs.referential.single import OneGame

AGENTS = ("sender", "receiver")
RENDER_MODES = ("ansi", "rgb_array")
RENDER_FPS = 2  # frames per second of a rendered game (metadata["render_fps"])


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


def build_state_space(observation_spaces: dict[str, spaces.Space]) -> spaces.Box:
    """The global state (for centralised critics): every agent's flattened observation
    (``gymnasium.spaces.flatten``: one-hot message tokens), concatenated in agent order."""
    parts = [spaces.flatten_space(observation_spaces[agent]) for agent in AGENTS]
    low = np.concatenate([p.low for p in parts]).astype(np.float32)
    high = np.concatenate([p.high for p in parts]).astype(np.float32)
    return spaces.Box(low, high, dtype=np.float32)


def state(current: OneGame, observation_spaces: dict[str, spaces.Space]) -> np.ndarray:
    """The global state of the game being played (see :func:`build_state_space`)."""
    if not current.started:
        raise ValueError("state() was called before reset()")
    return np.concatenate([spaces.flatten(observation_spaces[agent], current.observe(agent)).astype(np.float32)
                           for agent in AGENTS])


def render_modes(game: ReferentialGame) -> list[str]:
    """The render modes of ``game``'s envs (``metadata["render_modes"]``): text and images for
    every game (objects that are not images are drawn as their feature grid)."""
    return list(RENDER_MODES)


def check_render_mode(game: ReferentialGame, render_mode: str | None) -> None:
    """Raise ``ValueError`` for a render mode the game cannot produce."""
    if render_mode is not None:
        check_choice("render_mode", render_mode, render_modes(game))


def parse_action(space: spaces.Space, agent: str, action: object) -> Any:
    """One agent's action: a Python int (``Discrete``) or an int64 array (``MultiDiscrete``),
    checked as :mod:`commchannels.envs.actions` says (values are range-checked by the game)."""
    if isinstance(space, spaces.Discrete) and isinstance(action, (int, np.integer)) \
            and not isinstance(action, (bool, np.bool_)):
        return int(action)  # the common case, without building an array
    array = action_array(agent, action, space)
    return int(array) if isinstance(space, spaces.Discrete) else array


def end_info(current: OneGame) -> dict[str, Any]:
    """The end-of-game info of the AEC view: ``correct`` and the ``message`` sent (a list)."""
    return {"correct": current.last_rewards["correct"], "message": list(current.tokens)}


def render_text(current: OneGame, guess: object | None) -> str:
    """The game as text: target, message so far, candidates (target marked) and the guess."""
    if not current.started:
        return "(not reset)"
    game, batch = current.game, current.batch()
    pool = game.pool(current.split)
    ids = batch.candidate_ids[0]
    target = int(batch.target_position[0])
    describe = [game.describe_object(pool.features[i], pool.attributes[i]) for i in ids.tolist()]
    lines = [
        f"target:     {describe[target]}",
        f"message:    {' '.join(map(str, current.tokens)) or '(empty)'}" + ("" if current.speaking else "  [done]"),
        "candidates: " + "  ".join(f"[{i}]{'*' if i == target else ''} {d}" for i, d in enumerate(describe)),
    ]
    if guess is not None and current.last_rewards is not None:
        lines.append(f"guess:      {guess}  reward {current.last_rewards['receiver']:.2f}")
    return "\n".join(lines)


def object_picture(game: ReferentialGame, features: Any) -> np.ndarray:
    """One object as an ``(H, W, 3)`` float image in [0, 1]: the game's ``object_image``, or
    else its features as a grid (attribute-value one-hots: one row per attribute)."""
    image = game.object_image(features)
    if image is None:
        flat = features.reshape(-1).float()
        low, high = game.feature_bounds
        if not (np.isfinite(low) and np.isfinite(high)):  # unbounded features: scale by what is shown
            low, high = float(flat.min()), float(flat.max())
        flat = ((flat - low) / max(high - low, 1e-12)).clamp(0, 1).numpy()
        rows = game.n_attributes if game.n_attributes and flat.size % game.n_attributes == 0 else 1
        picture = flat.reshape(rows, -1)
    else:
        picture = image.float().clamp(0, 1).numpy()
    return np.repeat(picture[..., None], 3, axis=-1) if picture.ndim == 2 else picture


def render_image(current: OneGame, guess: object | None, scale: int = 8) -> np.ndarray:
    """The candidates side by side (``(H, W, 3)`` uint8); green frame = target, red frame =
    a wrong guess."""
    if not current.started:
        return np.zeros((scale * 8, scale * 8, 3), np.uint8)
    game, batch = current.game, current.batch()
    tiles = []
    target = int(batch.target_position[0])
    for position, features in enumerate(batch.candidates[0]):
        image = np.kron(object_picture(game, features), np.ones((scale, scale, 1)))
        tile = np.full((image.shape[0] + 4, image.shape[1] + 4, 3), 0.5)
        if position == target:
            tile[:] = (0.0, 0.8, 0.0)
        elif guess is not None and np.ndim(guess) == 0 and int(guess) == position:
            tile[:] = (0.9, 0.0, 0.0)
        tile[2:-2, 2:-2] = image
        tiles.append(tile)
    return (np.concatenate(tiles, axis=1) * 255).astype(np.uint8)


def render(current: OneGame, render_mode: str | None, guess: object | None) -> str | np.ndarray | None:
    """Render the game in ``render_mode`` (None renders nothing)."""
    if render_mode == "ansi":
        return render_text(current, guess)
    if render_mode == "rgb_array":
        return render_image(current, guess)
    return None
