"""The embedded HBV model: the numba kernel and its adapter."""
