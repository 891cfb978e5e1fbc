# -*- coding: utf-8 -*-
"""A real-time bot written the way KIS's official sample is (``examples_user/domestic_stock/
domestic_stock_examples_ws.py`` at open-trading-api 885dd4e2): ``ka.auth()``, ``ka.auth_ws()``,
``kws = KISWebSocket(api_url="/tryitout")``, ``kws.subscribe(request=..., data=[...])`` per kind, then
``kws.start(on_result=...)``. kis_auth.py, kis_auth_ws.py and domestic_stock_functions_ws.py are found next to it;
the broker hosts (``prod``/``ops`` or ``vps``/``vops``) come from ~/KIS/config/kis_devlp.yaml, as in the sample.

Usage:
  python3 kis_ws_bot.py [--svr prod|vps] [--price CODE ...] [--orderbook CODE ...] [--fills] [--max-retries N]

``--fills`` subscribes ``ccnl_notice`` for the HTS id of kis_devlp.yaml (``trenv.my_htsid``), as the sample does.

Output: one JSON line per event on stdout (the original's own prints go to stderr):
  {"event": "sent", "trId", "trKey", "trType"}                       a registration sent (from the original's log)
  {"event": "control", "trId", "trKey", "rtCd", "msgCd", "msg1", "encrypt", "keyIv": bool}   an answer received
  {"event": "pingpong"}                                                a PINGPONG received (the original answers it)
  {"event": "data", "trId", "count", "rows": [{column: text|null}], "indexLength": n}          what on_result got
  {"event": "connect"} / {"event": "closed", "code"} / {"event": "exception", "error"}         the runner's loop
  {"event": "exit", "retries": n}                                      start() returned (retries used up)
The approval key is never printed (the original logs it; those log lines are read here, not passed on), nor the
fill notices' key and iv: ``keyIv`` only says whether an answer carried them.

Logging: the sample calls logging.basicConfig(level=INFO); this bot gives the root logger the same level and a
handler that turns the original's "send message >>" / "received message >>" lines into the events above.
"""

import argparse
import contextlib
import json
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _replica_events import emit  # noqa: E402  (first: it keeps the real stdout)
import kis_auth as ka  # noqa: E402  (import-time side effects, as in the sample)
import kis_auth_ws as kaws  # noqa: E402
from domestic_stock_functions_ws import asking_price_krx, ccnl_krx, ccnl_notice  # noqa: E402


class _EventLog(logging.Handler):
    """Reads the original's INFO lines; keeps the count of the last data frame for the on_result that follows."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.last_count = None

    def emit(self, record):
        text = record.getMessage()
        if text.startswith("send message >> "):
            msg = json.loads(text[len("send message >> "):])
            inp = msg["body"]["input"]
            emit({"event": "sent", "trId": inp["tr_id"], "trKey": inp["tr_key"], "trType": msg["header"]["tr_type"]})
        elif text.startswith("received message >> "):
            self.received(text[len("received message >> "):])

    def received(self, raw):
        if raw[:1] in ("0", "1"):
            parts = raw.split("|")
            self.last_count = int(parts[2]) if len(parts) >= 3 and parts[2].isdigit() else None
            return
        message = json.loads(raw)
        header = message.get("header", {})
        if header.get("tr_id") == "PINGPONG":
            emit({"event": "pingpong"})
            return
        body = message.get("body", {})
        emit({
            "event": "control",
            "trId": header.get("tr_id"),
            "trKey": header.get("tr_key"),
            "encrypt": header.get("encrypt"),
            "rtCd": body.get("rt_cd"),
            "msgCd": body.get("msg_cd"),
            "msg1": body.get("msg1"),
            "keyIv": "output" in body,
        })


def main():
    parser = argparse.ArgumentParser(description="official KIS real-time sample (replica)")
    parser.add_argument("--svr", choices=("prod", "vps"), default="prod")
    parser.add_argument("--price", nargs="*", default=[])
    parser.add_argument("--orderbook", nargs="*", default=[])
    parser.add_argument("--fills", action="store_true")
    parser.add_argument("--max-retries", type=int, default=3)
    args = parser.parse_args()

    log = _EventLog()
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger().addHandler(log)
    kaws.set_observer(emit)

    env_dv = "real" if args.svr == "prod" else "demo"
    with contextlib.redirect_stdout(sys.stderr):
        ka.auth(args.svr)
        ka.auth_ws(args.svr)
    trenv = ka.getTREnv()

    kws = kaws.KISWebSocket(api_url="/tryitout", max_retries=args.max_retries)
    if args.orderbook:
        kws.subscribe(request=asking_price_krx, data=args.orderbook, kwargs={"env_dv": env_dv})
    if args.price:
        kws.subscribe(request=ccnl_krx, data=args.price, kwargs={"env_dv": env_dv})
    if args.fills:
        kws.subscribe(request=ccnl_notice, data=[trenv.my_htsid], kwargs={"env_dv": env_dv})

    def on_result(ws, tr_id, result, data_info):
        emit({"event": "data", "trId": tr_id, "count": log.last_count, "rows": result.rows, "indexLength": len(result.index)})

    with contextlib.redirect_stdout(sys.stderr):
        kws.start(on_result=on_result)
    emit({"event": "exit", "retries": kws.retry_count})
    return 0


if __name__ == "__main__":
    sys.exit(main())
