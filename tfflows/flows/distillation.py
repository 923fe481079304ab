"""Probability density distillation (van den Oord et al. 2018, Parallel WaveNet,
arXiv:1711.10433): train a fast-sampling student (usually an `IAF`) to match a trained
teacher flow (usually a `MAF`) by minimizing the reverse KL divergence

    KL(q || p) = E_{x ~ q}[log q(x) - log p(x)],   q = student, p = teacher,

estimated by Monte Carlo with the student's own samples. A student whose sampling
direction is one network pass (IAF) gets each sample AND its log-density in that one
pass:  z ~ base,  (x, log|dx/dz|) = student.inverse(z),  log q(x) = log p_Z(z) - log|dx/dz|;
the teacher only evaluates log p(x), its cheap direction for a MAF. Gradients flow
through x into the teacher's density (reparameterization); the teacher stays frozen.
"""

import keras
import numpy as np
from keras import ops

from tfflows.flows.callbacks import StopOnNonFiniteLoss


@keras.saving.register_keras_serializable(package="tfflows")
class Distiller(keras.Model):
    """A Keras model whose `fit` distills `teacher` into `student`.

    The training loss is the Monte Carlo estimate of KL(student || teacher) in nats over
    `samples_per_step` student samples (the progress bar's and History's "loss").

    Unconditional: `Distiller(student, teacher).fit(epochs=E, steps_per_epoch=S)`.
    Conditional: `fit(contexts, batch_size=B, epochs=E)`: each batch of context rows
    draws one student sample per row; `samples_per_step` is then unused.

    Args:
        student: a `Flow` (usually `tfflows.IAF`); its weights are trained.
        teacher: a trained `Flow`; frozen (`trainable = False`).
        samples_per_step: Monte Carlo samples per training step (unconditional).
        seed: seed of the student's base samples.
    """

    def __init__(self, student, teacher, samples_per_step=256, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.samples_per_step = int(samples_per_step)
        self.seed = seed
        self._seed_generator = keras.random.SeedGenerator(seed)
        student._ensure_built()
        teacher._ensure_built()
        if tuple(student.event_shape) != tuple(teacher.event_shape):
            raise ValueError(
                f"student event shape {student.event_shape} differs from the teacher's "
                f"{teacher.event_shape}."
            )

    def build(self, input_shape=None):
        self.student._ensure_built()
        self.teacher._ensure_built()
        self.built = True

    def sample_and_log_prob(self, n=None, context=None, training=False):
        """Student samples x and log q(x) from one pass of the student's inverse."""
        if context is not None:
            context = ops.cast(context, self.student.compute_dtype)
        n = self.samples_per_step if n is None else n
        return self.student.draw(n, self._seed_generator, context, training=training)

    # ----- training -------------------------------------------------------------------
    def call(self, inputs, training=False):
        """Per-sample log q(x) - log p(x) for x ~ student; `inputs` is the context
        batch (conditional) or ignored (unconditional)."""
        context = inputs if self.student.context_features else None
        x, log_q = self.sample_and_log_prob(context=context, training=training)
        teacher_inputs = x if context is None else {"x": x, "context": context}
        log_p = self.teacher(teacher_inputs, training=False)
        return log_q - ops.cast(log_p, log_q.dtype)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = ops.mean(y_pred)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def fit(
        self, x=None, epochs=1, steps_per_epoch=None, batch_size=None, callbacks=None, **kwargs
    ):
        """Minimize KL(student || teacher). Without `x` (unconditional), each epoch is
        `steps_per_epoch` steps (default 100); with `x` = contexts, batches of them."""
        if x is None:
            if self.student.context_features:
                raise ValueError(
                    "A conditional student needs contexts: fit(contexts, batch_size=...)."
                )
            steps_per_epoch = 100 if steps_per_epoch is None else int(steps_per_epoch)
            x, batch_size = np.zeros((steps_per_epoch, 1), self.student.compute_dtype), 1
            steps_per_epoch = None  # one dummy row per step
        if not self.compiled:
            self.compile(optimizer=keras.optimizers.Adam(1e-3))
        callbacks = list(callbacks or [])
        if not any(isinstance(c, StopOnNonFiniteLoss) for c in callbacks):
            callbacks.append(StopOnNonFiniteLoss())
        return super().fit(
            x,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            batch_size=batch_size,
            callbacks=callbacks,
            **kwargs,
        )

    def kl_divergence(self, n=10000, context=None, batch_size=4096):
        """Monte Carlo estimate of KL(student || teacher) in nats over n samples, with its
        standard error: returns (kl, standard_error)."""
        if context is not None:
            context = np.asarray(context)
            if len(context) == 1:
                context = np.repeat(context, n, axis=0)
            n = len(context)
        values = []
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            if context is None:
                x, log_q = self.sample_and_log_prob(m)
                log_p = self.teacher.log_prob(ops.convert_to_numpy(x))
            else:
                c = context[start : start + m]
                x, log_q = self.sample_and_log_prob(context=c)
                log_p = self.teacher.log_prob(ops.convert_to_numpy(x), context=c)
            values.append(ops.convert_to_numpy(log_q) - ops.convert_to_numpy(log_p))
        values = np.concatenate(values).astype("float64")
        return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))

    def get_config(self):
        return {
            "name": self.name,
            "student": keras.saving.serialize_keras_object(self.student),
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "samples_per_step": self.samples_per_step,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        config["teacher"] = keras.saving.deserialize_keras_object(config["teacher"])
        return cls(**config)
