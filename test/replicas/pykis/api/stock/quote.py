# -*- coding: utf-8 -*-
"""Replica of python-kis's domestic quote (``pykis/api/stock/quote.py``: ``quote``, ``domestic_quote``,
``KisDomesticQuote``, ``KisDomesticIndicator``; ``pykis/responses/response.py``: ``KisResponse``,
``KisAPIResponse``), at the same commit as ``pykis/kis.py``. Written anew; what the broker's answer decides is
kept:

* the call: ``GET /uapi/domestic-stock/v1/quotations/inquire-price`` with ``FID_COND_MRKT_DIV_CODE=J`` and
  ``FID_INPUT_ISCD``, ``tr_id: FHKST01010100``, on the real domain (``domain="real"``, even for a virtual PyKis),
  through ``PyKis.fetch`` (no ``custtype`` header);
* the answer: ``output.stck_prpr == "0"`` is "not found" (KisNotFoundError); ``rt_cd`` other than 0 is
  KisAPIError; then every field below is read by name from ``output`` (``msg1`` and ``msg_cd`` from the top), so
  an answer missing one (``acml_tr_pbmn``, say) raises KeyError, and an empty one ValueError, as the original does.
  The indicator (EPS, BPS, PER, PBR, 52-week high and low) ignores missing fields, as the original's
  ``ignore_missing=True`` does.

Left out: the foreign quote (``market`` other than "KRX" raises NotImplementedError here), ``kis_repr``, and the
scope objects (``kis.stock(...)`` first calls search-info, which the simulator does not serve).
"""

from decimal import Decimal

from ...dynamic import as_bool, as_date, as_decimal, as_int, as_str, field, mapped, transform
from ...kis import KisException

STOCK_SIGN_TYPE_MAP = {"0": "steady", "1": "upper", "2": "rise", "3": "steady", "4": "lower", "5": "decline"}
STOCK_RISK_TYPE_MAP = {"00": "none", "01": "caution", "02": "warning", "03": "risk"}


class KisAPIError(KisException):
    def __init__(self, data, response):
        self.data = data
        self.rt_cd = int(data["rt_cd"]) if data.get("rt_cd") else None
        self.msg_cd = data.get("msg_cd")
        self.msg1 = data.get("msg1")
        super().__init__(f"[{self.msg_cd}] {self.msg1}", response)


class KisNotFoundError(KisException):
    def __init__(self, data, response, message):
        self.data = data
        super().__init__(message, response)


class KisDomesticIndicator:
    FIELDS = {
        "eps": field("eps", as_decimal),
        "bps": field("bps", as_decimal),
        "per": field("per", as_decimal),
        "pbr": field("pbr", as_decimal),
        "week52_high": field("w52_hgpr", as_decimal),
        "week52_low": field("w52_lwpr", as_decimal),
        "week52_high_date": field("w52_hgpr_date", as_date),
        "week52_low_date": field("w52_lwpr_date", as_date),
    }


class KisDomesticQuote:
    # Read from `output` (KisAPIResponse.__path__ = "output").
    FIELDS = {
        "symbol": field("stck_shrn_iscd", as_str),
        "sector_name": field("bstp_kor_isnm", as_str, default=None, nullable=True),
        "price": field("stck_prpr", as_decimal),
        "volume": field("acml_vol", as_int),
        "amount": field("acml_tr_pbmn", as_decimal),
        "market_cap": field("hts_avls", as_decimal),
        "sign": field("prdy_vrss_sign", mapped(STOCK_SIGN_TYPE_MAP)),
        "risk": field("mrkt_warn_cls_code", mapped(STOCK_RISK_TYPE_MAP)),
        "halt": field("temp_stop_yn", as_bool),
        "overbought": field("short_over_yn", as_bool),
        "prev_volume_rate": field("prdy_vrss_vol_rate", as_decimal),
        "change": field("prdy_vrss", as_decimal),
        "indicator": field(None, lambda output: transform(KisDomesticIndicator(), KisDomesticIndicator.FIELDS, output, ignore_missing=True)),
        "open": field("stck_oprc", as_decimal),
        "high": field("stck_hgpr", as_decimal),
        "low": field("stck_lwpr", as_decimal),
        "high_limit": field("stck_mxpr", as_decimal),
        "low_limit": field("stck_llam", as_decimal),
        "base_price": field("stck_sdpr", as_decimal),
        "tick": field("aspr_unit", as_decimal),
    }
    # KisResponse's own fields, read from the top of the answer (absolute=True).
    RESPONSE_FIELDS = {
        "__message__": field("msg1", lambda s: s.strip()),
        "__code__": field("msg_cd", as_str),
    }
    unit = Decimal(1)
    decimal_places = 0
    exchange_rate = Decimal(1)

    def __init__(self, symbol, market, data):
        self.symbol = symbol
        self.market = market
        response = data["__response__"]
        # __pre_init__: the quote's own check first, then KisResponse's.
        if data["output"]["stck_prpr"] == "0":
            raise KisNotFoundError(data, response, "해당 종목의 현재가를 조회할 수 없습니다.")
        if int(data["rt_cd"]) != 0:
            raise KisAPIError(data, response)
        transform(self, self.RESPONSE_FIELDS, data)
        transform(self, self.FIELDS, data["output"])
        self.__response__ = response

    @property
    def prev_price(self):
        return self.price - self.change

    @property
    def close(self):
        return self.price


def domestic_quote(self, symbol):
    if not symbol:
        raise ValueError("종목코드를 입력해주세요.")
    return self.fetch(
        "/uapi/domestic-stock/v1/quotations/inquire-price",
        api="FHKST01010100",
        params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": symbol},
        response_type=lambda data: KisDomesticQuote(symbol, "KRX", data),
        domain="real",
    )


def quote(self, symbol, market, extended=False):
    if market == "KRX":
        return domestic_quote(self, symbol=symbol)
    raise NotImplementedError("the replica quotes KRX symbols only")
