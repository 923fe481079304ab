"""Autoregressive presets: `MAF`, `IAF` and `NSF` (spline coupling or spline autoregressive).

Each is a stack of `num_layers` flow layers with a permutation between consecutive layers
("reverse" by default, or seeded "random" permutations), on N(0, I). Conditional when
`context_features > 0`: pass `{"x": x, "context": c}` to `fit`/`call`, or `context=` to
`log_prob` and `sample`.
"""

import keras

from tfflows.bijectors.autoregressive import (
    InverseAutoregressive,
    MaskedAutoregressive,
    SplineAutoregressive,
)
from tfflows.bijectors.chain import Chain
from tfflows.bijectors.coupling import SplineCoupling
from tfflows.bijectors.linear import Permute, Reverse
from tfflows.flows.preset import Preset, normalization_layers


def _permutation(kind, seed, index):
    if kind == "reverse":
        return Reverse(name=f"reverse_{index}")
    if kind == "random":
        return Permute(seed=seed + index, name=f"permute_{index}")
    raise ValueError(f"permutation must be 'reverse' or 'random'; got {kind!r}.")


def _stack(make_layer, num_layers, permutation, seed, normalization=None):
    layers = []
    for i in range(num_layers):
        layers.append(make_layer(i))
        layers += normalization_layers(normalization, f"norm_{i}")
        if i < num_layers - 1:
            layers.append(_permutation(permutation, seed, i))
    return Chain(layers, name="chain")


def _check(features, num_layers, preset):
    features, num_layers = int(features), int(num_layers)
    if features < 1 or num_layers < 1:
        raise ValueError(
            f"{preset} needs features >= 1 and num_layers >= 1; got {features} and {num_layers}."
        )
    return features, num_layers


@keras.saving.register_keras_serializable(package="tfflows")
class MAF(Preset):
    """Masked autoregressive flow (Papamakarios et al. 2017): `num_layers` MADE-affine
    `MaskedAutoregressive` layers with permutations between them, on N(0, I).

    log p(x) = log N(z; 0, I) + sum over layers of sum_i s_i (one MADE pass per layer);
    `sample` runs each layer's inverse, D sequential passes per layer.

    Args:
        features: data dimension D.
        num_layers: autoregressive layers.
        hidden_units: widths of each layer's MADE.
        activation: of the MADE's hidden layers.
        permutation: between layers: "reverse" or seeded "random".
        seed: seeds the "random" permutations.
        normalization: None, "actnorm" or "batchnorm" after each layer.
        log_scale_clamp: soft bound on each affine log-scale.
        context_features: size of the conditioning vector (0: unconditional).
        **kwargs: of `Flow` (name, dtype).
    """

    layer_class = MaskedAutoregressive

    def __init__(
        self,
        features,
        num_layers=5,
        hidden_units=(64, 64),
        activation="relu",
        permutation="reverse",
        seed=0,
        normalization=None,
        log_scale_clamp=3.0,
        context_features=0,
        **kwargs,
    ):
        features, num_layers = _check(features, num_layers, type(self).__name__)
        cls = self.layer_class

        def make(i):
            return cls(
                hidden_units=hidden_units,
                activation=activation,
                log_scale_clamp=log_scale_clamp,
                context_features=context_features,
                name=f"{cls.__name__.lower()}_{i}",
            )

        arguments = dict(
            features=features,
            num_layers=num_layers,
            hidden_units=list(hidden_units),
            activation=activation,
            permutation=permutation,
            seed=seed,
            normalization=normalization,
            log_scale_clamp=log_scale_clamp,
            context_features=context_features,
        )
        super().__init__(
            _stack(make, num_layers, permutation, seed, normalization),
            event_shape=(features,),
            context_features=context_features,
            arguments=arguments,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="tfflows")
class IAF(MAF):
    """Inverse autoregressive flow (Kingma et al. 2016): like `MAF` with
    `InverseAutoregressive` layers. `sample` is one MADE pass per layer; `log_prob` of
    arbitrary data is D sequential passes per layer (train it with `tfflows.Distiller`).
    """

    layer_class = InverseAutoregressive


@keras.saving.register_keras_serializable(package="tfflows")
class NSF(Preset):
    """Neural spline flow (Durkan et al. 2019): rational-quadratic spline layers with
    `bins` bins on [-bound, bound] (identity tails) and permutations between layers.

    kind="autoregressive": `SplineAutoregressive` (MADE conditioner; density in one pass
    per layer, sampling D passes per layer). kind="coupling": `SplineCoupling` with
    half masks (MLP conditioner; both directions in one pass per layer); the
    permutation between layers moves the identity half into the transformed half.

    Args:
        features: data dimension D (at least 2 for kind="coupling").
        num_layers: spline layers.
        hidden_units: widths of each layer's conditioner.
        bins: spline bins on [-bound, bound].
        bound: half-width of the spline interval (identity outside).
        kind: "autoregressive" or "coupling" (above).
        activation: of the conditioner's hidden layers.
        permutation: between layers: "reverse" or seeded "random".
        seed: seeds the "random" permutations.
        normalization: None, "actnorm" or "batchnorm" after each layer.
        context_features: size of the conditioning vector (0: unconditional).
        **kwargs: of `Flow` (name, dtype).
    """

    def __init__(
        self,
        features,
        num_layers=5,
        hidden_units=(64, 64),
        bins=8,
        bound=5.0,
        kind="autoregressive",
        activation="relu",
        permutation="reverse",
        seed=0,
        normalization=None,
        context_features=0,
        **kwargs,
    ):
        features, num_layers = _check(features, num_layers, "NSF")
        make = _spline_layers(
            kind, features, hidden_units, bins, bound, activation, context_features
        )
        arguments = dict(
            features=features,
            num_layers=num_layers,
            hidden_units=list(hidden_units),
            bins=bins,
            bound=bound,
            kind=kind,
            activation=activation,
            permutation=permutation,
            seed=seed,
            normalization=normalization,
            context_features=context_features,
        )
        super().__init__(
            _stack(make, num_layers, permutation, seed, normalization),
            event_shape=(features,),
            context_features=context_features,
            arguments=arguments,
            **kwargs,
        )


def _spline_layers(kind, features, hidden_units, bins, bound, activation, context_features):
    """i -> the i-th spline layer of an `NSF` of that `kind`."""
    settings = dict(
        hidden_units=hidden_units,
        bins=bins,
        bound=bound,
        activation=activation,
        context_features=context_features,
    )
    if kind == "autoregressive":
        return lambda i: SplineAutoregressive(**settings, name=f"spline_autoregressive_{i}")
    if kind != "coupling":
        raise ValueError(f"kind must be 'autoregressive' or 'coupling'; got {kind!r}.")
    if features < 2:
        raise ValueError("NSF(kind='coupling') needs at least 2 features.")
    return lambda i: SplineCoupling(mask="half", **settings, name=f"spline_coupling_{i}")
