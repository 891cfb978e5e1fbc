# -*- coding: utf-8 -*-
"""Replica of a Kiwoom token manager found in the wild (broker-apis.md §2 and §4): ``data/.token``
(relative to the working directory) = ``{"access_token", "expires_at", "created_at"}`` in ISO 8601,
mode 0600, written atomically.

Behaviour (facts from §2/§4; the rest assumed, as a typical cache does):
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

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _replica_http import Counter, post_json, print_report, read_secret, write_0600_atomic  # noqa: E402

KST = ZoneInfo("Asia/Seoul")
DEFAULT_PATH = os.path.join("data", ".token")


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        expires_at = datetime.fromisoformat(data["expires_at"])
        token = data["access_token"]
        if token and datetime.now(timezone.utc) < expires_at:
            return token
    except Exception:
        pass
    return None


def issue(base, appkey, secret, path, counter):
    counter.token_requests += 1
    status, body = post_json(
        f"{base}/oauth2/token",
        {"grant_type": "client_credentials", "appkey": appkey, "secretkey": secret},
        {"Content-Type": "application/json;charset=UTF-8", "api-id": "au10001"},
    )
    ok = (
        status == 200
        and isinstance(body, dict)
        and body.get("return_code") == 0
        and body.get("token")
        and body.get("expires_dt")
    )
    if not ok:
        code = body.get("return_code") if isinstance(body, dict) else None
        print(f"token request failed: HTTP {status} return_code={code}", file=sys.stderr)
        return None
    expires_at = datetime.strptime(body["expires_dt"], "%Y%m%d%H%M%S").replace(tzinfo=KST)
    record = {
        "access_token": body["token"],
        "expires_at": expires_at.isoformat(),
        "created_at": datetime.now(timezone.utc).isoformat(),
    }
    write_0600_atomic(path, json.dumps(record, indent=2))
    return record["access_token"]


def main():
    parser = argparse.ArgumentParser(description="Kiwoom token manager data/.token (replica)")
    parser.add_argument("--base", required=True, help="Kiwoom base URL, e.g. http://127.0.0.1:9455")
    parser.add_argument("--appkey-file", required=True)
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--file", default=DEFAULT_PATH, help="token file (default data/.token)")
    args = parser.parse_args()

    appkey = read_secret(args.appkey_file)
    secret = read_secret(args.secret_file)
    counter = Counter()

    token = load(args.file)
    if token is None:
        token = issue(args.base.rstrip("/"), appkey, secret, args.file, counter)
    print_report(token, args.file, counter)
    return 0 if token else 1


if __name__ == "__main__":
    sys.exit(main())
