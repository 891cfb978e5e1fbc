# -*- coding: utf-8 -*-
"""A bot written the way KIS's official sample programs are (examples_user/*/..._examples.py at
open-trading-api 885dd4e2): put kis_auth.py on sys.path, ``import kis_auth as ka``, then ``ka.auth(svr)``.

Usage:
  python3 kis_bot.py [--svr prod|vps] [--wait-signal]

Prints one JSON line on stdout per ``auth()``:
  {"token": <the token the bot now sends, or null when this auth() failed>,
   "file": ka.token_tmp, "createdAtImport": bool, "tokenRequests": n}
``tokenRequests`` is the running count of tokenP POSTs made by this process.

Why "token" is not ``ka.getTREnv().my_token``: in the official kis_auth.py that field is always ""
after auth() (changeTREnv stores the previous value when given a token, see kis_auth.py). Business
calls send ``ka._base_headers["authorization"]`` ("Bearer <token>"), so that is what is reported.
``trenvMyToken`` (the raw ``getTREnv().my_token``) is printed too for transparency.

kis_auth prints its failure message ("Get Authentification token fail!...") with print(); the bot runs
auth() with stdout redirected to stderr so that stdout carries the JSON lines only.

--wait-signal: stay running after the first auth(). On SIGHUP call ka.auth(svr) again (this is how a
long-running bot is told of a new token, e.g. by the sidecar's notify) and print a new line; exit 0 on
SIGTERM. SIGHUP and SIGTERM are blocked from the very start and taken with sigwait, so a signal that
arrives early is acted on once the first line is out, never lost or fatal.

If the import of kis_auth fails (OSError on a read-only folder, FileNotFoundError without
kis_devlp.yaml) the exception propagates: traceback and a non-zero exit, as in a real bot.
"""

import argparse
import contextlib
import json
import os
import signal
import sys

_WAITED = {signal.SIGHUP, signal.SIGTERM}
signal.pthread_sigmask(signal.SIG_BLOCK, _WAITED)

# The samples do sys.path.extend(['..', '.']); here: the folder this file is in, so kis_auth.py next to it
# is found whatever the working directory.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kis_auth as ka  # noqa: E402  (import-time side effects happen here, as in a real bot)


def _report():
    header = ka._base_headers.get("authorization")
    token = None
    if ka._last_auth_ok and header is not None and header.startswith("Bearer "):
        token = header[len("Bearer "):]
    trenv = ka.getTREnv()
    line = {
        "token": token,
        "file": ka.token_tmp,
        "createdAtImport": ka._created_at_import,
        "tokenRequests": ka._token_requests,
        "trenvMyToken": getattr(trenv, "my_token", None),
    }
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def _auth(svr):
    with contextlib.redirect_stdout(sys.stderr):
        ka.auth(svr)
    _report()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--svr", choices=("prod", "vps"), default="prod")
    parser.add_argument("--wait-signal", action="store_true")
    args = parser.parse_args()

    _auth(args.svr)
    if not args.wait_signal:
        return 0
    while True:
        sig = signal.sigwait(_WAITED)
        if sig == signal.SIGTERM:
            return 0
        _auth(args.svr)


if __name__ == "__main__":
    sys.exit(main())
