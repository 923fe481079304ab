"""The command line, run as a user types it (`python -m tfflows.cli ...` subprocesses): its
outputs, its one-line errors (exit status 2, no traceback, no file touched), its refusal to
overwrite files, and its quiet, fast start.

Bad inputs are checked with a poisoned `tensorflow` and `keras` on PYTHONPATH: a command
that imported either would fail differently, so every such error is proved to come before
TensorFlow loads (and hence before any training)."""

import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tfflows.cli import main

POISON = "raise ImportError('tfflows imported {0} before checking its inputs')\n"


def run_cli(*args, cwd, poisoned=None):
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command line must quiet TensorFlow itself
    if poisoned:
        env["PYTHONPATH"] = os.pathsep.join([str(poisoned), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "tfflows.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)


def snapshot(folder):
    """Every file under folder with the hash of its bytes."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, folder)] = hashlib.md5(handle.read()).hexdigest()
    return found


def assert_one_line_error(result, *fragments):
    lines = result.stderr.splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert lines[0].startswith("tfflows"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def assert_quiet(result):
    """Exit 0; nothing on stderr (no TensorFlow, absl or CUDA lines); stdout plain text."""
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == "", result.stderr[-3000:]
    assert "\x1b" not in result.stdout and "\r" not in result.stdout


# ----- files a user may have lying around -----------------------------------------------------
@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("user")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    np.savetxt(d / "data.csv", x, delimiter=",", header="a,b", comments="")
    (d / "one.csv").write_text("a,b\n1.5,2.5\n")
    (d / "few.csv").write_text("a,b\n" + "".join(f"{u:.3f},{v:.3f}\n" for u, v in x[:5]))
    np.savetxt(d / "wide.csv", rng.normal(size=(3, 50)), delimiter=",")
    np.savetxt(d / "const.csv", np.c_[x, np.full(200, 3.0)], delimiter=",", header="a,b,c",
               comments="")
    np.savetxt(d / "dup.csv", np.c_[x, x[:, 0]], delimiter=",", header="a,b,a2", comments="")
    np.savetxt(d / "ints.csv", rng.integers(0, 5, size=(200, 2)), delimiter=",", fmt="%d",
               header="u,v", comments="")
    np.save(d / "ints.npy", rng.integers(0, 5, size=(200, 2)))
    nan = x.copy()
    nan[3, 1] = np.nan
    np.save(d / "nan.npy", nan)
    lines = ["a,b"] + [f"{u:.3f},{v:.3f}" for u, v in x[:30]]
    lines[5], lines[19], lines[25] = "NA,1.0", "inf,2.0", "1.0,-inf"  # lines 6, 20 and 26
    (d / "naninf.csv").write_text("\n".join(lines) + "\n")
    (d / "existing.txt").write_text("precious\n")
    (d / "junk.keras").write_bytes(b"not a zip archive")
    np.save(d / "images.npy", rng.integers(0, 4, size=(20, 4, 4, 1)))
    (d / "bad_cell.csv").write_text("a,b\n1,2\n3,x\n")
    (d / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n")
    (d / "empty.csv").write_text("")
    (d / "served" / "1").mkdir(parents=True)
    (d / "served" / "1" / "saved_model.pb").write_bytes(b"")
    (d / "served.keras").write_bytes(b"")
    (d / "taken").mkdir()
    (d / "taken" / "data_realnvp_metrics.json").write_text("precious\n")
    (d / "shards").mkdir()
    for i in range(2):
        np.savetxt(d / "shards" / f"part-{i}.csv", np.c_[x, np.full(200, 1.0)], delimiter=",",
                   header="a,b,c", comments="")
    poison = tmp_path_factory.mktemp("poison")
    for module in ("tensorflow", "keras"):
        (poison / module).mkdir()
        (poison / module / "__init__.py").write_text(POISON.format(module))
    return d, poison


BAD_INPUTS = [
    (["fit", "one.csv"], ["one.csv has 1 row(s)", "at least 10 rows"]),
    (["fit", "few.csv"], ["few.csv has 5 row(s)", "at least 10 rows"]),
    (["fit", "wide.csv"], ["3 row(s) of 50 column(s)", "at least 100 rows"]),
    (["fit", "const.csv"], ["constant column(s) 'c'", "--columns a,b"]),
    (["fit", "dup.csv"], ["'a2' repeats 'a'", "--columns a,b"]),
    (["fit", "ints.csv"], ["whole numbers", "--dequantize"]),
    (["info", "ints.csv"], ["whole numbers", "--dequantize"]),
    (["fit", "ints.npy"], ["whole numbers", "--dequantize"]),
    (["fit", "naninf.csv"], ["2 row(s) with Inf", "the first is line 20, data row 19"]),
    (["fit", "nan.npy"], ["1 row(s) with NaN or Inf", "the first is x[3]"]),
    (["fit", "data.csv", "--out", "data.csv"], ["--out data.csv is a file"]),
    (["fit", "data.csv", "--model", "realnvp", "--out", "taken"],
     ["data_realnvp_metrics.json already exists", "--force"]),
    (["sample", "junk.keras", "--out", "existing.txt"], ["existing.txt already exists"]),
    (["sample", "junk.keras", "--out", "data.csv"], ["data.csv already exists"]),
    (["sample", "junk.keras", "--out", "samples.dat"], ["unknown file type '.dat'"]),
    (["sample", "junk.keras", "--out", "nodir/s.csv"], ["the folder nodir does not exist"]),
    (["sample", "missing.keras"], ["No such file: missing.keras"]),
    (["sample", "served/1"], ["served/1 is a SavedModel", "use served.keras"]),
    (["score", "served", "data.csv"], ["served is a folder", "served.keras"]),
    (["score", "missing.keras", "data.csv"], ["No such file: missing.keras"]),
    (["fit", "missing.csv"], ["neither an embedded dataset"]),
    (["fit", "data.csv", "--model", "glow"], ["models images"]),
    (["fit", "images.npy", "--model", "maf"], ["--model realnvp or --model glow"]),
    (["fit", "data.csv", "few.csv"], ["--stream"]),
    (["fit", "data.csv", "--columns", "nope"], ["no column 'nope'"]),
    (["fit", "bad_cell.csv"], ["line 3", "non-numeric value 'x'"]),
    (["fit", "ragged.csv"], ["line 3", "3 columns, expected 2"]),
    (["fit", "empty.csv"], ["is empty"]),
    (["fit", "shards/*.csv", "--stream"], ["constant column(s) 'c'", "--columns a,b"]),
    (["fit", "shards/*.csv", "--stream", "--dequantize"], ["dequantize the files first"]),
    (["fit", "nowhere/*.csv", "--stream"], ["No such file"]),
    (["fit", "--epochs", "0"], ["--epochs: must be greater than 0"]),
    (["fit", "--seed", "-1"], ["--seed: must be between 0"]),
    (["fit", "--learning-rate", "-0.001"], ["must be greater than 0"]),
    (["fit", "--n", "ten"], ["expected an integer"]),
    (["fit", "data.csv", "--delimiter", "ab"], ["must be one character"]),
    (["fit", "--model", "nonsense"], ["invalid choice: 'nonsense'"]),
    (["sample", "junk.keras", "-n", "0"], ["must be greater than 0"]),
    ([], ["the following arguments are required"]),
]


@pytest.mark.parametrize("args, fragments", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_before_tensorflow_and_touches_nothing(workdir, args, fragments):
    folder, poison = workdir
    before = snapshot(folder)
    result = run_cli(*args, cwd=folder, poisoned=poison)
    assert_one_line_error(result, *fragments)
    assert snapshot(folder) == before


def test_help_is_fast_and_needs_no_tensorflow(workdir):
    folder, poison = workdir
    start = time.perf_counter()
    result = run_cli("--help", cwd=folder, poisoned=poison)
    seconds = time.perf_counter() - start
    assert result.returncode == 0 and "fit" in result.stdout and result.stderr == ""
    assert seconds < 3.0, seconds  # about 0.3 s; generous for a loaded machine


def test_dropped_rows_and_errors_count_rows_as_the_file_does(workdir):
    folder, poison = workdir
    result = run_cli("fit", "naninf.csv", cwd=folder, poisoned=poison)
    assert "Dropped 1 row(s) with missing values (the first is line 6, data row 5)" in result.stdout
    assert "the first is line 20, data row 19" in result.stderr


# ----- commands that train (TensorFlow) -------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(workdir):
    folder, _ = workdir
    result = run_cli("fit", "eight_gaussians", "--model", "nice", "--epochs", "1", "--n", "300",
                     "--out", "run", cwd=folder)
    return folder / "run", result


def test_fit_writes_every_output_quietly_with_plain_progress(fitted):
    out, result = fitted
    assert_quiet(result)
    assert os.path.isfile(out / "eight_gaussians_nice" / "1" / "saved_model.pb")
    for name in ("eight_gaussians_nice.keras", "eight_gaussians_nice_metrics.json",
                 "eight_gaussians_nice_density.png", "eight_gaussians_nice_layers.png",
                 "eight_gaussians_nice_training.png"):
        assert os.path.getsize(out / name) > 100
        assert str(out.name + os.sep + name) in result.stdout  # the paths printed are written
    metrics = json.loads((out / "eight_gaussians_nice_metrics.json").read_text())
    assert metrics["epochs"] == 1 and np.isfinite(metrics["val_nll"])
    assert metrics["total_seconds"] >= metrics["fit_seconds"] > 0
    assert "Epoch 1/1: loss" in result.stdout
    assert "in all since the command started" in result.stdout


def test_fit_refuses_its_own_earlier_outputs_unless_forced(fitted, workdir):
    out, _ = fitted
    folder, poison = workdir
    before = snapshot(out)
    result = run_cli("fit", "eight_gaussians", "--model", "nice", "--epochs", "1", "--n", "300",
                     "--out", "run", cwd=folder, poisoned=poison)
    assert_one_line_error(result, "eight_gaussians_nice.keras already exists", "--force")
    assert snapshot(out) == before


def test_sample_writes_exactly_the_named_file_and_score_reads_it(fitted, workdir):
    out, _ = fitted
    folder, _ = workdir
    (folder / "drawn.txt").write_text("precious\n")
    model = os.path.join(out.name, "eight_gaussians_nice.keras")
    result = run_cli("sample", model, "-n", "7", "--seed", "1", "--out", "drawn.txt", "--force",
                     cwd=folder)
    assert_quiet(result)
    assert "Wrote 7 samples to drawn.txt" in result.stdout
    assert np.loadtxt(folder / "drawn.txt", delimiter=",").shape == (7, 2)
    assert not os.path.exists(folder / "drawn.txt.npy")
    result = run_cli("score", model, "drawn.txt", cwd=folder)
    assert_quiet(result)
    scores = np.array(result.stdout.split(), dtype=float)
    assert scores.shape == (7,) and np.all(np.isfinite(scores))


def test_greedy_fit_reports_blocks_and_force_replaces_outputs(workdir):
    folder, _ = workdir
    result = run_cli("fit", "data.csv", "--model", "rbig", "--out", "taken", "--force",
                     cwd=folder)
    assert_quiet(result)
    metrics = json.loads((folder / "taken" / "data_rbig_metrics.json").read_text())
    assert metrics["blocks"] >= 1 and "epochs" not in metrics
    blocks = f"{metrics['blocks']} block{'s' if metrics['blocks'] > 1 else ''}"
    assert f"after {blocks} (of {metrics['blocks_fitted']} fitted)" in result.stdout
    assert "epoch" not in result.stdout.lower()
    assert (folder / "taken" / "data_realnvp_metrics.json").read_text() == "precious\n"


def test_streamed_fit_writes_the_same_outputs_named_after_the_folder(workdir):
    folder, _ = workdir
    shards = folder / "stream_in"
    shards.mkdir()
    x = np.random.default_rng(1).normal(size=(600, 2))
    for i in range(2):
        np.savetxt(shards / f"part-{i}.csv", x[i::2], delimiter=",", header="a,b", comments="")
    result = run_cli("fit", "stream_in/*.csv", "--stream", "--model", "nice", "--epochs", "1",
                     "--out", "streamed", cwd=folder)
    assert_quiet(result)
    names = set(os.listdir(folder / "streamed"))
    assert names == {"stream_in_nice", "stream_in_nice.keras", "stream_in_nice_metrics.json",
                     "stream_in_nice_training.png", "stream_in_nice_density.png",
                     "stream_in_nice_layers.png"}
    metrics = json.loads((folder / "streamed" / "stream_in_nice_metrics.json").read_text())
    assert metrics["files"] == 2 and np.isfinite(metrics["val_nll"])


# ----- in-process checks (the same `main`) ----------------------------------------------------
def test_corrupt_and_foreign_keras_files_get_the_loaders_messages(tmp_path, capsys):
    import keras

    path = tmp_path / "dense.keras"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(path)
    assert main(["sample", str(path)]) == 2
    err = capsys.readouterr().err
    assert "holds a Keras Sequential, not a tfflows flow" in err and len(err.splitlines()) == 1
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(path.read_bytes()[:3000])
    data = tmp_path / "rows.csv"
    data.write_text("a,b\n0.1,0.2\n")
    assert main(["score", str(truncated), str(data)]) == 2
    err = capsys.readouterr().err
    assert "truncated or corrupt" in err and "safe_mode" not in err and len(err.splitlines()) == 1


def test_info_reports_entropy_and_total_correlation(tmp_path, capsys):
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    path = tmp_path / "gauss.npy"
    np.save(path, rng.multivariate_normal([0, 0], cov, size=1500))
    assert main(["info", str(path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert abs(result["total_correlation_nats"] - (-0.5 * np.log(1 - 0.8**2))) < 0.1
    exact_entropy = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * cov))
    assert abs(result["entropy_nats"] - exact_entropy) < 0.1


def test_dequantize_flag_adds_noise_to_whole_number_columns(tmp_path, capsys):
    path = tmp_path / "counts.csv"
    rng = np.random.default_rng(0)
    np.savetxt(path, np.c_[rng.poisson(20, 1500), rng.normal(size=1500)], delimiter=",",
               header="count,x", comments="", fmt=["%d", "%.5f"])
    assert main(["info", str(path), "--dequantize"]) == 0
    out = capsys.readouterr().out
    assert "Dequantized 1 whole-number column(s)" in out
    assert json.loads(out[out.index("{"):])["rows"] == 1500


def test_csv_reader_takes_quotes_missing_cells_ids_columns_and_delimiters(tmp_path, capsys):
    from tfflows.data.loading import load_data

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(30, 2))
    lines = ['"id";"a";"b";"note"']
    for i, (a, b) in enumerate(rows):
        lines.append(f'"row{i}";"{a:.6f}";{b:.6f};"x, y"')
    lines[3] = '"row2";NA;1.0;"-"'          # a missing value
    lines[5] = '"row4";;2.0;"-"'            # an empty cell
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines) + "\n")
    data, _ = load_data(str(path), report=print)  # ';' detected, quoted numbers, ids left out
    out = capsys.readouterr().out
    assert data.shape == (28, 2) and "id, note" in out and "Dropped 2 row(s)" in out
    assert "the first is line 4, data row 3" in out
    np.testing.assert_allclose(data[0], rows[0], atol=1e-5)
    only_b, _ = load_data(str(path), columns=["b"], delimiter=";")
    assert only_b.shape == (30, 1)         # no missing value in column b
    by_position, _ = load_data(str(path), columns=["2", "1"])
    np.testing.assert_allclose(by_position[0], rows[0][::-1], atol=1e-5)
    assert main(["info", str(path), "--columns", "id"]) == 2
    assert "not numeric" in capsys.readouterr().err


def test_score_keeps_one_line_per_row_with_missing_values(fitted, tmp_path, capsys):
    out, _ = fitted
    path = tmp_path / "score.csv"
    path.write_text("x,y\n0.1,0.2\nNA,0.3\n0.0,0.0\n")
    assert main(["score", str(out / "eight_gaussians_nice.keras"), str(path)]) == 0
    captured = capsys.readouterr()
    values = captured.out.split()
    assert len(values) == 3 and values[1] == "nan" and np.isfinite(float(values[0]))
    assert "line 3, data row 2" in captured.err
