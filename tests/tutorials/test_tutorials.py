"""Every tutorial runs top to bottom in fast mode and writes its pictures.

The tutorials run in-process with ``runpy`` (one TensorFlow import for all of
them) with ``KERAS_PRIORS_TUTORIAL_FAST=1`` and their output folder in a
temporary directory.
"""

import os
import re
import runpy

import pytest

TUTORIALS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "tutorials")

#: tutorial -> the PNGs it must write (relative to its output folder).
EXPECTED_PNGS = {
    "pretrained_weights": ["cam_overlays_scratch_vs_pretrained.png"],
    "dual_input": ["image_and_head_crop.png", "predicted_vs_true_head_crop.png"],
    "mask_decoder": ["head_masks_true_vs_predicted.png"],
    "cam_suppression": ["kakapo_train_preview.png", "cam_overlays_plain_vs_prior.png"],
    "background_swap": ["training_images_and_composites.png"],
    "input_gradient": ["input_gradients_plain_vs_rrr.png"],
    "auxiliary_heads": ["test_preview.png", "cam_overlays_plain_vs_auxiliary.png"],
    "spatial_attention": ["attention_maps.png", "cam_overlays_plain_vs_attention.png"],
    "label_regularization": ["confidence_histograms.png"],
    "explainers": ["explainer_overlays.png"],
    "receptive_fields": ["erf_before_training.png", "erf_after_training.png"],
}


def test_every_tutorial_is_listed():
    on_disk = {f[:-3] for f in os.listdir(TUTORIALS_DIR) if f.endswith(".py") and not f.startswith("_")}
    assert on_disk == set(EXPECTED_PNGS)
    readme = open(os.path.join(TUTORIALS_DIR, "README.md")).read()
    for name in EXPECTED_PNGS:
        assert f"{name}.py" in readme, name


@pytest.mark.parametrize("name", sorted(EXPECTED_PNGS))
def test_header_in_keras_io_format(name):
    text = open(os.path.join(TUTORIALS_DIR, f"{name}.py")).read()
    header = re.match(r'"""\n(.*?)\n"""', text, re.S)
    assert header, "the file must open with the keras-io header docstring"
    fields = [line.split(":", 1)[0] for line in header.group(1).splitlines()]
    assert fields[:4] == ["Title", "Author", "Date created", "Last modified"]
    assert "Description" in fields
    assert "## Introduction" in text


@pytest.mark.parametrize("name", sorted(EXPECTED_PNGS))
def test_tutorial_runs_in_fast_mode(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_PRIORS_TUTORIAL_FAST", "1")
    monkeypatch.setenv("KERAS_PRIORS_TUTORIAL_OUT", str(tmp_path))
    runpy.run_path(os.path.join(TUTORIALS_DIR, f"{name}.py"), run_name="__main__")
    out = capsys.readouterr().out
    for png in EXPECTED_PNGS[name]:
        path = tmp_path / name / png
        assert path.is_file() and path.stat().st_size > 100, png
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", png
        assert f"Wrote {path}" in out  # the tutorial says where each picture is
