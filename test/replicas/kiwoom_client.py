# -*- coding: utf-8 -*-
"""Replica of a ``kiwoom-client``-style consumer (docs/brokers.md#kiwoom-rest-api): its TokenProvider shares one
token across processes through a file holding Kiwoom's raw ``/oauth2/token`` answer
``{"expires_dt": "20241107083713", "token_type": "bearer", "token", "return_code": 0, "return_msg"}``.

The 9-hour trap (docs/brokers.md#kiwoom-token-file) is reproduced ON PURPOSE: ``expires_dt`` (KST wall clock)
is parsed as a NAIVE local time and compared with the naive ``datetime.now()``. A process on a UTC clock
therefore trusts a token up to 9 hours after it died; one on Asia/Seoul gets it right.

Behaviour (facts from docs/brokers.md#kiwoom-rest-api; the rest assumed):
* Load: JSON; usable iff ``return_code`` is 0 (a missing return_code is accepted), ``token`` is
  non-empty and ``datetime.now() < strptime(expires_dt, "%Y%m%d%H%M%S")``. Assumed: no safety margin;
  any error means "no token".
* Otherwise it calls the broker itself: POST ``{base}/oauth2/token``, headers
  ``Content-Type: application/json;charset=UTF-8`` and ``api-id: au10001``, body
  ``{"grant_type":"client_credentials","appkey","secretkey"}``; success = HTTP 200, ``return_code`` 0 and
  a ``token``. Assumed: the provider then stores the raw answer back into the file (0600, atomic).
* On failure: a message on stderr, ``"token": null``, exit 1.

Usage:
  python3 kiwoom_client.py --file PATH --base URL --appkey-file F --secret-file F
Prints one JSON line: {"token": ..., "file": ..., "tokenRequests": n}
"""

import json
import os
import sys
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _replica_http  # noqa: E402
from _replica_http import read_cached_token, request_kiwoom_token, write_0600_atomic  # noqa: E402

# The file-backed TokenProvider's get_token() is the shared load-else-issue: load() (the cached answer),
# else request_kiwoom_token() and store().


def load(path):
    """The raw answer's ``expires_dt`` parsed NAIVE (the trap) against the naive ``datetime.now()``."""
    token = read_cached_token(
        path,
        "token",
        lambda data: datetime.strptime(data["expires_dt"], "%Y%m%d%H%M%S"),  # naive: the trap
        datetime.now,
        usable=lambda data: data.get("return_code", 0) == 0,
    )
    return token, {}


def store(path, body):
    write_0600_atomic(path, json.dumps(body, ensure_ascii=False))
    return body["token"]


def main():
    return _replica_http.main(
        "kiwoom-client style consumer with a file TokenProvider (replica)",
        load,
        request_kiwoom_token,
        store,
        file_first=True,
        file_kwargs={"required": True, "help": "file with Kiwoom's raw /oauth2/token answer"},
    )


if __name__ == "__main__":
    sys.exit(main())
