# -*- coding: utf-8 -*-
"""Replica of three request functions of the official ``examples_user/domestic_stock/domestic_stock_functions_ws.py``
(open-trading-api 885dd4e2f5c37e4f7e23dd63c15555a9967bc7bc), the ones ``KISWebSocket.subscribe(request=...)`` is
given for domestic quotes and fills: each validates its arguments, builds the message with ``data_fetch`` and
returns it with the TR's full column list, the list every record is read against.

* ``ccnl_krx``: H0STCNT0 (real and demo), 46 columns.
* ``asking_price_krx``: H0STASP0 (real and demo), 59 columns.
* ``ccnl_notice``: H0STCNI0 (real) / H0STCNI9 (demo), tr_key the HTS id, 26 columns; encrypted.

Deviation: ``data_fetch`` comes from kis_auth_ws.py (the original's lives in kis_auth.py, imported as ``ka``).
"""

import kis_auth_ws as ka


def asking_price_krx(tr_type: str, tr_key: str, env_dv: str = "real"):
    if not tr_key:
        raise ValueError("tr_key는 필수 입력값입니다.")
    if env_dv == "real":
        tr_id = "H0STASP0"
    elif env_dv == "demo":
        tr_id = "H0STASP0"
    else:
        raise ValueError("env_dv는 'real' 또는 'demo'만 가능합니다.")
    msg = ka.data_fetch(tr_id, tr_type, {"tr_key": tr_key})
    asks = [f"ASKP{i}" for i in range(1, 11)]
    bids = [f"BIDP{i}" for i in range(1, 11)]
    columns = (
        ["MKSC_SHRN_ISCD", "BSOP_HOUR", "HOUR_CLS_CODE"]
        + asks
        + bids
        + [f"ASKP_RSQN{i}" for i in range(1, 11)]
        + [f"BIDP_RSQN{i}" for i in range(1, 11)]
        + ["TOTAL_ASKP_RSQN", "TOTAL_BIDP_RSQN", "OVTM_TOTAL_ASKP_RSQN", "OVTM_TOTAL_BIDP_RSQN"]
        + ["ANTC_CNPR", "ANTC_CNQN", "ANTC_VOL", "ANTC_CNTG_VRSS", "ANTC_CNTG_VRSS_SIGN"]
        + ["ANTC_CNTG_PRDY_CTRT", "ACML_VOL", "TOTAL_ASKP_RSQN_ICDC", "TOTAL_BIDP_RSQN_ICDC"]
        + ["OVTM_TOTAL_ASKP_ICDC", "OVTM_TOTAL_BIDP_ICDC", "STCK_DEAL_CLS_CODE"]
    )
    return msg, columns


def ccnl_krx(tr_type: str, tr_key: str, env_dv: str = "real"):
    if not tr_key:
        raise ValueError("tr_key is required and cannot be an empty string")
    if env_dv == "real":
        tr_id = "H0STCNT0"
    elif env_dv == "demo":
        tr_id = "H0STCNT0"
    else:
        raise ValueError("env_dv can only be 'real' or 'demo'")
    msg = ka.data_fetch(tr_id, tr_type, {"tr_key": tr_key})
    columns = [
        "MKSC_SHRN_ISCD", "STCK_CNTG_HOUR", "STCK_PRPR", "PRDY_VRSS_SIGN",
        "PRDY_VRSS", "PRDY_CTRT", "WGHN_AVRG_STCK_PRC", "STCK_OPRC",
        "STCK_HGPR", "STCK_LWPR", "ASKP1", "BIDP1", "CNTG_VOL", "ACML_VOL",
        "ACML_TR_PBMN", "SELN_CNTG_CSNU", "SHNU_CNTG_CSNU", "NTBY_CNTG_CSNU",
        "CTTR", "SELN_CNTG_SMTN", "SHNU_CNTG_SMTN", "CCLD_DVSN", "SHNU_RATE",
        "PRDY_VOL_VRSS_ACML_VOL_RATE", "OPRC_HOUR", "OPRC_VRSS_PRPR_SIGN",
        "OPRC_VRSS_PRPR", "HGPR_HOUR", "HGPR_VRSS_PRPR_SIGN", "HGPR_VRSS_PRPR",
        "LWPR_HOUR", "LWPR_VRSS_PRPR_SIGN", "LWPR_VRSS_PRPR", "BSOP_DATE",
        "NEW_MKOP_CLS_CODE", "TRHT_YN", "ASKP_RSQN1", "BIDP_RSQN1",
        "TOTAL_ASKP_RSQN", "TOTAL_BIDP_RSQN", "VOL_TNRT",
        "PRDY_SMNS_HOUR_ACML_VOL", "PRDY_SMNS_HOUR_ACML_VOL_RATE",
        "HOUR_CLS_CODE", "MRKT_TRTM_CLS_CODE", "VI_STND_PRC",
    ]  # fmt: skip
    return msg, columns


def ccnl_notice(tr_type: str, tr_key: str, env_dv: str = "real"):
    if not tr_key:
        raise ValueError("tr_key는 필수 입력값입니다.")
    if env_dv == "real":
        tr_id = "H0STCNI0"
    elif env_dv == "demo":
        tr_id = "H0STCNI9"
    else:
        raise ValueError("env_dv는 'real' 또는 'demo'만 가능합니다.")
    msg = ka.data_fetch(tr_id, tr_type, {"tr_key": tr_key})
    columns = [
        "CUST_ID", "ACNT_NO", "ODER_NO", "OODER_NO", "SELN_BYOV_CLS", "RCTF_CLS",
        "ODER_KIND", "ODER_COND", "STCK_SHRN_ISCD", "CNTG_QTY", "CNTG_UNPR",
        "STCK_CNTG_HOUR", "RFUS_YN", "CNTG_YN", "ACPT_YN", "BRNC_NO", "ODER_QTY",
        "ACNT_NAME", "ORD_COND_PRC", "ORD_EXG_GB", "POPUP_YN", "FILLER", "CRDT_CLS",
        "CRDT_LOAN_DATE", "CNTG_ISNM40", "ODER_PRC",
    ]  # fmt: skip
    return msg, columns
