"""Iterative Gaussianization: marginal Gaussianization layers, rotations, the greedy
`RBIG` and the end-to-end `GaussianizationFlow`, and the information measures they yield."""
