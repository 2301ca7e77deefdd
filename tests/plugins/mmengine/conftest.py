"""Shared helpers for the MMEngine tests: the reference is MMEngine itself (reference.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

pytest.importorskip("mmengine", reason="mmengine is not installed (pip install -e .[mmengine])")
