"""Replica package: pykis.api, as in python-kis."""
