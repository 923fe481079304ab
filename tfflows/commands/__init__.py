"""The commands of the `tfflows` command line (`tfflows.cli` parses the arguments):
`common` (one-line errors, output files, the data rules, quiet TensorFlow, progress),
`fit` (in memory, images, streamed) and `use` (sample, score, info)."""
