"""Argument checks that fail early with errors naming what was expected and received."""

from __future__ import annotations

import math
import numbers


def check_non_negative(name: str, value, owner: str | None = None) -> float:
    """Return ``value`` as float, or raise if it is negative, NaN, infinite or not a number."""
    prefix = f"{owner}: " if owner else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{prefix}Expected `{name}` to be a number >= 0. Received: {name}={value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{prefix}Expected `{name}` to be a finite number >= 0. Received: {name}={value}")
    if value < 0:
        raise ValueError(f"{prefix}Expected `{name}` >= 0. Received: {name}={value}")
    return float(value)


def check_class_indices(name: str, value, owner: str | None = None) -> list[int]:
    """Return ``value`` (an int or a sequence of ints) as a list of ints >= 0; raise on floats, bools, negatives.

    A float such as 0.9 is refused rather than truncated to 0.
    """
    prefix = f"{owner}: " if owner else ""
    items = [value] if isinstance(value, numbers.Number) else value
    try:
        items = list(items)
    except TypeError:
        raise TypeError(f"{prefix}Expected `{name}` to be a class index or a list of class indices "
                        f"(integers >= 0). Received: {name}={value!r}") from None
    for c in items:
        if isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 0:
            raise ValueError(f"{prefix}Expected `{name}` to hold class indices (integers >= 0). "
                             f"Received: {name}={value!r}")
    return [int(c) for c in items]


def check_classes_below(name: str, classes, num_classes: int, owner: str | None = None) -> None:
    """Raise if a class index in ``classes`` is not below ``num_classes`` (a single-logit head has 2 classes)."""
    prefix = f"{owner}: " if owner else ""
    k = 2 if num_classes == 1 else int(num_classes)
    bad = [c for c in classes if not 0 <= c < k]
    if bad:
        raise ValueError(f"{prefix}Expected `{name}` in [0, {k - 1}] for num_classes={num_classes}. "
                         f"Received: {name}={list(classes)}")


def check_positive_int(name: str, value, owner: str | None = None) -> int:
    """Return ``value`` as int, or raise if it is not an integer >= 1."""
    prefix = f"{owner}: " if owner else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{prefix}Expected `{name}` to be an integer >= 1. Received: {name}={value!r}")
    return int(value)


def check_one_of(name: str, value, allowed, owner: str | None = None):
    """Return ``value`` if it is in ``allowed``, else raise ``ValueError`` listing the choices."""
    prefix = f"{owner}: " if owner else ""
    if value not in allowed:
        raise ValueError(
            f"{prefix}Expected `{name}` to be one of {sorted(allowed, key=str)}. Received: {name}={value!r}"
        )
    return value


def check_fraction(name: str, value, owner: str | None = None) -> float:
    """Return ``value`` as float, or raise if it is not in [0, 1]."""
    prefix = f"{owner}: " if owner else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{prefix}Expected `{name}` in [0, 1]. Received: {name}={value!r}")
    return float(value)
