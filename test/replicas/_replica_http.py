# -*- coding: utf-8 -*-
"""Shared helpers for the four small JSON/Kiwoom consumer replicas (kis_client_json.py, overseas_cache.py,
kiwoom_token.py, kiwoom_client.py). Not used by kis_auth.py or pykis, which mirror their originals.

What the four share lives here: the urllib POST, the two token requests (KIS ``/oauth2/tokenP`` and Kiwoom
``/oauth2/token``, each counted), the credential reading, the JSON cache read, the 0600/atomic writers, the
report line and the ``main`` skeleton (common arguments, load-else-issue, report, exit code). What tells the
clients apart stays in each script: its load/expiry rule and its record format.

Everything takes time from the process's own clock (datetime.now()), so faketime and TZ apply.
"""

import argparse
import json
import os
import sys
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


def request_kis_token(base, appkey, secret, counter):
    """POST ``{base}/oauth2/tokenP`` with ``{"grant_type":"client_credentials","appkey","appsecret"}``, counted.
    Returns the answer (a dict) on HTTP 200 with an ``access_token``; otherwise a message on stderr and None."""
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
    return body


def request_kiwoom_token(base, appkey, secret, counter, required=("token",)):
    """POST ``{base}/oauth2/token`` (``api-id: au10001``) with ``{"grant_type":"client_credentials","appkey",
    "secretkey"}``, counted. Returns the answer (a dict) on HTTP 200 with ``return_code`` 0 and every field in
    ``required`` non-empty; otherwise a message on stderr and None."""
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
        and all(body.get(k) for k in required)
    )
    if not ok:
        code = body.get("return_code") if isinstance(body, dict) else None
        print(f"token request failed: HTTP {status} return_code={code}", file=sys.stderr)
        return None
    return body


def read_cached_token(path, token_key, expiry_of, now, usable=None):
    """The token under ``token_key`` in the JSON file at ``path`` if it is non-empty and ``now() < expiry_of(data)``
    (and ``usable(data)``, when given, is true). Any error (missing file, bad JSON, missing key, a naive time
    compared with an aware one) means no token: None. No safety margin."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if usable is not None and not usable(data):
            return None
        expiry = expiry_of(data)
        token = data[token_key]
        if token and now() < expiry:
            return token
    except Exception:
        pass
    return None


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


def main(description, load, request, store, *, file_kwargs, base_help=None, file_first=False, add_arguments=None,
         default_path=None):
    """The skeleton of the four consumers. Parses ``--base``, ``--appkey-file``, ``--secret-file`` and ``--file``
    (``--file`` first when ``file_first``, else last, after whatever ``add_arguments(parser)`` adds), reads the
    credentials, then load-else-issue:

    * ``load(path)`` -> ``(token or None, extra report fields)``: the script's own load/expiry rule;
    * ``request(base, appkey, secret, counter)`` -> the answer or None (``request_kis_token`` or
      ``request_kiwoom_token``);
    * ``store(path, answer)`` -> token: writes the script's own record format.

    The file is ``--file``, or ``default_path(appkey, args)`` when ``--file`` is not given and ``default_path`` is.
    Prints the report line and returns the exit code: 0 with a token, 1 without.
    """
    parser = argparse.ArgumentParser(description=description)
    if file_first:
        parser.add_argument("--file", **file_kwargs)
    parser.add_argument("--base", required=True, help=base_help)
    parser.add_argument("--appkey-file", required=True)
    parser.add_argument("--secret-file", required=True)
    if add_arguments is not None:
        add_arguments(parser)
    if not file_first:
        parser.add_argument("--file", **file_kwargs)
    args = parser.parse_args()

    appkey = read_secret(args.appkey_file)
    secret = read_secret(args.secret_file)
    path = (args.file or default_path(appkey, args)) if default_path is not None else args.file
    counter = Counter()

    token, extra = load(path)
    if token is None:
        answer = request(args.base.rstrip("/"), appkey, secret, counter)
        token = None if answer is None else store(path, answer)
    print_report(token, path, counter, **extra)
    return 0 if token else 1
