# -*- coding: utf-8 -*-
"""A bot that uses python-kis (the replica package ``pykis`` next to this file) with keep_token, the way
python-kis's README shows: ``PyKis(id=..., appkey=..., secretkey=..., keep_token=...)`` then uses the token.

Usage:
  python3 pykis_bot.py --id HTSID --appkey-file F --secret-file F [--keep-token DIR]
                       [--virtual --virtual-appkey-file F --virtual-secret-file F] [--quote SYMBOL]

Credentials are read from files (never argv); one trailing newline ("\\n" or "\\r\\n") is stripped.
Without --keep-token the bot passes keep_token=True (python-kis's ~/.pykis/cache, home-relative).
Reads ``kis.token`` (real) or ``kis.primary_token`` (--virtual) once and prints one JSON line:
  {"token": ..., "file": <the hashed cache file it loads and saves>, "tokenRequests": n}
With --quote, it then quotes SYMBOL on KRX as python-kis's ``quote(kis, SYMBOL, "KRX")`` does (pykis/api/stock/
quote.py) and adds "quote": {price, volume, amount, market_cap, sign, risk, eps, per, week52_high_date, ...}.
Broker hosts: PYKIS_REPLICA_REAL_DOMAIN / PYKIS_REPLICA_VIRTUAL_DOMAIN (see pykis/__init__.py).
Errors (bad key lengths, an HTTP error from tokenP) propagate: traceback, non-zero exit.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _replica_http import read_secret  # noqa: E402
from pykis import PyKis  # noqa: E402
from pykis.api.stock.quote import quote  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description="python-kis style bot (replica)")
    parser.add_argument("--id", required=True, help="HTS login id")
    parser.add_argument("--appkey-file", required=True)
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--virtual", action="store_true")
    parser.add_argument("--virtual-appkey-file")
    parser.add_argument("--virtual-secret-file")
    parser.add_argument("--keep-token", metavar="DIR", help="token folder (default: keep_token=True)")
    parser.add_argument("--quote", metavar="SYMBOL", help="then quote this KRX symbol, as python-kis does")
    args = parser.parse_args()

    kwargs = {
        "id": args.id,
        "appkey": read_secret(args.appkey_file),
        "secretkey": read_secret(args.secret_file),
        "keep_token": args.keep_token if args.keep_token else True,
    }
    if args.virtual:
        if not args.virtual_appkey_file or not args.virtual_secret_file:
            parser.error("--virtual needs --virtual-appkey-file and --virtual-secret-file")
        kwargs["virtual_id"] = args.id
        kwargs["virtual_appkey"] = read_secret(args.virtual_appkey_file)
        kwargs["virtual_secretkey"] = read_secret(args.virtual_secret_file)

    kis = PyKis(**kwargs)
    domain = "virtual" if args.virtual else "real"
    token = kis.primary_token if args.virtual else kis.token
    line = {
        "token": token.token,
        "file": str(kis._keep_token / kis._get_hashed_token_name(domain)),
        "tokenRequests": kis._token_requests,
    }
    if args.quote:
        q = quote(kis, args.quote, "KRX")
        line["quote"] = {
            "symbol": q.symbol,
            "price": f"{q.price:f}",
            "change": f"{q.change:f}",
            "volume": q.volume,
            "amount": f"{q.amount:f}",
            "marketCap": f"{q.market_cap:f}",
            "sign": q.sign,
            "risk": q.risk,
            "halt": q.halt,
            "eps": f"{q.indicator.eps:f}",
            "per": f"{q.indicator.per:f}",
            "week52HighDate": q.indicator.week52_high_date.isoformat(),
            "message": q.__message__,
        }
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
