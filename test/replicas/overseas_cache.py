# -*- coding: utf-8 -*-
"""Replica of a KIS overseas-stock client's token cache (docs/brokers.md#overseas-stock-cache):
``data/.kis_token_cache.json`` (relative to the working directory) = ``{"access_token", "expires_at", "cached_at"}``
in ISO 8601, mode 0600, and the mode is checked on load.

Behaviour (facts from docs/brokers.md#overseas-stock-cache; the rest assumed, as a typical cache does):
* Load: if the file's permission bits are not exactly 0600 it is refused (a warning on stderr) and
  treated as no cache. Otherwise ``expires_at`` is parsed with ``datetime.fromisoformat`` and compared
  with the aware ``datetime.now(timezone.utc)``. Usable iff ``now < expires_at`` and ``access_token`` is
  non-empty. Assumed: no safety margin; any error (bad JSON, missing key, a NAIVE ``expires_at``, which
  cannot be compared with an aware time) means "no cache".
* Otherwise it issues the token itself: POST ``{base}/oauth2/tokenP`` with
  ``{"grant_type":"client_credentials","appkey","appsecret"}``; success = HTTP 200 with an
  ``access_token``. Assumed: ``expires_at`` = ``access_token_token_expired`` read as KST (+09:00)
  (falling back to now + ``expires_in`` when absent), ``cached_at`` = now in UTC; both ``isoformat()``
  with their offset. The file is written 0600 (mode forced even over an existing file), not atomically.
* On failure: a message on stderr, ``"token": null``, exit 1.

Usage:
  python3 overseas_cache.py --base URL --appkey-file F --secret-file F [--file PATH]
Prints one JSON line: {"token": ..., "file": ..., "tokenRequests": n, "refusedMode": "0644"|null}
"""

import json
import os
import stat
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _replica_http  # noqa: E402
from _replica_http import read_cached_token, request_kis_token, write_0600  # noqa: E402

KST = ZoneInfo("Asia/Seoul")
DEFAULT_PATH = os.path.join("data", ".kis_token_cache.json")


def now_utc():
    return datetime.now(timezone.utc)


def load(path):
    """Returns (token or None, {"refusedMode": the refused mode as an octal string or None})."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None, {"refusedMode": None}
    if mode != 0o600:
        print(f"token cache {path} has mode {mode:04o}, not 0600: ignored", file=sys.stderr)
        return None, {"refusedMode": f"{mode:04o}"}
    token = read_cached_token(path, "access_token", lambda data: datetime.fromisoformat(data["expires_at"]), now_utc)
    return token, {"refusedMode": None}


def store(path, body):
    now = now_utc()
    if body.get("access_token_token_expired"):
        expires_at = datetime.strptime(body["access_token_token_expired"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=KST)
    else:
        expires_at = now + timedelta(seconds=int(body.get("expires_in") or 86400))
    record = {
        "access_token": body["access_token"],
        "expires_at": expires_at.isoformat(),
        "cached_at": now.isoformat(),
    }
    write_0600(path, json.dumps(record, indent=2))
    return record["access_token"]


def main():
    return _replica_http.main(
        "KIS overseas-stock client token cache (replica)",
        load,
        request_kis_token,
        store,
        file_kwargs={"default": DEFAULT_PATH, "help": "cache file (default data/.kis_token_cache.json)"},
    )


if __name__ == "__main__":
    sys.exit(main())
