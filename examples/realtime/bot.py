"""A real-time bot written as KIS's official sample is (examples_user/domestic_stock/domestic_stock_examples_ws.py),
taking its data from broker-token-sidecar's real-time endpoint instead of the broker.

Nothing changes in the bot but two URLs in kis_devlp.yaml: `prod` (the gateway: auth() gets a local token,
auth_ws() the client's own approval key, both answered locally) and `ops` (the real-time endpoint). The endpoint
holds the app key's one WebSocket session at the broker and shares it: this bot and any number of others on the
same key subscribe side by side, where the second would otherwise get OPSP8996 ALREADY IN USE appkey.

Setup: the official kis_auth.py and domestic_stock_functions_ws.py next to this file (or on PYTHONPATH);
kis_devlp.yaml (beside this file, filled in) in ~/KIS/config. Run:   python3 bot.py [--codes 005930 000660] [--rows N]
Against the simulator, in one command from the repository:   npm run example -- realtime
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kis_auth as ka  # noqa: E402
from domestic_stock_functions_ws import ccnl_krx, ccnl_notice  # noqa: E402

try:
    KISWebSocket = ka.KISWebSocket  # the official kis_auth.py: REST and WebSocket in one file
except AttributeError:
    from kis_auth_ws import KISWebSocket  # noqa: E402  (its replica keeps the WebSocket half apart)


def last_row(result):
    """The row on_result got: a pandas DataFrame with the official client, a stand-in with its replica."""
    return result.iloc[-1].to_dict() if hasattr(result, "iloc") else result.rows[-1]


def main():
    parser = argparse.ArgumentParser(description="a real-time bot on kis_auth.py, through the sidecar")
    parser.add_argument("--codes", nargs="*", default=["005930", "000660"])
    parser.add_argument("--rows", type=int, default=0, help="stop after this many rows of each code (0: run on)")
    args = parser.parse_args()

    ka.auth()
    ka.auth_ws()
    trenv = ka.getTREnv()
    kws = KISWebSocket(api_url="/tryitout")
    kws.subscribe(request=ccnl_krx, data=args.codes)
    # Fill notices of the account's HTS id: encrypted, the key and iv in the subscription's answer.
    kws.subscribe(request=ccnl_notice, data=[trenv.my_htsid])
    seen = {code: 0 for code in args.codes}

    def on_result(ws, tr_id, result, data_info):
        row = last_row(result)
        if tr_id == "H0STCNT0":
            code = row["MKSC_SHRN_ISCD"]
            seen[code] = seen.get(code, 0) + 1
            print(f"{code}: price {row['STCK_PRPR']} volume {row['ACML_VOL']}", flush=True)
        else:
            print(f"fill: order {row['ODER_NO']} {row['STCK_SHRN_ISCD']} x{row['CNTG_QTY']} at {row['CNTG_UNPR']}", flush=True)
        if args.rows and all(n >= args.rows for n in seen.values()):
            print("done", flush=True)
            # The official client's loop has no way out: a bot that is done ends its process.
            os._exit(0)

    kws.start(on_result=on_result)


if __name__ == "__main__":
    main()
