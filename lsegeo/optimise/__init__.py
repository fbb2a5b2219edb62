"""Optimisation on emulators and models.

Batched GA/NSGA-II proposals, the neighbourhood search, DDS, the dask fan-out.
"""
