"""Models saved before the package moved into subpackages still load and give the same
log-densities: every registered name is unchanged (fixtures in tests/fixtures/layout_v0_1,
written by the 0.1 flat layout)."""

import os

import keras
import numpy as np
import pytest

import tfflows as tff

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="the fixtures hold TFP wrappers (TensorFlow backend)")

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "layout_v0_1")
NAMES = ["realnvp", "nice", "maf", "iaf", "nsf", "nsf_coupling", "rbig", "gf", "glow", "custom"]


@pytest.mark.parametrize("name", NAMES)
def test_model_saved_by_the_flat_layout_loads_with_the_same_log_prob(name):
    expected = np.load(os.path.join(FIXTURES, "log_prob.npz"))
    model = tff.load_model(os.path.join(FIXTURES, f"{name}.keras"))
    x = expected["img"] if name == "glow" else expected["x4"]
    got = keras.ops.convert_to_numpy(model.log_prob(x))
    np.testing.assert_allclose(got, expected[name], rtol=1e-5, atol=1e-5)
