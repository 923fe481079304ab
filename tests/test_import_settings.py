"""What the command line sets for TensorFlow before it loads: its oneDNN CPU kernels on,
unless the user chose otherwise. The library itself writes no environment variable
(tests/test_architecture.py)."""

import os
import subprocess
import sys

import keras
import pytest

PROBE = ("import os\nfrom tfflows.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
         "print(os.environ['TF_ENABLE_ONEDNN_OPTS'])")


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow setting")
@pytest.mark.parametrize("given, expected", [(None, "1"), ("0", "0")])
def test_command_line_turns_onednn_on_unless_the_user_chose(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if given is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = given
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert out[-1] == expected
