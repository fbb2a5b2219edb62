"""Scores of simulated against observed streamflow: array kernels, the xarray shell, the objective registry."""
