"""Image flow layers on (N, H, W, C) tensors; each one's event is (H, W, C)."""
