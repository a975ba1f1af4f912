"""Shared helpers for the training benchmarks: backend selection, machine description, interleaved timing.

Timing scheme (``interleaved_rounds``): every configuration is warmed up first
(the first steps trace / compile), then the configurations run in rounds,
``A B C ... A B C ...``, each round timing a few steps of each one; the start
of the order rotates every round. Noise from other processes on a shared
machine then hits every configuration alike, and ratios are taken *within*
a round (paired) before the median over rounds is reported.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

BACKENDS = ("tensorflow", "jax")


def select_backend(argv=None, allowed=BACKENDS) -> str | None:
    """Honour ``--backend NAME`` (one of ``allowed``) by setting ``KERAS_BACKEND`` before Keras is imported.

    Must run before ``import keras``. Returns the backend asked for, or None.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(argv):
        value = None
        if arg == "--backend" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--backend="):
            value = arg.split("=", 1)[1]
        if value is not None:
            if value not in allowed:
                raise SystemExit(f"Expected --backend one of {allowed}. Received: --backend={value}")
            if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != value:
                raise SystemExit("--backend must be handled before keras is imported")
            os.environ["KERAS_BACKEND"] = value
            return value
    return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def load_average() -> str:
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def accelerators() -> list[str]:
    """Devices the current Keras backend sees, e.g. ``['cpu']`` or ``['gpu:0 NVIDIA H100']``."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return [f"{d.platform}:{d.id} {getattr(d, 'device_kind', '')}".strip() for d in jax.devices()]
    if backend == "tensorflow":
        import tensorflow as tf

        return sorted({d.device_type.lower() for d in tf.config.list_physical_devices()})
    return [backend]


def has_gpu() -> bool:
    """True when the current Keras backend can place work on a GPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    return False


def versions() -> str:
    import keras
    import numpy as np

    parts = [f"Python {platform.python_version()}", f"numpy {np.__version__}", f"keras {keras.__version__}"]
    for mod in ("tensorflow", "jax"):
        if mod in sys.modules:
            parts.append(f"{mod} {sys.modules[mod].__version__}")
    return ", ".join(parts)


def machine_lines(load_at_start: str | None = None) -> list[str]:
    """Markdown bullet lines describing the machine, versions, backend and load."""
    import keras

    lines = [
        f"- machine: {platform.platform()}; CPU {cpu_model()}; {usable_cores()} usable cores "
        f"({os.cpu_count()} CPUs)",
        f"- {versions()}",
        f"- backend: {keras.backend.backend()}; devices: {', '.join(accelerators())}",
        f"- load average (1/5/15 min): {load_at_start or load_average()} at start, {load_average()} at end"
        " (a load above the core count means other processes shared the CPU during the run)",
    ]
    return lines


def interleaved_rounds(steps: dict, rounds: int, steps_per_round: int, warmup: int = 2, verbose: bool = True):
    """Time ``steps[name]()`` (one training step each) in interleaved rounds.

    Args:
        steps: ``{name: callable}``; each call runs one step and returns only
            when it has finished (e.g. ``model.train_on_batch``, which returns
            host numbers).
        rounds: number of rounds.
        steps_per_round: steps timed back to back per configuration and round.
        warmup: untimed steps per configuration before the first round.
        verbose: print one line per warm-up and per round.

    Returns:
        ``(per_round, first_step)``: ``{name: [seconds per step, one per round]}``
        and ``{name: seconds of the first warm-up step}`` (tracing/compilation).
        A configuration whose warm-up raises is left out of the rounds; its
        ``first_step`` entry is the error message (a string) instead.
    """
    names = []
    first_step = {}
    for name in steps:
        t0 = time.perf_counter()
        try:
            steps[name]()
            first_step[name] = time.perf_counter() - t0
            for _ in range(max(0, warmup - 1)):
                steps[name]()
        except Exception as e:  # noqa: BLE001 - report the failing config, time the others
            first_step[name] = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:160]
            print(f"  warm-up {name}: {first_step[name]}", flush=True)
            continue
        names.append(name)
        if verbose:
            print(f"  warm-up {name}: first step {first_step[name]:.1f} s (trace/compile), "
                  f"{warmup} warm-up steps", flush=True)
    per_round = {name: [] for name in names}
    for r in range(rounds if names else 0):
        order = names[r % len(names):] + names[:r % len(names)]
        t_round = time.perf_counter()
        for name in order:
            t0 = time.perf_counter()
            for _ in range(steps_per_round):
                steps[name]()
            per_round[name].append((time.perf_counter() - t0) / steps_per_round)
        if verbose:
            print(f"  round {r + 1}/{rounds}: {time.perf_counter() - t_round:.1f} s "
                  f"({len(names)} configs x {steps_per_round} steps)", flush=True)
    return per_round, first_step


def quantiles(values) -> tuple[float, float, float]:
    """(25th percentile, median, 75th percentile); for fewer than 4 values, (min, median, max)."""
    values = sorted(values)
    if len(values) < 4:
        return values[0], statistics.median(values), values[-1]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def paired_ratios(per_round: dict, name: str, base: str) -> list[float]:
    """Per-round ratios ``name / base`` (both timed within the same round)."""
    return [a / b for a, b in zip(per_round[name], per_round[base])]


def markdown_table(header, rows) -> str:
    """A Markdown table; numeric-looking columns are right-aligned."""
    def is_num(s):
        return str(s).replace(".", "", 1).replace(",", "").replace("x", "").strip().lstrip("-").isdigit()

    align = ["---:" if rows and all(is_num(str(r[i]).split(" ")[0]) for r in rows) else "---"
             for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)
