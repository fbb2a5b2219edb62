"""Scores of simulated against observed streamflow.

Array kernels (:mod:`~lsegeo.metrics.kernels`), the objective registry
(:mod:`~lsegeo.metrics.objectives`) and the xarray shell (:mod:`~lsegeo.metrics.xarray_api`).
"""
