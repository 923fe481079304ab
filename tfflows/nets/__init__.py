"""Conditioner networks: the Keras layers that compute a flow layer's parameters."""
