"""Shared test fixtures."""

from __future__ import annotations

import os

import numpy as np
import pytest

# Qt and the renderer run headless in every test.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def csharp_runner(tmp_path_factory):
    """The Unity package's engine-free core, its EditMode tests and the console runner, compiled once
    with mcs (unity_project/ConsoleRunner/build.sh)."""
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("mcs") is None or shutil.which("mono") is None:
        pytest.fail("mcs/mono are missing: `make sysdeps` installs mono-mcs (apt-get install mono-mcs)")
    build_sh = Path(__file__).resolve().parents[1] / "unity_project" / "ConsoleRunner" / "build.sh"
    exe = tmp_path_factory.mktemp("runner") / "posebridge-core-runner.exe"
    build = subprocess.run(["bash", str(build_sh), str(exe)], capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, f"mcs failed:\n{build.stdout}\n{build.stderr}"
    return exe
