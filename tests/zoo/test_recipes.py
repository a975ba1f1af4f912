import glob
import os

import pytest

from keras_priors.training import build_from_recipe, load_recipe

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "zoo", "*.toml"))))
def test_every_zoo_recipe_builds(path):
    recipe = load_recipe(path)
    model = build_from_recipe(recipe)
    assert model.optimizer is not None
    assert [type(p).__name__ for p in model.priors] == [p["type"] for p in recipe.get("priors", [])]
