"""benchmarks/explain_quality.py: the garment boxes it scores the energy-based pointing game on."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks")))

import explain_quality  # noqa: E402


def test_bounding_boxes_enclose_each_mask():
    masks = np.zeros((2, 6, 7, 1), "float32")
    masks[0, 1:3, 2:6] = 1.0
    masks[0, 4, 3] = 1.0           # a stray pixel widens the box
    boxes = explain_quality.bounding_boxes(masks)
    assert boxes.tolist() == [[1, 2, 5, 6], [0, 0, 0, 0]]   # max exclusive; empty mask -> empty box
    assert explain_quality.TOLERANCE == 15 * 32 / 224
