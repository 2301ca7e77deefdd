"""bench/gpu_check.py in its dry mode: the CPU version of the GPU check runs and prints its table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"


def load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dry_run_prints_every_row_and_exits_0(capsys):
    gpu_check = load()
    assert gpu_check.main(["--dry-run", "--no-tests", "--budget", "120"]) == 0
    out = capsys.readouterr().out
    assert "| check | measured | target | result |" in out
    for row in (
        "zero host syncs in Built.step (sync_free), SGD+LARC | 0 host reads, 1 skipped",
        "LARC+SGD fused vs SGD fused",
        "MMSelfSup LARS vs SGD fused",
        "AdamW fused vs AdamW foreach",
        "compiled step",
    ):
        assert row in out


def test_the_sync_check_fails_when_the_step_reads_the_host(capsys, monkeypatch):
    """With sync_free off, the finiteness check reads a bool per update: the row says FAIL and the exit is 1."""
    gpu_check = load()
    import optiplug

    monkeypatch.setattr(
        optiplug.Built, "sync_free", property(lambda self: False, lambda self, value: None), raising=False
    )
    monkeypatch.setattr(gpu_check, "kernels", lambda *args: None)
    assert gpu_check.main(["--dry-run", "--no-tests"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_without_cuda_the_full_check_refuses(capsys):
    gpu_check = load()
    if gpu_check.torch.cuda.is_available():
        pytest.skip("a GPU is present: the full check would run")
    assert gpu_check.main([]) == 2
    assert "--dry-run" in capsys.readouterr().err
