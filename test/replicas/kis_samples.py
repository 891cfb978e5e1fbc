# -*- coding: utf-8 -*-
"""The official KIS samples' three everyday calls, as they make them with kis_auth.py (the replica beside this
file): koreainvestment/open-trading-api, ``examples_llm/domestic_stock/inquire_price/inquire_price.py``,
``.../order_cash/order_cash.py`` and ``.../inquire_balance/inquire_balance.py``, at the commit of kis_auth.py's
replica. Written anew from them: the same ``ka._url_fetch`` calls (path, tr_id, tr_cont, params, POST for the
order), and the answer read as they read it: ``getBody().output`` (price, order), ``output1``/``output2``,
``ctx_area_fk100``/``ctx_area_nk100`` and ``getHeader().tr_cont`` (balance, which asks for the next page while
tr_cont is M or F). The samples hand these to pandas; this prints which fields came instead (no pandas here).

Run:   HOME=$H /usr/bin/python3 kis_samples.py [--svr prod|vps]   (kis_devlp.yaml in $H/KIS/config)
Prints one JSON line: {"price": {...}, "order": {...}, "balance": {...}}, each with "ok" and the fields it read.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kis_auth as ka  # noqa: E402


def inquire_price(env_dv, fid_cond_mrkt_div_code, fid_input_iscd):
    res = ka._url_fetch(
        "/uapi/domestic-stock/v1/quotations/inquire-price",
        "FHKST01010100",
        "",
        {"FID_COND_MRKT_DIV_CODE": fid_cond_mrkt_div_code, "FID_INPUT_ISCD": fid_input_iscd},
    )
    if not res.isOK():
        res.printError(url="/uapi/domestic-stock/v1/quotations/inquire-price")
        return {"ok": False, "code": res.getErrorCode()}
    output = res.getBody().output
    return {"ok": True, "fields": len(output), "stck_prpr": output["stck_prpr"], "acml_tr_pbmn": output["acml_tr_pbmn"]}


def order_cash(env_dv, ord_dv, cano, acnt_prdt_cd, pdno, ord_dvsn, ord_qty, ord_unpr, excg_id_dvsn_cd):
    real = {"sell": "TTTC0011U", "buy": "TTTC0012U"}
    demo = {"sell": "VTTC0011U", "buy": "VTTC0012U"}
    tr_id = (real if env_dv == "real" else demo)[ord_dv]
    params = {
        "CANO": cano,
        "ACNT_PRDT_CD": acnt_prdt_cd,
        "PDNO": pdno,
        "ORD_DVSN": ord_dvsn,
        "ORD_QTY": ord_qty,
        "ORD_UNPR": ord_unpr,
        "EXCG_ID_DVSN_CD": excg_id_dvsn_cd,
        "SLL_TYPE": "",
        "CNDT_PRIC": "",
    }
    res = ka._url_fetch("/uapi/domestic-stock/v1/trading/order-cash", tr_id, "", params, postFlag=True)
    if not res.isOK():
        res.printError(url="/uapi/domestic-stock/v1/trading/order-cash")
        return {"ok": False, "code": res.getErrorCode()}
    return {"ok": True, "fields": sorted(res.getBody().output)}


def inquire_balance(env_dv, cano, acnt_prdt_cd, FK100="", NK100="", tr_cont="", depth=0, max_depth=10):
    rows1, rows2 = [], []
    while depth <= max_depth:
        tr_id = "TTTC8434R" if env_dv == "real" else "VTTC8434R"
        params = {
            "CANO": cano,
            "ACNT_PRDT_CD": acnt_prdt_cd,
            "AFHR_FLPR_YN": "N",
            "OFL_YN": "",
            "INQR_DVSN": "01",
            "UNPR_DVSN": "01",
            "FUND_STTL_ICLD_YN": "N",
            "FNCG_AMT_AUTO_RDPT_YN": "N",
            "PRCS_DVSN": "00",
            "CTX_AREA_FK100": FK100,
            "CTX_AREA_NK100": NK100,
        }
        res = ka._url_fetch("/uapi/domestic-stock/v1/trading/inquire-balance", tr_id, tr_cont, params)
        if not res.isOK():
            res.printError(url="/uapi/domestic-stock/v1/trading/inquire-balance")
            return {"ok": False, "code": res.getErrorCode()}
        rows1 += res.getBody().output1
        rows2 += res.getBody().output2
        tr_cont = res.getHeader().tr_cont
        FK100 = res.getBody().ctx_area_fk100
        NK100 = res.getBody().ctx_area_nk100
        if tr_cont not in ["M", "F"]:
            break
        tr_cont = "N"
        depth += 1
    return {"ok": True, "pages": depth + 1, "output1Fields": len(rows1[0]) if rows1 else 0, "output2Fields": len(rows2[0]) if rows2 else 0}


def main():
    parser = argparse.ArgumentParser(description="the official samples' price, order and balance calls (replica)")
    parser.add_argument("--svr", choices=("prod", "vps"), default="prod")
    args = parser.parse_args()
    env_dv = "real" if args.svr == "prod" else "demo"
    ka.auth(args.svr)
    trenv = ka.getTREnv()
    # The errors printed by printError go to stderr, so stdout holds the JSON line only.
    real_stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        line = {
            "price": inquire_price(env_dv, "J", "005930"),
            "order": order_cash(env_dv, "buy", trenv.my_acct, trenv.my_prod, "005930", "00", "1", "70000", "KRX"),
            "balance": inquire_balance(env_dv, trenv.my_acct, trenv.my_prod),
            "tokenRequests": ka._token_requests,
        }
    finally:
        sys.stdout = real_stdout
    sys.stdout.write(json.dumps(line) + "\n")
    return 0 if all(line[k]["ok"] for k in ("price", "order", "balance")) else 1


if __name__ == "__main__":
    sys.exit(main())
