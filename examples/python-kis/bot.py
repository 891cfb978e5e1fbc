"""A bot on python-kis (Soju06/python-kis), beside broker-token-sidecar.

With keep_token=DIR, PyKis loads the token kept in DIR at construction, under a file name it computes from
the HTS id, the app key and the app secret. The sidecar's `python-kis` sink writes exactly that file
(sidecar.yaml beside this file), so PyKis starts with the sidecar's token and issues none of its own: python-kis
asks for a new token only when less than 10 minutes are left, and the sidecar renews an hour before expiry.

A process that lives longer than a day should be restarted daily (or construct PyKis again): python-kis reads
the file only once. The quote below is python-kis's own call (pykis.api.stock.quote), as any bot makes it.

Run:   python3 bot.py --id YOUR_HTS_ID --keep-token /shared/pykis   (KIS_APP_KEY and KIS_APP_SECRET in the environment)
KIS_BASE_URL, when set, replaces the broker's host (python-kis has it built in): for the simulator only, as in
   npm run example -- python-kis
"""

import argparse
import hashlib
import os

import pykis.kis
from pykis import PyKis
from pykis.api.stock.quote import quote


def token_id(token):
    """The token's short id, as `broker-token-sidecar status` shows it: never print the token itself."""
    return hashlib.sha256(b"token\0" + token.encode()).hexdigest()[:8]


def main():
    parser = argparse.ArgumentParser(description="a python-kis bot that takes the sidecar's token")
    parser.add_argument("--id", required=True, help="your HTS login id (the sink's htsId)")
    parser.add_argument("--keep-token", required=True, help="the sink's dir")
    args = parser.parse_args()

    if os.environ.get("KIS_BASE_URL"):
        # pykis.kis reads this global at every request.
        pykis.kis.REAL_DOMAIN = os.environ["KIS_BASE_URL"]
    kis = PyKis(
        id=args.id,
        appkey=os.environ["KIS_APP_KEY"],
        secretkey=os.environ["KIS_APP_SECRET"],
        keep_token=args.keep_token,
    )
    token = kis.token.token  # the token python-kis sends; loaded from the sidecar's file
    print(f"python-kis: token {token_id(token)}", flush=True)
    price = quote(kis, "005930", "KRX")
    print(f"005930: {price.price:f} ({price.sign}, volume {price.volume})", flush=True)


if __name__ == "__main__":
    main()
