"""benchmarks/gpu_throughput.py without a GPU: says so, exits 0, measures nothing (run in a subprocess)."""

import os
import subprocess
import sys
import time

SCRIPT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "gpu_throughput.py"))


def run(env_extra, timeout=120, args=()):
    env = {**os.environ, **env_extra}
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, SCRIPT, *args], env=env, capture_output=True, text=True,
                            timeout=timeout)
    return result, time.perf_counter() - t0


def test_no_gpu_prints_so_and_exits_0_quickly():
    result, seconds = run({"JAX_PLATFORMS": "cpu"})   # no GPU visible to JAX, even on a GPU machine
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("No GPU found: ") and "nothing was measured" in result.stdout
    assert "images/s" not in result.stdout and "|" not in result.stdout   # no table, no number
    assert seconds < 60, seconds


def test_missing_jax_prints_no_gpu_and_exits_0(tmp_path):
    fake = tmp_path / "jax"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('jax blocked for this test')\n")
    result, _ = run({"PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("No GPU found: jax is not installed (jax blocked for this test)")
    assert "images/s" not in result.stdout


def test_the_training_path_runs_without_tensorflow(tmp_path):
    # The GPU machine has JAX and no TensorFlow: the whole path (zoo build, CAMSuppression, train_on_batch,
    # the table) must not need it. Checked on CPU with TensorFlow made unimportable, at a tiny size.
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('tensorflow blocked for this test')\n")
    result, _ = run({"PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                     "JAX_PLATFORMS": "cpu"}, timeout=600,
                    args=["--allow-cpu", "--batch-size", "2", "--image-size", "32", "--rounds", "1", "--steps", "1",
                          "--warmup", "1"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| resnet50 | 32 | CAMSuppression | cpu (code-path check" in result.stdout, result.stdout[-2000:]
    assert "Targets: not evaluated (no GPU)" in result.stdout
