# -*- coding: utf-8 -*-
"""Replica of a KIS overseas-stock client's token cache (broker-apis.md §4): ``data/.kis_token_cache.json``
(relative to the working directory) = ``{"access_token", "expires_at", "cached_at"}`` in ISO 8601, mode
0600, and the mode is checked on load.

Behaviour (facts from §4; the rest assumed, as a typical cache does):
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

import argparse
import json
import os
import stat
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _replica_http import Counter, post_json, print_report, read_secret, write_0600  # noqa: E402

KST = ZoneInfo("Asia/Seoul")
DEFAULT_PATH = os.path.join("data", ".kis_token_cache.json")


def load(path):
    """Returns (token or None, refused mode as an octal string or None)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None, None
    if mode != 0o600:
        print(f"token cache {path} has mode {mode:04o}, not 0600: ignored", file=sys.stderr)
        return None, f"{mode:04o}"
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        expires_at = datetime.fromisoformat(data["expires_at"])
        token = data["access_token"]
        if token and datetime.now(timezone.utc) < expires_at:
            return token, None
    except Exception:
        pass
    return None, None


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
    now = datetime.now(timezone.utc)
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
    parser = argparse.ArgumentParser(description="KIS overseas-stock client token cache (replica)")
    parser.add_argument("--base", required=True)
    parser.add_argument("--appkey-file", required=True)
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--file", default=DEFAULT_PATH, help="cache file (default data/.kis_token_cache.json)")
    args = parser.parse_args()

    appkey = read_secret(args.appkey_file)
    secret = read_secret(args.secret_file)
    counter = Counter()

    token, refused = load(args.file)
    if token is None:
        token = issue(args.base.rstrip("/"), appkey, secret, args.file, counter)
    print_report(token, args.file, counter, refusedMode=refused)
    return 0 if token else 1


if __name__ == "__main__":
    sys.exit(main())
