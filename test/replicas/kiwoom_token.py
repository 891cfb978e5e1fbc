# -*- coding: utf-8 -*-
"""Replica of a Kiwoom token manager found in the wild (docs/brokers.md#kiwoom-rest-api and
docs/brokers.md#kiwoom-token-file): ``data/.token`` (relative to the working directory) =
``{"access_token", "expires_at", "created_at"}`` in ISO 8601, mode 0600, written atomically.

Behaviour (facts from docs/brokers.md#kiwoom-rest-api and docs/brokers.md#kiwoom-token-file; the rest assumed, as
a typical cache does):
* Load: JSON; ``expires_at`` parsed with ``datetime.fromisoformat`` and compared with the aware
  ``datetime.now(timezone.utc)``. Usable iff ``now < expires_at`` and ``access_token`` is non-empty.
  Assumed: no safety margin, the mode is not checked on load, and any error (bad JSON, missing key, a
  NAIVE ``expires_at``, which cannot be compared with an aware time) means "no cache".
* Otherwise it issues the token itself: POST ``{base}/oauth2/token`` with headers
  ``Content-Type: application/json;charset=UTF-8`` and ``api-id: au10001``, body
  ``{"grant_type":"client_credentials","appkey","secretkey"}``. Success = HTTP 200, ``return_code`` 0, a
  ``token`` and an ``expires_dt`` (``YYYYMMDDHHMMSS``, KST). Stored: ``expires_at`` = expires_dt read as
  Asia/Seoul, ``created_at`` = now in UTC, both ``isoformat()`` with offset; written to a 0600 temporary
  file in the same folder, fsynced and renamed over ``data/.token``.
* On failure: a message on stderr, ``"token": null``, exit 1.

Usage:
  python3 kiwoom_token.py --base URL --appkey-file F --secret-file F [--file PATH]
Prints one JSON line: {"token": ..., "file": ..., "tokenRequests": n}
"""

import json
import os
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _replica_http  # noqa: E402
from _replica_http import read_cached_token, request_kiwoom_token, write_0600_atomic  # noqa: E402

KST = ZoneInfo("Asia/Seoul")
DEFAULT_PATH = os.path.join("data", ".token")


def load(path):
    """Aware ``expires_at`` against the aware ``datetime.now(timezone.utc)``; the mode is not checked."""
    token = read_cached_token(
        path,
        "access_token",
        lambda data: datetime.fromisoformat(data["expires_at"]),
        lambda: datetime.now(timezone.utc),
    )
    return token, {}


def request(base, appkey, secret, counter):
    return request_kiwoom_token(base, appkey, secret, counter, required=("token", "expires_dt"))


def store(path, body):
    expires_at = datetime.strptime(body["expires_dt"], "%Y%m%d%H%M%S").replace(tzinfo=KST)
    record = {
        "access_token": body["token"],
        "expires_at": expires_at.isoformat(),
        "created_at": datetime.now(timezone.utc).isoformat(),
    }
    write_0600_atomic(path, json.dumps(record, indent=2))
    return record["access_token"]


def main():
    return _replica_http.main(
        "Kiwoom token manager data/.token (replica)",
        load,
        request,
        store,
        base_help="Kiwoom base URL, e.g. http://127.0.0.1:9455",
        file_kwargs={"default": DEFAULT_PATH, "help": "token file (default data/.token)"},
    )


if __name__ == "__main__":
    sys.exit(main())
