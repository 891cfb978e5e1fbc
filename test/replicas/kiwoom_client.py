# -*- coding: utf-8 -*-
"""Replica of a ``kiwoom-client``-style consumer (broker-apis.md §2): its TokenProvider shares one token
across processes through a file holding Kiwoom's raw ``/oauth2/token`` answer
``{"expires_dt": "20241107083713", "token_type": "bearer", "token", "return_code": 0, "return_msg"}``.

The 9-hour trap of §2 is reproduced ON PURPOSE: ``expires_dt`` (KST wall clock) is parsed as a NAIVE
local time and compared with the naive ``datetime.now()``. A process on a UTC clock therefore trusts a
token up to 9 hours after it died; one on Asia/Seoul gets it right.

Behaviour (facts from §2; the rest assumed):
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

import argparse
import json
import os
import sys
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _replica_http import Counter, post_json, print_report, read_secret, write_0600_atomic  # noqa: E402


class FileTokenProvider:
    """get_token() -> str | None, the kiwoom-client TokenProvider shape, backed by a file."""

    def __init__(self, path, base, appkey, secret, counter):
        self.path = path
        self.base = base
        self.appkey = appkey
        self.secret = secret
        self.counter = counter

    def _cached(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            if data.get("return_code", 0) != 0:
                return None
            expires = datetime.strptime(data["expires_dt"], "%Y%m%d%H%M%S")  # naive: the trap
            token = data["token"]
            if token and datetime.now() < expires:
                return token
        except Exception:
            pass
        return None

    def _issue(self):
        self.counter.token_requests += 1
        status, body = post_json(
            f"{self.base}/oauth2/token",
            {"grant_type": "client_credentials", "appkey": self.appkey, "secretkey": self.secret},
            {"Content-Type": "application/json;charset=UTF-8", "api-id": "au10001"},
        )
        if status != 200 or not isinstance(body, dict) or body.get("return_code") != 0 or not body.get("token"):
            code = body.get("return_code") if isinstance(body, dict) else None
            print(f"token request failed: HTTP {status} return_code={code}", file=sys.stderr)
            return None
        write_0600_atomic(self.path, json.dumps(body, ensure_ascii=False))
        return body["token"]

    def get_token(self):
        return self._cached() or self._issue()


def main():
    parser = argparse.ArgumentParser(description="kiwoom-client style consumer with a file TokenProvider (replica)")
    parser.add_argument("--file", required=True, help="file with Kiwoom's raw /oauth2/token answer")
    parser.add_argument("--base", required=True)
    parser.add_argument("--appkey-file", required=True)
    parser.add_argument("--secret-file", required=True)
    args = parser.parse_args()

    counter = Counter()
    provider = FileTokenProvider(
        args.file, args.base.rstrip("/"), read_secret(args.appkey_file), read_secret(args.secret_file), counter
    )
    token = provider.get_token()
    print_report(token, args.file, counter)
    return 0 if token else 1


if __name__ == "__main__":
    sys.exit(main())
