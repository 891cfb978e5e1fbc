"""Replica package: pykis.api.stock, as in python-kis."""
