"""Sensitivity analysis: Sobol' indices on emulators, estimators from the ensemble, clusters, selection."""

from lsegeo.sensitivity.sobol import *  # noqa: F401,F403
from lsegeo.sensitivity.sobol import __all__  # noqa: F401
