"""A long-running bot on KIS's official kis_auth.py, beside broker-token-sidecar.

kis_auth.py reads its daily token file once, in auth(), and keeps the token in memory: a bot that runs longer
than one token would go on sending the dead one. The sidecar's `notify` sends this process SIGHUP after it
writes a new token (sidecar.yaml beside this file); the bot then calls ka.auth() again, which reads the file
the sidecar has just written. No request reaches the broker from here, and no KakaoTalk notice goes out.

Setup: the official kis_auth.py next to this file (or on PYTHONPATH); your own kis_devlp.yaml in
~/KIS/config, beside the token files the sidecar writes (kis_auth.py reads it from that folder at import).
Run, in the folder of sidecar.yaml (its notify.pidFile, ./bot.pid, counts from there):
       python3 bot.py --pid-file ./bot.pid
Against the simulator, in one command from the repository:   npm run example -- kis-auth
"""

import argparse
import hashlib
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kis_auth as ka  # noqa: E402  (at import it picks today's file by this process's own date)

token_changed = False


def on_sighup(_signum, _frame):
    # Only a flag: the main loop calls auth(), outside the signal handler.
    global token_changed
    token_changed = True


def token_id():
    """The token's short id, as `broker-token-sidecar status` shows it: never print the token itself."""
    bearer = ka._base_headers.get("authorization", "")
    token = bearer[len("Bearer "):] if bearer.startswith("Bearer ") else ""
    return hashlib.sha256(b"token\0" + token.encode()).hexdigest()[:8] if token else "none"


def authenticate(svr):
    ka.auth(svr)
    print(f"auth: token {token_id()} from {ka.token_tmp}", flush=True)


def main():
    global token_changed
    parser = argparse.ArgumentParser(description="a bot that re-reads its token when the sidecar says so")
    parser.add_argument("--svr", choices=("prod", "vps"), default="prod")
    parser.add_argument("--pid-file", required=True, help="the file the sidecar's notify.pidFile names")
    args = parser.parse_args()

    signal.signal(signal.SIGHUP, on_sighup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(args.pid_file, "w") as f:
        f.write(f"{os.getpid()}\n")

    authenticate(args.svr)
    while True:
        if token_changed:
            token_changed = False
            authenticate(args.svr)
        # ... the bot's own work: quotes, orders (ka._url_fetch sends the token auth() put in the headers) ...
        time.sleep(1)


if __name__ == "__main__":
    main()
