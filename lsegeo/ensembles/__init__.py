"""Ensemble stores: their layout, creation, appending of members, and the runner that fills them."""
