import pytest

from keras_priors.data.kakapo import make_kakapo


@pytest.fixture(scope="session")
def kakapo32():
    """64 small kakapo images as a dict of numpy arrays (32x32)."""
    return make_kakapo(64, image_size=32, seed=3)

