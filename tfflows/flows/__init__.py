"""Flows as `keras.Model`s: `Flow`, its presets, training callbacks and distillation."""
