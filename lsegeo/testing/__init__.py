"""Seeded synthetic data for fast tests: basins, basins and ensemble stores, analytic emulators.

Everything here is small (a few basins, a few years: kilobytes) and made from one seed, so a unit
test gets the same numbers on every machine in milliseconds, without the CAMELS files:

* :mod:`~lsegeo.testing.basins`: :func:`synthetic_basins` (attributes, forcing with a seasonal
  cycle, observed flow from the embedded HBV model with known parameters plus noise) and
  :func:`write_basins_store` (the same as a basins store, through :mod:`lsegeo.io.stores`);
* :mod:`~lsegeo.testing.ensembles`: :func:`write_ensemble_store`, a Latin-hypercube ensemble
  created and run by :mod:`lsegeo.ensembles.store` itself;
* :mod:`~lsegeo.testing.emulators`: :class:`QuadraticBowl`, an analytic emulator with a known
  optimum per basin (a function of its attributes) and closed-form Sobol' indices.
"""

from lsegeo.testing.basins import SyntheticBasins, synthetic_basins, write_basins_store
from lsegeo.testing.emulators import QuadraticBowl
from lsegeo.testing.ensembles import PERIODS, WARMUP_DAYS, local_client, write_ensemble_store

__all__ = [
    "SyntheticBasins",
    "synthetic_basins",
    "write_basins_store",
    "QuadraticBowl",
    "PERIODS",
    "WARMUP_DAYS",
    "local_client",
    "write_ensemble_store",
]
