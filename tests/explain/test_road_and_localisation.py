"""Pointing game (15 px option), energy-based pointing game, relevance mass accuracy and ROAD: hand-computed cases."""

import keras
import numpy as np
import pytest

from keras_priors.explain import (
    box_masks,
    energy_pointing_game,
    metric_legend,
    noisy_linear_imputation,
    pointing_game,
    relevance_mass_accuracy,
    road,
)
from keras_priors.explain.metrics import METRIC_LEGENDS, ROAD_NEIGHBOUR_WEIGHTS, removed_count


# === Localisation ===
def test_box_masks_are_half_open_and_clipped():
    m = box_masks([[1, 2, 3, 5], [-2, -2, 1, 1], [0, 0, 0, 0]], 4, 6)
    assert m.shape == (3, 4, 6)
    assert m[0].sum() == 6 and m[0, 1:3, 2:5].all()
    assert m[1].sum() == 1 and m[1, 0, 0] == 1
    assert m[2].sum() == 0
    with pytest.raises(ValueError, match=r"boxes.*\(batch, 4\)"):
        box_masks([1, 2, 3, 4], 4, 4)
    with pytest.raises(ValueError, match="y_max >= y_min"):
        box_masks([[3, 0, 1, 2]], 4, 4)


def test_pointing_game_strict_default_and_15px_tolerance():
    maps = np.zeros((3, 224, 224), "float32")
    maps[0, 50, 50] = 1.0    # inside the box rows/cols 40..99
    maps[1, 50, 114] = 1.0   # 15 px right of the last box column (99)
    maps[2, 50, 116] = 1.0   # 17 px right
    boxes = [[40, 40, 100, 100]] * 3
    np.testing.assert_array_equal(pointing_game(maps, boxes=boxes), [1, 0, 0])  # default: strict
    np.testing.assert_array_equal(pointing_game(maps, boxes=boxes, tolerance=15), [1, 1, 0])
    np.testing.assert_array_equal(pointing_game(maps, box_masks(boxes, 224, 224), tolerance=15), [1, 1, 0])
    with pytest.raises(ValueError, match="exactly one of `masks`"):
        pointing_game(maps, box_masks(boxes, 224, 224), boxes=boxes)
    with pytest.raises(ValueError, match="exactly one of `masks`"):
        pointing_game(maps)


def test_energy_pointing_game_hand_case():
    maps = np.zeros((2, 4, 4), "float32")
    maps[0, 0, 0], maps[0, 1, 1], maps[0, 3, 3] = 2.0, 1.0, 1.0   # 3 of 4 in the 2x2 top-left box
    boxes = [[0, 0, 2, 2], [0, 0, 2, 2]]                              # map 1 is all zero
    np.testing.assert_allclose(energy_pointing_game(maps, boxes=boxes), [0.75, 0.0])
    np.testing.assert_allclose(energy_pointing_game(maps, masks=box_masks(boxes, 4, 4)), [0.75, 0.0])
    with pytest.raises(ValueError, match="one box per map"):
        energy_pointing_game(maps, boxes=boxes[:1])
    with pytest.raises(ValueError, match="maps` >= 0"):
        energy_pointing_game(-maps, boxes=boxes)


def test_relevance_mass_accuracy_counts_positive_relevance_only():
    maps = np.array([
        [[3.0, -4.0], [1.0, 0.0]],    # positive 3 + 1; inside (top row) 3 -> 0.75
        [[-1.0, -2.0], [-3.0, 0.0]],  # no positive relevance -> 0
        [[1.0, 1.0], [1.0, 1.0]],     # empty mask -> NaN
    ], "float32")
    masks = np.array([[[1, 1], [0, 0]], [[1, 1], [0, 0]], [[0, 0], [0, 0]]], "float32")
    out = relevance_mass_accuracy(maps, masks)
    np.testing.assert_allclose(out[:2], [0.75, 0.0])
    assert np.isnan(out[2])
    np.testing.assert_allclose(relevance_mass_accuracy(maps[:1], boxes=[[0, 0, 1, 2]]), [0.75])


# === Noisy linear imputation ===
def authors_dense_system(image, removed):
    """A per-pixel (loop) port of setup_sparse_system in tleemann/road_evaluation, dense; returns the imputed image."""
    H, W, C = image.shape
    idx = [(y, x) for y in range(H) for x in range(W) if removed[y, x]]
    var = {p: i for i, p in enumerate(idx)}
    A = np.zeros((len(idx), len(idx)))
    b = np.zeros((len(idx), C))
    for i, (y, x) in enumerate(idx):
        total = 1.0
        for (dy, dx), w in ROAD_NEIGHBOUR_WEIGHTS:
            ny, nx = y + dy, x + dx
            if not (0 <= ny < H and 0 <= nx < W):
                total -= w
            elif removed[ny, nx]:
                A[i, var[(ny, nx)]] = w
            else:
                b[i] -= w * image[ny, nx]
        A[i, i] = -total
    out = image.astype(np.float64).copy()
    sol = np.linalg.solve(A, b)
    for i, p in enumerate(idx):
        out[p] = sol[i]
    return out


def test_imputation_hand_cases():
    # One row [1, ?, ?, 4]: each unknown is the mean of its two neighbours -> linear: 2, 3.
    row = np.array([1.0, 0.0, 0.0, 4.0], "float32").reshape(1, 4, 1)
    out = noisy_linear_imputation(row, np.array([[False, True, True, False]]), noise=0.0)
    np.testing.assert_allclose(out[0, :, 0], [1, 2, 3, 4], atol=1e-6)
    # Corner (0, 0) of [[?, a], [b, c]]: weights 1/6, 1/6, 1/12 -> (2a + 2b + c) / 5.
    a, b, c = 1.0, 2.0, 5.0
    img = np.array([[0.0, a], [b, c]], "float32")[..., None]
    out = noisy_linear_imputation(img, np.array([[True, False], [False, False]]), noise=0.0)
    np.testing.assert_allclose(out[0, 0, 0], (2 * a + 2 * b + c) / 5, atol=1e-6)
    np.testing.assert_array_equal(out[..., 0].ravel()[1:], [a, b, c])


def test_imputation_equals_the_authors_system_and_adds_the_noise():
    rng = np.random.default_rng(3)
    img = rng.random((5, 6, 3)).astype("float32")
    removed = rng.random((5, 6)) < 0.6
    removed[2, 3] = False
    out = noisy_linear_imputation(img, removed, noise=0.0)
    np.testing.assert_allclose(out, authors_dense_system(img, removed), atol=1e-5)
    np.testing.assert_array_equal(out[~removed], img[~removed])
    noisy = noisy_linear_imputation(img, removed, noise=0.5, rng=np.random.default_rng(7))
    expected_noise = 0.5 * np.random.default_rng(7).standard_normal((int(removed.sum()), 3))
    np.testing.assert_allclose(noisy[removed] - out[removed], expected_noise, atol=1e-5)
    with pytest.raises(ValueError, match="at least one kept pixel"):
        noisy_linear_imputation(img, np.ones((5, 6), bool))
    with pytest.raises(ValueError, match="noise"):
        noisy_linear_imputation(img, removed, noise=-1.0)


def test_removed_count_is_floor_as_the_authors():
    assert removed_count(1 / 9, 9) == 1 and removed_count(0.1, 1024) == 102 and removed_count(0.3, 10) == 3


# === ROAD ===
def mean_model_3x3(k):
    """Logit 0 = k * mean over pixels of the channel sum, logit 1 = 0 (3x3 RGB input)."""
    inp = keras.Input((3, 3, 3))
    dense = keras.layers.Dense(2)
    model = keras.Model(inp, dense(keras.layers.GlobalAveragePooling2D()(inp)))
    kernel = np.zeros((3, 2), "float32")
    kernel[:, 0] = k
    dense.set_weights([kernel, np.zeros(2, "float32")])
    return model


def test_road_hand_case():
    k = 0.5
    x = np.zeros((1, 3, 3, 3), "float32")
    x[0, 1, 1] = 9.0                                   # a bright centre, the rest black
    maps = np.arange(9, 0, -1, dtype="float32").reshape(1, 3, 3)
    maps[0, 1, 1] = 10.0                               # centre most relevant, (2, 2) least
    r = road(mean_model_3x3(k), x, maps, targets=0, fractions=(1 / 9,), noise=0.0)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    # MoRF removes the centre: its 8 neighbours are 0 -> a black image, logit 0.
    np.testing.assert_allclose(r["morf_curve"], [[0.5]], atol=1e-6)
    # LeRF removes (2, 2): neighbours (1, 1)=9 w 1/12, (1, 2)=0 and (2, 1)=0 w 1/6 -> 9/12 / (5/12) = 1.8.
    lerf = sig(k * 3 * (9.0 + 1.8) / 9)
    np.testing.assert_allclose(r["lerf_curve"], [[lerf]], atol=1e-6)
    np.testing.assert_allclose(r["full"], [sig(k * 3 * 9.0 / 9)], atol=1e-6)
    np.testing.assert_allclose(r["combined"], [(lerf - 0.5) / 2], atol=1e-6)
    assert r["fractions"].tolist() == pytest.approx([1 / 9])


def test_road_curves_follow_the_order_and_batching():
    rng = np.random.default_rng(0)
    x = rng.random((3, 3, 3, 3)).astype("float32")
    maps = rng.random((3, 3, 3)).astype("float32")
    model = mean_model_3x3(1.0)
    r = road(model, x, maps, targets=0, fractions=(0.0, 0.3, 0.6), noise=0.0, batch_size=2)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    for b in range(3):
        order = np.argsort(-maps[b].ravel(), kind="stable")
        for s, f in enumerate((0.0, 0.3, 0.6)):
            for mode, ranked in (("morf", order), ("lerf", order[::-1])):
                removed = np.zeros(9, bool)
                removed[ranked[: int(np.floor(f * 9 + 1e-9))]] = True
                img = authors_dense_system(x[b], removed.reshape(3, 3)) if removed.any() else x[b]
                np.testing.assert_allclose(r[f"{mode}_curve"][b, s], sig(img.sum(-1).mean()), atol=1e-5)
    np.testing.assert_allclose(r["morf_curve"][:, 0], r["full"], atol=1e-6)   # nothing removed
    with pytest.raises(ValueError, match=r"fractions` in \[0, 1\)"):
        road(model, x, maps, fractions=(0.5, 1.0))
    with pytest.raises(ValueError, match="fractions"):
        road(model, x, maps, fractions=(-0.1,))


def test_every_reported_metric_has_a_one_line_legend():
    for name in ("average_drop@15", "increase_in_confidence@50", "deletion_auc", "insertion_auc", "road_morf",
                 "road_lerf", "road_combined", "pointing_game", "pointing_game_15px", "energy_pointing_game",
                 "relevance_mass_accuracy"):
        line = metric_legend(name)
        assert "\n" not in line and "unit:" in line and ("higher is better" in line or "lower is better" in line)
    assert set(METRIC_LEGENDS) >= {"road_combined", "relevance_mass_accuracy"}
    with pytest.raises(ValueError, match="Expected a metric among"):
        metric_legend("accuracy")
