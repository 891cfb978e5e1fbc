"""Reading the sidecar's JSON token files from your own code (any language does the same three steps).

The sidecar writes these layouts (README, "Sinks"):
  kis-client      {access_token, token_type, expires_in, issued_at, expiry_datetime}  naive KST wall clocks
  overseas-cache  {access_token, expires_at, cached_at}                              ISO 8601 with +09:00
  kiwoom-token    {access_token, expires_at, created_at}                             ISO 8601 with +09:00
1. Read the file at each use, or when its mtime changes: the sidecar replaces it atomically (a reader never sees
   half a file), renews an hour before expiry, and rewrites it within a second if anything damages it.
2. Compare the expiry as an instant, never as a naive local time: a naive KST time read on a UTC clock is nine
   hours off. A naive time (kis-client) is KST.
3. No usable token means: wait and read again (or fail). Never ask the broker yourself: that is the sidecar's job,
   and a second issuance costs the account holder a KakaoTalk notice, or gets EGW00133.

Run:   python3 read_token.py /shared/tokens/main.json
"""

import hashlib
import json
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

KST = ZoneInfo("Asia/Seoul")


def token_id(token):
    """The token's short id, as `broker-token-sidecar status` shows it: never print the token itself."""
    return hashlib.sha256(b"token\0" + token.encode()).hexdigest()[:8]


def expiry_of(doc):
    text = doc.get("expires_at") or doc.get("expiry_datetime")
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=KST)


def read_token(path):
    """The token in `path`, or None when the file holds none that is still valid."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if expiry_of(doc) > datetime.now(timezone.utc):
            return doc["access_token"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


if __name__ == "__main__":
    token = read_token(sys.argv[1])
    if token is None:
        print("no valid token yet", flush=True)
        sys.exit(1)
    print(f"token {token_id(token)}", flush=True)
