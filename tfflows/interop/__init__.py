"""Backend bridges: TensorFlow Probability both ways, SavedModel export, loading with
clear errors, and the TensorFlow input pipeline of `Flow.fit`."""
