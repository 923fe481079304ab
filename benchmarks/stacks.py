"""The presets of benchmarks/run.py rebuilt from public layers (`tff.Chain` + `tff.Flow`),
so that a benchmark can hand every layer another conditioner network through the layers'
`conditioner=` argument instead of patching the library.

    flow = stacks.build("MAF", 64, config, made=lambda params, hidden: MyMADE(params, hidden))

`made(params_per_feature, hidden_units)` makes the conditioner of an autoregressive layer
(MAF, NSF): a Keras layer x (batch, D) -> (batch, P, D) respecting the layer's order
("given"). `mlp(out_features, hidden_units)` makes the conditioner of a coupling layer
(RealNVP): x_a (batch, n_a) -> (batch, out_features). Left None, they are tfflows' own
`MADE` / `MLP`, and the stack is the preset, layer for layer (`max_difference_to_preset`
checks it on the same seed).
"""

import numpy as np

KINDS = ("MAF", "NSF", "RealNVP")
BINS = 8  # the NSF size of benchmarks/run.py (zuko's default)


def _default_made(params, hidden):
    import tfflows as tff

    return tff.MADE(params, hidden_units=hidden, name="made")


def _default_mlp(out, hidden):
    import tfflows as tff

    return tff.MLP(out, hidden_units=hidden, name="conditioner")


def build(kind, features, config, made=None, mlp=None):
    """The `kind` preset at `config.num_layers` layers and `config.hidden_units`, as a
    `tff.Flow` of explicit layers with conditioners from `made` / `mlp`."""
    import tfflows as tff

    made, mlp = made or _default_made, mlp or _default_mlp
    hidden, layers = tuple(config.hidden_units), []
    for i in range(config.num_layers):
        if kind == "MAF":
            layers.append(tff.MaskedAutoregressive(hidden_units=hidden, conditioner=made(2, hidden),
                                                   name=f"maskedautoregressive_{i}"))
        elif kind == "NSF":
            layers.append(tff.SplineAutoregressive(hidden_units=hidden, bins=BINS,
                                                   conditioner=made(3 * BINS - 1, hidden),
                                                   name=f"spline_autoregressive_{i}"))
        elif kind == "RealNVP":
            flip = bool(i % 2)
            identity = (features + 1) // 2 if not flip else features // 2  # "alternate": even indices
            layers.append(tff.AffineCoupling(mask="alternate", flip=flip, hidden_units=hidden,
                                             conditioner=mlp(2 * (features - identity), hidden),
                                             name=f"coupling_{i}"))
            layers.append(tff.ActNorm(name=f"norm_{i}"))
        else:
            raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
        if kind != "RealNVP" and i < config.num_layers - 1:
            layers.append(tff.Reverse(name=f"reverse_{i}"))
    return tff.Flow(tff.Chain(layers, name="chain"), event_shape=(features,))


def preset(kind, features, config):
    import tfflows as tff

    extra = {"bins": BINS} if kind == "NSF" else {}
    return getattr(tff, kind)(features, num_layers=config.num_layers, hidden_units=tuple(config.hidden_units),
                              **extra)


def max_difference_to_preset(kind, features, config, x):
    """max |log p(x)| difference between `build(kind)` with the default conditioners and
    the preset, both seeded alike (so their initial weights are drawn alike too), after
    giving both the same random weights (zero last layers would hide a difference)."""
    import keras

    flows = []
    for make in (build, preset):
        keras.utils.set_random_seed(config.seed)
        flow = make(kind, features, config)
        flow(x)
        flows.append(flow)
    if len(flows[0].weights) != len(flows[1].weights):
        return float("inf")
    rng = np.random.default_rng(1)
    weights = [rng.normal(scale=0.05, size=w.shape).astype(w.dtype) for w in flows[1].weights]
    for flow in flows:
        flow.set_weights(weights)
    return float(np.max(np.abs(np.asarray(flows[0].log_prob(x)) - np.asarray(flows[1].log_prob(x)))))
