"""Reporting shared by the benchmark scripts: the machine header, the protocol's Markdown
table (every timing with its ratio to a peer of the same run), and writing a result page.

Imports nothing of tfflows or TensorFlow at module level (bench_gpu.py runs without it).
"""

import datetime
import importlib.metadata
import math
import os
import platform
import shlex
import sys
import traceback

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _version(distribution):
    """Installed version of a distribution, without importing it (None if absent)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_header():
    """Lines describing the machine and library versions."""
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    versions = [f"{m} {v}" for m in ("tfflows", "tensorflow", "keras", "tensorflow-probability", "numpy",
                                     "scikit-learn", "torch", "zuko", "jax") if (v := _version(m)) is not None]
    return [f"- Machine: {cores} cores ({usable} usable), {cpu}; load average at start {load}; "
            f"Python {platform.python_version()} on {platform.system()}",
            f"- Libraries: {', '.join(versions)}"]


def command_line(script, argv=None):
    """The command that produced a page, as a user would type it."""
    return shlex.join(["python", f"benchmarks/{script}", *(sys.argv[1:] if argv is None else argv)])


def default_out(stem, quick=False, dated=True):
    """benchmarks/results/<stem>.md (dated=False: the page BENCHMARKS.md cites, rewritten), or
    <stem>_<date>[_quick].md, a new file; a --quick run never overwrites a cited page."""
    if not (dated or quick):
        return os.path.join(RESULTS, f"{stem}.md")
    return os.path.join(RESULTS, f"{stem}_{datetime.datetime.now():%Y-%m-%d_%H%M}{'_quick' if quick else ''}.md")


def write(path, text):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    shown = os.path.relpath(path)
    print(f"Written to {path if shown.startswith('..') else shown}", flush=True)


def write_with_records(path, text, records):
    """Write a result page and its records beside it (path + ".json"), then print the page."""
    import json

    write(path, text)
    with open(path + ".json", "w") as f:
        json.dump(records, f)
    print(text)


def where_in_tfflows(exc):
    """'tfflows/file.py:line in function' of the innermost tfflows frame of an exception, or ''."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f"{os.sep}tfflows{os.sep}" in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    return f"tfflows{f.filename.rsplit(os.sep + 'tfflows', 1)[1]}:{f.lineno} in {f.name}"


def fmt(value, digits=2):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if abs(value) >= 1e6:
        return f"{value:.2e}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def ratio(value, reference):
    if not (isinstance(value, float) and isinstance(reference, float)) or not math.isfinite(value) \
            or not math.isfinite(reference) or reference == 0:
        return ""
    return f" ({value / reference:.2f}×)"


def markdown_table(results, peer):
    """One Markdown table per dataset; every timing also as a ratio to the row named
    `peer` (e.g. "TFP MAF") of the same dataset."""
    lines = []
    for dataset in dict.fromkeys(r.dataset for r in results):
        rows = [r for r in results if r.dataset == dataset]
        ref = next((r for r in rows if r.model == peer and not r.failed), None)
        lines += [f"### {dataset} (ratios to {peer if ref is not None else f'{peer} (absent, no ratios)'})", "",
                  "| model | library | params | test NLL (nats) | non-finite test rows | epochs (best) "
                  "| train steps/s (× peer) | steps per CPU s (× peer) | wall s (× peer) | samples/s (× peer) | note |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in rows:
            if r.failed:
                lines.append(f"| {r.model} | {r.library} | — | failed | — | — | — | — | — | — | {r.failed} |")
                continue
            nll = fmt(r.test_nll) if not r.nonfinite_test else f"inf/nan (finite rows: {fmt(r.test_nll_finite)})"
            cells = [fmt(getattr(r, k), d) + (ratio(getattr(r, k), getattr(ref, k)) if ref else "")
                     for k, d in (("steps_per_s", 2), ("steps_per_cpu_s", 2), ("wall_s", 1), ("samples_per_s", 2))]
            note = r.note + (("; " if r.note else "") + f"{r.nonfinite_samples} non-finite samples"
                             if r.nonfinite_samples else "")
            lines.append(f"| {r.model} | {r.library} | {r.params:,} | {nll} | {r.nonfinite_test}/{r.n_test} "
                         f"| {r.epochs} ({r.best_epoch}) | {' | '.join(cells)} | {note} |")
        lines.append("")
    return "\n".join(lines)


def markdown_report(results, config, peer, command=None, title="tfflows benchmark run", machine=None,
                    started=None, extra=()):
    """The full Markdown page of one run: header (date, command, machine, versions,
    protocol, `extra` lines) and the tables. Pass `machine` (from `machine_header()`)
    and `started` captured when the run began, so the load average is the one at start."""
    started = started or datetime.datetime.now()
    header = [f"# {title} ({started.strftime('%Y-%m-%d %H:%M')})", ""]
    if command:
        header += [f"Command: `{command}`", ""]
    header += list(machine or machine_header())
    header += [
        f"- Protocol: {config.describe()}.",
        "- Data: digits = scikit-learn `load_digits`, uniform dequantization + logit (64-D); breast_cancer = "
        "`load_breast_cancer`, log1p of shifted features (30-D); 60/20/20 split standardized with train statistics.",
        "- Test NLL: mean negative log-likelihood over the test rows in nats (lower is better). "
        "Steps/s: training steps per second over the epochs after the first (tracing excluded, validation excluded); "
        "steps per CPU s: the same steps per second of process CPU time (all threads; robust to other jobs' load, "
        "since every library is limited to the same threads). "
        "Wall s: the whole fit, tracing and validation included. Samples/s: second call of `sample(n)`.",
        f"- Timings are shown with their ratio to **{peer}** measured in the same run. The machine is shared with "
        "other jobs, so absolute timings are not comparable across runs; only the ratios within this run mean anything.",
        *extra, ""]
    return "\n".join(header) + "\n" + markdown_table(results, peer)


def print_result(result, stream=sys.stdout):
    if result.failed:
        print(f"[{result.dataset}] {result.model} ({result.library}): FAILED {result.failed}", file=stream, flush=True)
        return
    print(f"[{result.dataset}] {result.model} ({result.library}): test NLL {result.test_nll:.3f} "
          f"(non-finite {result.nonfinite_test}), {result.steps_per_s:.1f} steps/s, wall {result.wall_s:.1f}s, "
          f"{result.samples_per_s:.0f} samples/s, epochs {result.epochs} (best {result.best_epoch}) {result.note}",
          file=stream, flush=True)
