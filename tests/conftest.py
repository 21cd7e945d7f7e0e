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
