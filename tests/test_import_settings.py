"""What `import tfflows` sets in the process: TensorFlow's oneDNN CPU kernels on unless the
user chose otherwise (TensorFlow reads the variable when it loads)."""

import os
import subprocess
import sys

import keras
import pytest

PROBE = ("import os, tfflows; from tensorflow.python.util import _pywrap_util_port as p; "
         "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], p.IsMklEnabled())")


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow setting")
@pytest.mark.parametrize("given, expected", [(None, "1 True"), ("0", "0 False")])
def test_import_turns_onednn_on_unless_the_user_chose(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if given is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = given
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert " ".join(out[-2:]) == expected
