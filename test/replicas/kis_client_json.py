# -*- coding: utf-8 -*-
"""Replica of a KIS client that caches its token as JSON (broker-apis.md §4):
``~/KIS/tokens/token_{first 10 chars of app key}_{mock|real}.json`` =
``{"access_token", "token_type": "Bearer", "expires_in": 86400,
   "issued_at": "2025-11-03T19:45:30.123456", "expiry_datetime": "2025-11-04T19:45:30.123456"}``.

Behaviour (facts from §4; the rest assumed, as a typical cache does):
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

import argparse
import json
import os
import sys
from datetime import datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _replica_http import Counter, post_json, print_report, read_secret, write_0600  # noqa: E402


def default_path(appkey, mode):
    return os.path.join(os.path.expanduser("~"), "KIS", "tokens", f"token_{appkey[:10]}_{mode}.json")


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        expiry = datetime.fromisoformat(data["expiry_datetime"])
        token = data["access_token"]
        if token and datetime.now() < expiry:
            return token
    except Exception:
        pass
    return None


def issue(base, appkey, secret, path, counter):
    counter.token_requests += 1
    status, body = post_json(
        f"{base}/oauth2/tokenP",
        {"grant_type": "client_credentials", "appkey": appkey, "appsecret": secret},
        {"Content-Type": "application/json"},
    )
    if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
        code = body.get("error_code") if isinstance(body, dict) else None
        print(f"token request failed: HTTP {status} {code or ''}".rstrip(), file=sys.stderr)
        return None
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
    parser = argparse.ArgumentParser(description="KIS client JSON token cache (replica)")
    parser.add_argument("--base", required=True, help="KIS base URL, e.g. http://127.0.0.1:9455")
    parser.add_argument("--appkey-file", required=True)
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--mode", choices=("real", "mock"), default="real")
    parser.add_argument("--file", help="token file (default ~/KIS/tokens/token_{key[:10]}_{mode}.json)")
    args = parser.parse_args()

    appkey = read_secret(args.appkey_file)
    secret = read_secret(args.secret_file)
    path = args.file or default_path(appkey, args.mode)
    counter = Counter()

    token = load(path)
    if token is None:
        token = issue(args.base.rstrip("/"), appkey, secret, path, counter)
    print_report(token, path, counter)
    return 0 if token else 1


if __name__ == "__main__":
    sys.exit(main())
