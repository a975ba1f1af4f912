"""Argument checks that fail early with errors naming what was expected and received."""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import warnings


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


def check_class_id(value, owner: str | None = None, name: str = "class_id") -> int | None:
    """Return ``value`` (one class, an integer >= 0) as int, or None; raise on floats, bools and negatives."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        prefix = f"{owner}: " if owner else ""
        raise ValueError(f"{prefix}Expected `{name}` to be None or an integer >= 0. Received: {name}={value!r}")
    return int(value)


# === Renamed arguments ===
def warn_renamed(owner: str, old: str, new: str, note: str = "", what: str = "argument", stacklevel: int = 3) -> None:
    """Warn (``DeprecationWarning``) that ``owner``'s argument (or attribute) ``old`` is now called ``new``."""
    warnings.warn(f"{owner}: the {what} `{old}` is deprecated; use `{new}` (the same value). {note}".rstrip(),
                  DeprecationWarning, stacklevel=stacklevel)


def renamed_arguments(before=None, **renames):
    """Decorator: accept the deprecated argument names ``old=new`` of a function or ``__init__``.

    A call that passes ``old`` gets a ``DeprecationWarning`` naming the owner,
    ``old`` and ``new``, and runs as if it had passed ``new``; passing both
    raises a ``ValueError`` naming both. Old saved configs load the same way
    (``from_config`` calls the constructor). The decorated function keeps its
    signature (``inspect.signature``, Keras' auto-config), which does not list
    the old names. ``before(kwargs)``, if given, rewrites the keyword
    arguments first (a rename that depends on the value); it warns with
    :func:`warn_renamed` and ``stacklevel=4``.

    Example:

    >>> import warnings
    >>> @renamed_arguments(target="mask")
    ... def f(mask="object_mask"):
    ...     return mask
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     f(target="part_mask")
    'part_mask'
    >>> str(caught[0].message)
    'f: the argument `target` is deprecated; use `mask` (the same value).'
    """

    def decorate(fn):
        signature = inspect.signature(fn)
        owner = fn.__qualname__.rsplit(".", 1)[0] if fn.__name__ == "__init__" else fn.__qualname__
        missing = [new for new in renames.values() if new not in signature.parameters]
        if missing:
            raise TypeError(f"renamed_arguments: {fn.__qualname__} has no argument(s) {missing}")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if before is not None:
                before(kwargs)
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                passed = signature.bind_partial(*args, **{k: v for k, v in kwargs.items() if k not in renames})
                if new in passed.arguments:
                    raise ValueError(f"{owner}: `{old}` is the deprecated name of `{new}`. Expected one of them. "
                                     f"Received: {old}={kwargs[old]!r} and {new}={passed.arguments[new]!r}")
                warn_renamed(owner, old, new)
                kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        wrapper.__signature__ = signature  # Keras' Operation.__new__ reads it with getfullargspec
        return wrapper

    return decorate


class RenamedAttribute:
    """A read-only attribute ``old`` that returns ``new`` with a ``DeprecationWarning`` (for 0.1 code).

    Example: ``target = RenamedAttribute("target", "mask")`` in a class body. Not for Keras layers:
    ``.keras`` saving reads every attribute ``dir()`` lists, so each save would warn.
    """

    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        warn_renamed(type(obj).__name__, self.old, self.new, what="attribute")
        return getattr(obj, self.new)
