"""A bot on python-kis (Soju06/python-kis), through broker-token-sidecar's gateway, with local credentials.

python-kis has the broker's hosts built in (pykis/__env__.py, imported by name into pykis.kis, which reads them
at every request) and joins each path to the host, dropping any path there: point pykis.kis.REAL_DOMAIN at the
gateway's root, and the gateway routes the calls to the one account this client may use. PyKis then asks the
gateway for its token (answered locally: no issuance, no KakaoTalk notice) and sends every call there; python-kis's
own rate limit (19 calls/s per process) stays, the gateway keeps the account's real one for all processes.
Run:   python3 pykis_bot.py --id YOUR_HTS_ID   (BOT_LOCAL_APP_KEY, BOT_LOCAL_APP_SECRET and KIS_GATEWAY in the environment)
"""

import argparse
import hashlib
import os

import pykis.kis
from pykis import PyKis


def token_id(token):
    """A short id of the token, never the token itself."""
    return hashlib.sha256(b"token\0" + token.encode()).hexdigest()[:8]


def main():
    parser = argparse.ArgumentParser(description="a python-kis bot through the gateway")
    parser.add_argument("--id", required=True, help="your HTS login id")
    args = parser.parse_args()

    pykis.kis.REAL_DOMAIN = os.environ.get("KIS_GATEWAY", "http://127.0.0.1:9465")
    kis = PyKis(id=args.id, appkey=os.environ["BOT_LOCAL_APP_KEY"], secretkey=os.environ["BOT_LOCAL_APP_SECRET"])
    # A local token: it works only through the gateway, which sends the real one in its place.
    print(f"python-kis: token {token_id(kis.token.token)} of {len(kis.token.token)} characters", flush=True)


if __name__ == "__main__":
    main()
