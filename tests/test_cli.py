"""The command line, run as a user would (subprocesses), and its one-line errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfflows.cli import main


def run_cli(*args, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "tfflows.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = run_cli("fit", "eight_gaussians", "--epochs", "2", "--n", "1000", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_fit_writes_model_savedmodel_metrics_and_pictures(fitted):
    out, result = fitted
    names = set(os.listdir(out))
    # TF Serving reads <model_base_path>/<version>/saved_model.pb
    assert os.path.isfile(out / "eight_gaussians_realnvp" / "1" / "saved_model.pb")
    for name in ("eight_gaussians_realnvp.keras", "eight_gaussians_realnvp",
                 "eight_gaussians_realnvp_metrics.json", "eight_gaussians_realnvp_density.png",
                 "eight_gaussians_realnvp_layers.png", "eight_gaussians_realnvp_training.png"):
        assert name in names
        path = os.path.join(out, name)
        assert os.path.isdir(path) or os.path.getsize(path) > 100
    metrics = json.loads((out / "eight_gaussians_realnvp_metrics.json").read_text())
    assert metrics["epochs"] == 2 and np.isfinite(metrics["val_nll"])
    assert "Epoch 2/2" in result.stdout


def test_sample_and_score(fitted, tmp_path):
    out, _ = fitted
    model = str(out / "eight_gaussians_realnvp.keras")
    samples = tmp_path / "samples.csv"
    result = run_cli("sample", model, "-n", "7", "--seed", "1", "--out", str(samples))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = np.loadtxt(samples, delimiter=",")
    assert rows.shape == (7, 2)
    result = run_cli("score", model, str(samples))
    assert result.returncode == 0, result.stderr[-2000:]
    scores = np.array(result.stdout.split(), dtype=float)
    assert scores.shape == (7,) and np.all(np.isfinite(scores))


def test_bad_input_is_one_line_not_a_traceback(tmp_path):
    result = run_cli("fit", str(tmp_path / "missing.csv"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "neither an embedded dataset" in result.stderr


@pytest.mark.parametrize("args", [["fit", "--epochs", "-3"], ["fit", "--epochs", "0"], ["fit", "--batch-size", "0"],
                                  ["fit", "--learning-rate", "-0.001"], ["fit", "--n", "ten"], ["sample", "m.keras", "-n", "0"]])
def test_non_positive_counts_are_rejected_by_the_parser(capsys, args):
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "must be greater than 0" in err or "expected an integer" in err


@pytest.mark.parametrize("content, message", [
    ("a,b\n1,2\n3,x\n", "non-numeric value 'x'"),
    ("a,b\n1,2\n3,4,5\n", "3 columns, expected 2"),
    ("", "is empty"),
])
def test_bad_csv_files(tmp_path, capsys, content, message):
    path = tmp_path / "data.csv"
    path.write_text(content)
    assert main(["fit", str(path), "--epochs", "1"]) == 2
    assert message in capsys.readouterr().err


def test_bad_model_names_and_files(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--model", "nonsense"])
    assert "invalid choice" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "none.keras")]) == 2
    assert "No model at" in capsys.readouterr().err
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip file")
    assert main(["sample", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "Could not load" in err or "not a valid" in err.lower() or "corrupt" in err.lower()
    ints = tmp_path / "ints.npy"
    np.save(ints, np.ones((10, 2), dtype="int64"))
    assert main(["fit", str(ints)]) == 2
    assert "Dequantize" in capsys.readouterr().err
    nan = tmp_path / "nan.npy"
    arr = np.zeros((10, 2), dtype="float32")
    arr[3, 1] = np.nan
    np.save(nan, arr)
    assert main(["fit", str(nan)]) == 2
    assert "first is row 3" in capsys.readouterr().err


def test_info_reports_entropy_and_total_correlation(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.multivariate_normal([0, 0], [[1.0, 0.8], [0.8, 1.0]], size=1500)
    path = tmp_path / "gauss.npy"
    np.save(path, x)
    assert main(["info", str(path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert abs(result["total_correlation_nats"] - (-0.5 * np.log(1 - 0.8**2))) < 0.1
    exact_entropy = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * np.array([[1.0, 0.8], [0.8, 1.0]])))
    assert abs(result["entropy_nats"] - exact_entropy) < 0.1


def test_images_need_an_image_model_and_tables_refuse_glow(tmp_path, capsys):
    images = tmp_path / "images.npy"
    np.save(images, np.random.default_rng(0).integers(0, 4, size=(20, 4, 4, 1)))
    assert main(["fit", str(images), "--model", "maf"]) == 2
    assert "--model realnvp or --model glow" in capsys.readouterr().err
    assert main(["fit", "moons", "--model", "glow"]) == 2
    assert "models images" in capsys.readouterr().err


def test_csv_reader_takes_quotes_missing_cells_ids_columns_and_delimiters(tmp_path, capsys):
    from tfflows.cli import load_data

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(30, 2))
    lines = ['"id";"a";"b";"note"']
    for i, (a, b) in enumerate(rows):
        lines.append(f'"row{i}";"{a:.6f}";{b:.6f};"x, y"')
    lines[3] = '"row2";NA;1.0;"-"'          # a missing value
    lines[5] = '"row4";;2.0;"-"'            # an empty cell
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines) + "\n")
    data, _ = load_data(str(path))          # ';' detected, quoted numbers read, string columns left out
    out = capsys.readouterr().out
    assert data.shape == (28, 2) and "id, note" in out and "Dropped 2 row(s)" in out
    np.testing.assert_allclose(data[0], rows[0], atol=1e-5)
    only_b, _ = load_data(str(path), columns="b", delimiter=";")
    assert only_b.shape == (30, 1)         # no missing value in column b
    by_position, _ = load_data(str(path), columns="2,1")
    np.testing.assert_allclose(by_position[0], rows[0][::-1], atol=1e-5)
    assert main(["info", str(path), "--columns", "nope"]) == 2
    assert "no column 'nope'" in capsys.readouterr().err
    assert main(["info", str(path), "--columns", "id"]) == 2
    assert "not numeric" in capsys.readouterr().err


def test_score_keeps_one_line_per_row_with_missing_values(fitted, tmp_path, capsys):
    out, _ = fitted
    path = tmp_path / "score.csv"
    path.write_text("x,y\n0.1,0.2\nNA,0.3\n0.0,0.0\n")
    assert main(["score", str(out / "eight_gaussians_realnvp.keras"), str(path)]) == 0
    values = capsys.readouterr().out.split()
    assert len(values) == 3 and values[1] == "nan" and np.isfinite(float(values[0]))
