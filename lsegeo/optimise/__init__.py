"""Optimisation on emulators and models: batched GA/NSGA-II proposals, the neighbourhood search, DDS, the dask fan-out."""
