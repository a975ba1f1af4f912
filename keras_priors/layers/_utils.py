"""Private argument and shape checks shared by the layers in this package."""

from __future__ import annotations

import numbers


def check_size(name: str, value, owner: str, allow_none: bool = True):
    """Return ``value`` as a ``(height, width)`` tuple of positive ints (or ``None``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
        return (int(value), int(value))
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in value)
    )
    if not ok:
        expected = "None or " if allow_none else ""
        raise ValueError(
            f"{owner}: Expected `{name}` to be {expected}a pair of integers >= 1 (height, width). "
            f"Received: {name}={value!r}"
        )
    return (int(value[0]), int(value[1]))


def check_rank(name: str, shape, ranks, owner: str):
    """Raise ``ValueError`` unless ``len(shape)`` is one of ``ranks``."""
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    if shape is None or len(shape) not in ranks:
        want = " or ".join(str(r) for r in ranks)
        got = None if shape is None else len(shape)
        raise ValueError(
            f"{owner}: Expected `{name}` to have rank {want}. Received: {name} with shape "
            f"{None if shape is None else tuple(shape)} (rank {got})"
        )


def check_list_of_two(name: str, input_shape, owner: str):
    """Raise ``ValueError`` unless ``input_shape`` is a list of exactly two shapes."""
    ok = (
        isinstance(input_shape, (list, tuple))
        and len(input_shape) == 2
        and all(isinstance(s, (list, tuple)) for s in input_shape)
    )
    if not ok:
        got = (f"one tensor of shape {tuple(input_shape)}" if isinstance(input_shape, (list, tuple))
               else repr(input_shape))
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
            got = f"{len(input_shape)} tensors"
        raise ValueError(f"{owner}: Expected `{name}` to be a list of 2 tensors. Received: {got}")
