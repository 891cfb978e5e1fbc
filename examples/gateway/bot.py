"""A bot written as KIS's official samples are, calling the broker through broker-token-sidecar's gateway.

Nothing changes in the bot: kis_auth.py reads kis_devlp.yaml (the local key and secret, the gateway's URL as
`prod`), asks for a token at auth() (the gateway answers it locally: no issuance, no KakaoTalk notice), and
sends every call with that token and the local key and secret; the gateway swaps in the real ones, keeps the
account's per-second budget with every other program on it, and replaces a token that dies. The bot never
holds the real app secret, and a token it keeps in memory past its life still works: the gateway sends the
current one.

Setup: the official kis_auth.py next to this file (or on PYTHONPATH); kis_devlp.yaml (beside this file, filled in)
in ~/KIS/config. Run:   python3 bot.py [--calls N]
Against the simulator, in one command from the repository:   npm run example -- gateway
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kis_auth as ka  # noqa: E402


def current_price(code):
    """The official sample's inquire_price, in short: FHKST01010100 on the J market."""
    res = ka._url_fetch(
        "/uapi/domestic-stock/v1/quotations/inquire-price",
        "FHKST01010100",
        "",
        {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code},
    )
    if not res.isOK():
        return f"error {res.getErrorCode()}"
    return res.getBody().output["stck_prpr"]


def main():
    parser = argparse.ArgumentParser(description="a bot on kis_auth.py, through the gateway")
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    ka.auth("prod")
    for _ in range(args.calls):
        print(f"005930: {current_price('005930')}", flush=True)
        time.sleep(0.1)
    # The WebSocket approval key comes from the gateway too: the bot's own, for the sidecar's real-time endpoint
    # (examples/realtime/), never the account's real one.
    ka.auth_ws("prod")
    print(f"approval key: {'yes' if ka._base_headers_ws.get('approval_key') else 'no'}", flush=True)


if __name__ == "__main__":
    main()
