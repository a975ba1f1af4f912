import glob
import os

import pytest

from keras_priors.training import build_from_recipe, load_recipe

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


RECIPES = sorted(glob.glob(os.path.join(REPO, "zoo", "*.toml")))


def test_the_zoo_ships_recipes():
    """The parametrised test below runs nothing when the glob finds nothing; this one fails instead."""
    names = {os.path.basename(p) for p in RECIPES}
    assert {"kakapo_resnet_tiny_plain.toml", "kakapo_resnet_tiny_cam.toml",
            "kakapo_resnet_tiny_background_swap.toml"} <= names


@pytest.mark.parametrize("path", RECIPES)
def test_every_zoo_recipe_builds(path):
    recipe = load_recipe(path)
    model = build_from_recipe(recipe)
    assert model.optimizer is not None
    assert [type(p).__name__ for p in model.priors] == [p["type"] for p in recipe.get("priors", [])]
