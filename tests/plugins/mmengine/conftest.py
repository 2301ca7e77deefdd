"""Shared helpers for the MMEngine tests: the reference is MMEngine itself (reference.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

pytest.importorskip("mmengine", reason="mmengine is not installed (pip install -e .[mmengine])")
# mmengine.optim imports torch.distributed.optim, which warns on import: imported here, where importorskip
# silences it, before any test module imports it
pytest.importorskip("mmengine.optim", reason="mmengine is not installed (pip install -e .[mmengine])")
