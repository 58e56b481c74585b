"""A new referential game in one file: colour naming (see docs/new_game.md).

Objects are RGB colours on a hue x lightness grid (the two attributes); each grid cell is a
class holding a few jittered shades, so the receiver must tell colour *cells* apart, not
pixels, and the test split holds unseen shades. One subclass, one ``constructors_for`` line and
one ``register`` call give AEC/Parallel envs, ``commchannels.make("colours_v0")``, Gymnasium
role envs and the whole generic test suite.

    python examples/colour_game.py [--quick]
"""

from __future__ import annotations

import argparse

import torch

from commchannels import EnvSpec, make, register
from commchannels.config import check_int
from commchannels.envs.referential import ObjectPool, ReferentialGame
from commchannels.envs.referential.constructors import constructors_for
from commchannels.training.referential import Config, summarize, train


class ColourGame(ReferentialGame):
    """Colours on a hue x lightness grid; features are RGB in [0, 1] (shape ``(3,)``).

    Args:
        n_hues: hue levels, >= 2.
        n_lightness: lightness levels, >= 2.
        shades: jittered shades per grid cell, >= 1.
        **rules: see :class:`ReferentialGame`.
    """

    name = "colours"
    object_shape = (3,)
    is_image = True

    def __init__(self, *, n_hues: int = 6, n_lightness: int = 3, shades: int = 4, **rules) -> None:
        self.attribute_sizes = (check_int("n_hues", n_hues, 2, 1000), check_int("n_lightness", n_lightness, 2, 1000))
        self.shades = check_int("shades", shades, 1, 1000)
        super().__init__(**rules)

    def make_pool(self, split: str) -> ObjectPool:
        gen = torch.Generator().manual_seed(0 if split == "train" else 1)  # unseen shades in test
        n_hues, n_light = self.attribute_sizes
        cells = torch.cartesian_prod(torch.arange(n_hues), torch.arange(n_light)).repeat(self.shades, 1)
        jitter = (torch.rand(len(cells), 2, generator=gen) - 0.5) * 0.5  # a quarter cell either way
        hue = (cells[:, 0] + 0.5 + jitter[:, 0]) / n_hues
        light = 0.25 + 0.5 * (cells[:, 1] + 0.5 + jitter[:, 1]) / n_light
        # HSL -> RGB with saturation 0.8 (the branch-free formula of the CSS Color 4 spec)
        a = 0.8 * torch.minimum(light, 1 - light)
        k = (torch.tensor([0.0, 8.0, 4.0]) + hue[:, None] * 12) % 12
        rgb = light[:, None] - a[:, None] * torch.clamp(torch.minimum(k - 3, 9 - k), -1, 1)
        return ObjectPool(features=rgb, attributes=cells, classes=cells[:, 0] * n_light + cells[:, 1])

    def describe_object(self, features: torch.Tensor, attributes: torch.Tensor) -> str:
        return "#" + "".join(f"{int(c * 255):02x}" for c in features) + f" h{int(attributes[0])}l{int(attributes[1])}"

    def object_image(self, features: torch.Tensor) -> torch.Tensor:
        return features.expand(4, 4, 3)  # a 4x4 patch of the colour


env, parallel_env, raw_env = constructors_for(ColourGame, "colours_v0")
register(EnvSpec(
    id="colours_v0", module=__name__, roles=("sender", "receiver"), game=f"{__name__}:ColourGame",
    debug_kwargs={"n_hues": 3, "n_lightness": 2, "shades": 2, "n_candidates": 3, "vocab_size": 5, "max_len": 2},
    bad_kwargs={"n_hues": 1, "n_lightness": 0, "shades": 0, "n_candidates": 1, "render_mode": "human"},
    description="colour naming: hue x lightness cells of RGB colours (examples/colour_game.py)",
))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budget (smoke test)")
    args = parser.parse_args()
    env = make("colours_v0", parallel=True, render_mode="ansi", n_candidates=3, vocab_size=8, max_len=2)
    for seed in range(2):  # a few rendered games: the sender always says "1 1", the receiver guesses
        env.reset(seed=seed)
        while env.agents:
            env.step({"sender": 1, "receiver": seed})
        print(env.render(), end="\n\n")
    image = make("colours_v0", render_mode="rgb_array")
    image.reset(seed=0)
    print("rgb_array render:", image.render().shape)
    # the project's trainer plays any registered game, with the game's own options; from the shell:
    # commchannels train referential --env-modules examples/colour_game.py --env-id colours_v0 --n-hues 8
    cfg = Config(env_id="colours_v0", env={"n_candidates": 3, "vocab_size": 8, "max_len": 2},
                 steps=20 if args.quick else 600, eval_every=10 if args.quick else 50,
                 eval_games=256 if args.quick else 1024)
    print(summarize(train(cfg)))


if __name__ == "__main__":
    main()
