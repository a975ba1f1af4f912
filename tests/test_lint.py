"""The repository is pyflakes-clean and its lines fit: ruff's ``F`` and ``E501`` rules (``[tool.ruff.lint]`` in
pyproject.toml).

An undefined name, an unused import, an unused variable or a line over 120
characters anywhere in the package, tests, benchmarks, tutorials or zoo fails
here, with ruff's report.
"""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_repository_is_pyflakes_clean():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is in the tests extra: pip install -e \".[tests]\"")
    result = subprocess.run([ruff, "check", "--output-format", "concise", "--no-cache", ROOT],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
