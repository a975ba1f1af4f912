"""Argument checks that fail early with errors naming what was expected and received."""

from __future__ import annotations

import math
import numbers


def check_non_negative(name: str, value, owner: str | None = None) -> float:
    """Return ``value`` as float, or raise ``ValueError`` if it is negative or not a number."""
    prefix = f"{owner}: " if owner else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{prefix}Expected `{name}` to be a number >= 0. Received: {name}={value!r}")
    if value < 0:
        raise ValueError(f"{prefix}Expected `{name}` >= 0. Received: {name}={value}")
    return float(value)


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


def check_finite_non_negative(name: str, value, owner: str | None = None) -> float:
    """Like ``check_non_negative``, and also reject NaN and infinity."""
    value = check_non_negative(name, value, owner=owner)
    if not math.isfinite(value):
        prefix = f"{owner}: " if owner else ""
        raise ValueError(f"{prefix}Expected `{name}` to be a finite number >= 0. Received: {name}={value}")
    return value
