"""RepLKNet's high-contribution area ratio (erf/analyze_erf.py) on hand-built ERF maps, and `keras-priors rf --erf`."""

import numpy as np
import pytest

from keras_priors.receptive_field import (
    HIGH_CONTRIBUTION_THRESHOLDS,
    erf_summary_for,
    high_contribution_area_ratio,
)


def their_get_rectangle(data, thresh):
    """The loop of get_rectangle in DingXiaoH/RepLKNet-pytorch erf/analyze_erf.py, on a prepared map."""
    h, w = data.shape
    all_sum = np.sum(data)
    for i in range(1, h // 2):
        area_sum = np.sum(data[h // 2 - i:h // 2 + 1 + i, w // 2 - i:w // 2 + 1 + i])
        if area_sum / all_sum > thresh:
            return i * 2 + 1, (i * 2 + 1) / h * (i * 2 + 1) / w
    return None


def test_centred_block_hand_case():
    m = np.zeros((11, 11))
    m[3:8, 3:8] = 9.0   # log10(10) = 1 everywhere in the central 5x5, 0 elsewhere: total 25
    r = high_contribution_area_ratio(m)
    assert list(r) == list(HIGH_CONTRIBUTION_THRESHOLDS) == [0.2, 0.3, 0.5, 0.99]
    assert r[0.2] == r[0.3] == (3, pytest.approx(9 / 121))          # 3x3 holds 9/25 = 0.36
    assert r[0.5] == r[0.99] == (5, pytest.approx(25 / 121))        # 5x5 holds all of it


def test_uniform_map_strict_threshold_and_no_full_square():
    m = np.full((9, 9), 3.0)   # after log10(x+1)/max: all ones, total 81
    r = high_contribution_area_ratio(m, thresholds=(0.2, 25 / 81, 0.5, 0.99))
    assert r[0.2] == (5, pytest.approx(25 / 81))               # 3x3: 9/81 = 0.11; 5x5: 25/81 = 0.31
    assert r[25 / 81] == (7, pytest.approx(49 / 81))           # "more than t": exactly t is not enough
    assert r[0.5] == (7, pytest.approx(49 / 81))               # 7x7: 49/81 = 0.60
    assert r[0.99] is None                      # the 9x9 square is never tried, as in their loop


def test_log_step_and_non_square_maps_match_their_code():
    rng = np.random.default_rng(0)
    for shape in ((15, 15), (12, 16), (31, 31)):
        m = rng.gamma(0.5, 20.0, size=shape)
        m[shape[0] // 2, shape[1] // 2] = 500.0
        prepared = np.log10(m + 1)
        prepared = prepared / prepared.max()
        ours = high_contribution_area_ratio(m)
        for t in HIGH_CONTRIBUTION_THRESHOLDS:
            assert ours[t] == their_get_rectangle(prepared, t), (shape, t)
    # The log makes the ratio scale-dependent: one bright centre over a dim ring.
    m = np.zeros((9, 9)); m[4, 4] = 99.0; m[3:6, 3:6] += 1.0; m[4, 4] = 99.0
    # normalised: centre log10(100)/2 = 1, 8 ring pixels log10(2)/2 = 0.1505: 3x3 holds everything
    assert high_contribution_area_ratio(m)[0.99] == (3, pytest.approx(9 / 81))


def test_bad_maps_and_thresholds():
    with pytest.raises(ValueError, match=r"erf_map` of shape \(H, W\)"):
        high_contribution_area_ratio(np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match=">= 0"):
        high_contribution_area_ratio(-np.ones((5, 5)))
    with pytest.raises(ValueError, match="all-zero"):
        high_contribution_area_ratio(np.zeros((5, 5)))
    with pytest.raises(ValueError, match=r"threshold in \(0, 1\)"):
        high_contribution_area_ratio(np.ones((5, 5)), thresholds=(0.5, 1.0))


def three_convs():
    import keras

    return keras.Sequential([keras.Input((16, 16, 1))]
                            + [keras.layers.Conv2D(2, 3, name=f"conv{i}") for i in (1, 2, 3)], name="tiny")


def test_erf_summary_of_three_convs():
    text = erf_summary_for(three_convs(), num_samples=4)
    assert "tiny/conv3, unit (5, 5)" in text and "theoretical RF 7 px" in text
    rows = [line for line in text.splitlines() if line.startswith("| 0.")]
    assert [r.split(" | ")[0] for r in rows] == ["| 0.2", "| 0.3", "| 0.5", "| 0.99"]
    # The unit's field is the 7x7 window centred on (8, 8) = (16 // 2, 16 // 2): no square beyond 7 px is needed.
    sides = [int(r.split(" | ")[1]) for r in rows]
    assert sides == sorted(sides) and sides[-1] <= 7
    assert f"| {sides[-1]} | {sides[-1] ** 2 / 256:.4f} |" in rows[-1]


def test_rf_cli_erf(tmp_path, capsys):
    from keras_priors.cli import main

    path = str(tmp_path / "tiny.keras")
    three_convs().save(path)
    assert main(["rf", path, "--erf", "--erf-samples", "2"]) in (0, None)
    out = capsys.readouterr().out
    assert "Receptive fields of tiny" in out and "| conv3 | Conv2D | 10 | 7 |" in out
    assert "high-contribution area ratio (RepLKNet" in out and "| 0.99 |" in out
    assert main(["rf", path, "--erf", "--erf-layer", "nope"]) == 1
    assert "--erf: No layer named 'nope'" in capsys.readouterr().err
