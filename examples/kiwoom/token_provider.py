"""A Kiwoom token provider that takes the sidecar's token: for clients that accept a TokenProvider (kiwoom-client
"to share a single token across processes") or a token argument.

It reads the sidecar's `kiwoom-token` file ({access_token, expires_at, created_at}, ISO 8601 with +09:00), again
whenever the file changes, so a long-running process always sends the current token. The expiry carries its
offset, so a UTC container compares it correctly (Kiwoom's own `expires_dt` is a naive KST time that such a
container would trust nine hours too long). It never calls /oauth2/token: issuing is the sidecar's job.

Run:   python3 token_provider.py /srv/bot/data/.token
"""

import hashlib
import json
import os
import sys
from datetime import datetime, timezone


def token_id(token):
    """The token's short id, as `broker-token-sidecar status` shows it: never print the token itself."""
    return hashlib.sha256(b"token\0" + token.encode()).hexdigest()[:8]


class SidecarTokenProvider:
    def __init__(self, path):
        self.path = path
        self._seen = None
        self._token = None
        self._expires_at = None

    def get_token(self):
        """The current token; raises when the sidecar has none that is valid (retry later, do not issue)."""
        stat = os.stat(self.path)
        if (stat.st_mtime_ns, stat.st_ino) != self._seen:
            with open(self.path, encoding="utf-8") as f:
                doc = json.load(f)
            self._token = doc["access_token"]
            self._expires_at = datetime.fromisoformat(doc["expires_at"])
            self._seen = (stat.st_mtime_ns, stat.st_ino)
        if self._expires_at <= datetime.now(timezone.utc):
            raise RuntimeError(f"the token in {self.path} has expired; is the sidecar running?")
        return self._token

    def authorization(self):
        return f"Bearer {self.get_token()}"


if __name__ == "__main__":
    provider = SidecarTokenProvider(sys.argv[1])
    token = provider.get_token()
    print(f"kiwoom: token {token_id(token)}", flush=True)
