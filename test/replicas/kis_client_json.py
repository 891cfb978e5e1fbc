# -*- coding: utf-8 -*-
"""Replica of a KIS client that caches its token as JSON (docs/brokers.md#kis-client-json):
``~/KIS/tokens/token_{first 10 chars of app key}_{mock|real}.json`` =
``{"access_token", "token_type": "Bearer", "expires_in": 86400,
   "issued_at": "2025-11-03T19:45:30.123456", "expiry_datetime": "2025-11-04T19:45:30.123456"}``.

Behaviour (facts from docs/brokers.md#kis-client-json; the rest assumed, as a typical cache does):
* Load: the file is JSON; ``expiry_datetime`` is parsed with ``datetime.fromisoformat`` and compared
  with the NAIVE ``datetime.now()`` (the process's local clock). Usable iff ``now < expiry`` and
  ``access_token`` is non-empty. Assumed: no safety margin; any error (missing file, bad JSON, missing
  key, an expiry with an offset, which cannot be compared with a naive time) means "no cache".
* Otherwise it issues the token itself: POST ``{base}/oauth2/tokenP`` with
  ``{"grant_type":"client_credentials","appkey","appsecret"}``; success = HTTP 200 with an
  ``access_token``. Assumed (the sample's expiry is exactly issued_at + 86400 s): ``issued_at`` =
  naive ``datetime.now()``, ``expiry_datetime`` = issued_at + ``expires_in`` seconds (default 86400),
  both ``isoformat()``. The file is written 0600 (folder created), not atomically.
* On failure: a message on stderr, ``"token": null``, exit 1.

Usage:
  python3 kis_client_json.py --base URL --appkey-file F --secret-file F [--mode real|mock] [--file PATH]
Prints one JSON line: {"token": ..., "file": ..., "tokenRequests": n}
"""

import json
import os
import sys
from datetime import datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _replica_http  # noqa: E402
from _replica_http import read_cached_token, request_kis_token, write_0600  # noqa: E402


def default_path(appkey, mode):
    return os.path.join(os.path.expanduser("~"), "KIS", "tokens", f"token_{appkey[:10]}_{mode}.json")


def load(path):
    """Naive ``expiry_datetime`` against the naive local ``datetime.now()``."""
    token = read_cached_token(
        path, "access_token", lambda data: datetime.fromisoformat(data["expiry_datetime"]), datetime.now
    )
    return token, {}


def store(path, body):
    issued_at = datetime.now()
    expires_in = int(body.get("expires_in") or 86400)
    record = {
        "access_token": body["access_token"],
        "token_type": body.get("token_type", "Bearer"),
        "expires_in": expires_in,
        "issued_at": issued_at.isoformat(),
        "expiry_datetime": (issued_at + timedelta(seconds=expires_in)).isoformat(),
    }
    write_0600(path, json.dumps(record, indent=2))
    return record["access_token"]


def main():
    return _replica_http.main(
        "KIS client JSON token cache (replica)",
        load,
        request_kis_token,
        store,
        base_help="KIS base URL, e.g. http://127.0.0.1:9455",
        add_arguments=lambda parser: parser.add_argument("--mode", choices=("real", "mock"), default="real"),
        file_kwargs={"help": "token file (default ~/KIS/tokens/token_{key[:10]}_{mode}.json)"},
        default_path=lambda appkey, args: default_path(appkey, args.mode),
    )


if __name__ == "__main__":
    sys.exit(main())
