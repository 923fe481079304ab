"""A re-readable `tfflows.data.source.Source` as the `tf.data.Dataset` that Keras reads at
every epoch (on any backend: Keras's JAX and PyTorch trainers read tf.data too). The
source's own batches (e.g. 65,536 rows of `TextBatches`) are cut into rows and batched
again to `fit`'s batch size, so that the step count does not depend on how the data were
stored."""

import tensorflow as tf

# Rows held by the shuffle buffer of a streamed fit: a window of the stream is shuffled,
# as tf.data does for data larger than memory (about 26 MB of float32 rows at 64 features).
SHUFFLE_ROWS = 100_000


def source_dataset(batches, batch_size, shuffle, dtype, seed=0, errors=None):
    """Batches of `batch_size` rows (x alone) of `batches` (a `Source`), cast to `dtype`,
    read again from the source at every iteration; with `shuffle`, shuffled within
    `SHUFFLE_ROWS` rows, in a new order at every epoch. A batch the source refuses (a
    NaN, a wrong shape) ends the pipeline with tf.data's error; the source's own error
    is appended to `errors` (a list), for the caller to raise instead."""
    signature = tf.TensorSpec((None,) + tuple(batches.event_shape), dtype)

    def read():
        try:
            for batch in batches:
                yield batch.astype(dtype)
        except (ValueError, TypeError, OSError) as err:
            if errors is not None:
                errors.append(err)
            raise

    rows = tf.data.Dataset.from_generator(read, output_signature=signature).unbatch()
    if shuffle:
        rows = rows.shuffle(SHUFFLE_ROWS, seed=seed, reshuffle_each_iteration=True)
    return rows.batch(int(batch_size)).prefetch(1)
