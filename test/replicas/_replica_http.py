# -*- coding: utf-8 -*-
"""Shared helpers for the four small JSON/Kiwoom consumer replicas (kis_client_json.py, overseas_cache.py,
kiwoom_token.py, kiwoom_client.py). Not used by kis_auth.py or pykis, which mirror their originals.

Everything takes time from the process's own clock (datetime.now()), so faketime and TZ apply.
"""

import json
import os
import tempfile
import urllib.error
import urllib.request


class Counter:
    """Counts the token requests this process sends (observation only)."""

    def __init__(self):
        self.token_requests = 0


def post_json(url, body, headers):
    """POST a JSON body. Returns (status, parsed JSON or None). Non-2xx answers are returned, not raised;
    connection errors are raised."""
    data = json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req) as resp:
            status, content = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status = e.code
        try:
            content = e.read()
        except Exception:
            content = b""
    try:
        parsed = json.loads(content)
    except Exception:
        parsed = None
    return status, parsed


def read_secret(path):
    """A credential from a file, one trailing newline stripped."""
    with open(path, encoding="utf-8") as f:
        value = f.read()
    if value.endswith("\r\n"):
        return value[:-2]
    if value.endswith("\n"):
        return value[:-1]
    return value


def write_0600(path, text):
    """Plain (non-atomic) write of a 0600 file; an existing file's mode is reset to 0600."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def write_0600_atomic(path, text):
    """Atomic write: a 0600 temporary file in the same folder, fsync, rename over the target."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def print_report(token, path, counter, **extra):
    line = {"token": token, "file": os.path.abspath(path), "tokenRequests": counter.token_requests}
    line.update(extra)
    print(json.dumps(line), flush=True)
