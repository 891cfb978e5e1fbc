# -*- coding: utf-8 -*-
"""A real-time bot on python-kis (the replica package ``pykis`` next to this file), the way its README shows one:
``kis = PyKis(id=..., appkey=..., secretkey=..., keep_token=True)``, then handlers on ``kis.websocket``: for prices
and order books what ``kis.stock(code).on("price" | "orderbook", ...)`` registers (``websocket.on("H0STCNT0" |
"H0STASP0", code)``), for fills what ``kis.account().on("execution", ...)`` registers (``H0STCNI0`` keyed by the
HTS id). It runs until SIGTERM.

Usage:
  python3 pykis_ws_bot.py --id HTSID --appkey-file F --secret-file F [--keep-token DIR]
                          [--price CODE ...] [--orderbook CODE ...] [--fills]

Hosts: PYKIS_REPLICA_REAL_DOMAIN (REST, for the approval keys) and PYKIS_REPLICA_WEBSOCKET_REAL_DOMAIN.

Output, one JSON line per event on stdout:
  {"event": "data", "trId", "symbol", "volume"|null, "price"|null}   an event python-kis delivered to the handler
  {"event": "log", "level", "message"}    python-kis's own log lines ("RTC Subscribed to H0STCNT0.005930",
                                          "RTC Session already in use", "RTC Failed to parse message: ...",
                                          "RTC Reconnecting in 5 seconds...", ...)
  {"event": "approvals", "count": n}      after each log line: the approval keys asked for so far
Credentials are read from files and never printed.
"""

import argparse
import logging
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _replica_events import emit  # noqa: E402
from _replica_http import read_secret  # noqa: E402
from pykis import PyKis  # noqa: E402


class _LogEvents(logging.Handler):
    def __init__(self, kis):
        super().__init__(level=logging.INFO)
        self.kis = kis

    def emit(self, record):
        emit({"event": "log", "level": record.levelname, "message": record.getMessage()})
        emit({"event": "approvals", "count": self.kis.websocket._approval_requests})


def on_event(client, tr, response):
    emit({
        "event": "data",
        "trId": tr.id,
        "symbol": getattr(response, "symbol", None),
        "volume": getattr(response, "volume", None),
        "price": str(response.price) if getattr(response, "price", None) is not None else None,
    })


def main():
    parser = argparse.ArgumentParser(description="python-kis real-time bot (replica)")
    parser.add_argument("--id", required=True, help="HTS login id")
    parser.add_argument("--appkey-file", required=True)
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--keep-token", metavar="DIR")
    parser.add_argument("--price", nargs="*", default=[])
    parser.add_argument("--orderbook", nargs="*", default=[])
    parser.add_argument("--fills", action="store_true")
    args = parser.parse_args()

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    kis = PyKis(
        id=args.id,
        appkey=read_secret(args.appkey_file),
        secretkey=read_secret(args.secret_file),
        keep_token=args.keep_token if args.keep_token else True,
    )
    logger = logging.getLogger("pykis")
    logger.setLevel(logging.INFO)
    logger.addHandler(_LogEvents(kis))

    for code in args.price:
        kis.websocket.on("H0STCNT0", code, on_event)
    for code in args.orderbook:
        kis.websocket.on("H0STASP0", code, on_event)
    if args.fills:
        kis.websocket.on("H0STCNI0", kis.appkey.id, on_event, primary=True)

    signal.sigwait({signal.SIGTERM})
    return 0


if __name__ == "__main__":
    sys.exit(main())
