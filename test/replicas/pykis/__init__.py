"""Replica of python-kis: the package re-exports what pykis.kis defines, as the original's __init__ does."""

from .kis import KisAccessToken, KisException, KisHTTPError, KisKey, PyKis, get_cache_path

__all__ = ["PyKis", "KisKey", "KisAccessToken", "KisException", "KisHTTPError", "get_cache_path"]
