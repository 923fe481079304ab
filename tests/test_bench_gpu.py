"""benchmarks/bench_gpu.py (issue 18) runs end to end on CPU at tiny sizes (`--cpu-small`):
finite train steps/s for tfflows' MAF, NSF and Glow on Keras's JAX backend and a well-formed
markdown table. Each check runs the script in a fresh process (Keras fixes its backend at
import), with KERAS_BACKEND=jax; skipped where JAX is not installed."""

import importlib.util
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "bench_gpu.py")

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")


def _run(tmp_path, *flags, timeout=120):
    out = os.path.join(tmp_path, "gpu_cpu_small.md")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    env.pop("JAX_ENABLE_X64", None)  # the benchmark is float32
    proc = subprocess.run([sys.executable, SCRIPT, "--cpu-small", "--out", out, *flags], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out) as f:
        return f.read()


def _tables(report):
    """Markdown tables of the report: a list of (header cells, rows of cells)."""
    tables, current = [], None
    for line in report.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current is None:
                current = [cells, []]
            else:
                current[1].append(cells)
        elif current is not None:
            tables.append(current)
            current = None
    return tables


def _check_table(header, rows):
    assert rows, "table has no rows"
    assert all(set(c) <= set("-: ") and c for c in rows[0]), f"no separator line under {header}"
    for row in rows[1:]:
        assert len(row) == len(header), f"row {row} does not match header {header}"
    return [dict(zip(header, row)) for row in rows[1:]]


def test_cpu_small_runs_and_reports_finite_steps(tmp_path):
    report = _run(tmp_path)
    tables = _tables(report)
    assert len(tables) == 2, report
    rows = _check_table(*tables[0])
    summary = _check_table(*tables[1])
    for model in ("MAF", "NSF"):
        ours = [r for r in rows if r["model"] == model and r["implementation"].startswith("tfflows")]
        assert {r["implementation"] for r in ours} == {"tfflows fit", "tfflows jit step"}, report
        for r in ours:
            rate = float(r["steps/s"])
            assert math.isfinite(rate) and rate > 0, r
            assert math.isfinite(float(r["last loss"])), r
        peer = [r for r in rows if r["model"] == model and r["implementation"] == "zuko eager"]
        assert len(peer) == 1, report
        if importlib.util.find_spec("zuko") is not None and importlib.util.find_spec("torch") is not None:
            assert math.isfinite(float(peer[0]["steps/s"])), peer
            assert float(peer[0]["vs torch eager"].rstrip("x")) == pytest.approx(1.0)
            assert peer[0]["params"] == ours[0]["params"], "zuko and tfflows sizes differ"
        else:
            assert "unavailable" in peer[0]["note"], peer
    glow = [r for r in rows if r["model"] == "Glow"]
    assert {r["d"] for r in glow} == {"8x8x3"}, report
    for r in glow:
        if r["implementation"].startswith("tfflows"):  # bits/dim of uniform levels: about 8
            assert math.isfinite(float(r["steps/s"])) and 0 < float(r["last loss"]) < 20, r
    peer = [r for r in glow if r["implementation"] == "normflows eager"]
    assert len(peer) == 1, report
    if importlib.util.find_spec("normflows") is not None:
        assert math.isfinite(float(peer[0]["steps/s"])) and 0 < float(peer[0]["last loss"]) < 20, peer
    else:
        assert "unavailable" in peer[0]["note"], peer
    assert {r["model"] for r in summary} == {"MAF", "NSF", "Glow"}
    assert {r["target (vs eager)"] for r in summary if r["model"] == "Glow"} == {"none"}


def test_cpu_small_runs_without_tensorflow(tmp_path):
    """The JAX path must not need TensorFlow or TFP: import them fails in this run."""
    report = _run(tmp_path, "--forbid-tensorflow", "--skip-zuko", "--skip-fit", "--models", "MAF")
    rows = _check_table(*_tables(report)[0])
    ours = [r for r in rows if r["implementation"] == "tfflows jit step"]
    assert ours and math.isfinite(float(ours[0]["steps/s"])), report
