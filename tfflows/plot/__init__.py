"""Pictures: 2-D densities and layer-by-layer warps, training curves, image grids and
latent interpolations (matplotlib's object-oriented API, no global backend change)."""
