# -*- coding: utf-8 -*-
"""Replica of the token handling of KIS's official client ``examples_user/kis_auth.py``.

Source: koreainvestment/open-trading-api, commit 885dd4e2f5c37e4f7e23dd63c15555a9967bc7bc
(``examples_llm/kis_auth.py`` is byte-identical; ``backtester/kis_auth.py`` has the same token code).
Written anew from a reading of that file; the behaviour and side effects are the original's:

* At import, in the original's order: ``config_root = ~/KIS/config`` (``os.path.expanduser``, so HOME
  decides); ``token_tmp = config_root/KIS<YYYYMMDD>`` from ``datetime.today()`` (the process's own clock
  and TZ), computed once; if that file does not exist it is created empty with ``open(path, "w+")`` (on a
  read-only folder, or without ``~/KIS/config``, the import raises OSError); then ``kis_devlp.yaml`` is read
  from ``config_root`` with PyYAML's FullLoader (FileNotFoundError without it); the defaults
  ``product=_cfg["my_prod"]`` are evaluated when the functions are defined.
* ``read_token()`` loads the file as YAML and compares ``valid-date`` (formatted with
  ``datetime.strftime``) as a string with the local ``datetime.today()``; any exception means "no token".
* ``auth()`` reads the file once; without a token it POSTs ``{_cfg[svr]}/oauth2/tokenP`` itself and, on
  HTTP 200, saves the answer to the file; on any other status it prints the original's two-line message
  and returns None without touching the file or the headers.
* ``changeTREnv()`` keeps the original's quirk: ``cfg["my_token"] = my_token if token_key else token_key``
  where ``my_token`` is the *previous* ``_TRENV.my_token`` (``""`` on the first call), so after ``auth()``
  ``getTREnv().my_token`` is ``""``, never the token. The token a bot really sends lives in
  ``_base_headers["authorization"]`` (``"Bearer <token>"``), which ``_url_fetch`` copies into every call.
* ``reAuth()`` keeps the check ``(now - _last_auth_time).seconds >= 86400``, which is never true.
* ``auth_ws()`` POSTs ``/oauth2/Approval`` at every call and reads no file.

HTTP: the original uses ``requests``; this replica uses ``urllib.request`` (no pip packages here). urllib
raises HTTPError for non-2xx answers; that is turned back into a status code so the original's
``status == 200`` test decides, as with ``requests``. Redirects are followed as ``requests`` does (307/308
keep method and body; 301/302/303 become a GET without body). Connection errors propagate, as
``requests.ConnectionError`` does in the original.

* ``_url_fetch()`` sends a business call as the original does: ``{my_url}{api_url}``, the base headers
  (with the in-memory token, app key and secret), ``tr_id`` (a real T/J/C id turned into V... on paper
  trading), ``custtype: P``, ``tr_cont``; GET with the params as a query, or POST with ``json.dumps(params)``;
  HTTP 200 gives an ``APIResp`` (``getResCode``, ``getHeader``, ``getBody`` as namedtuples, ``isOK`` when
  ``rt_cd == "0"``, ``getErrorCode``/``getErrorMessage``), any other status prints the original's
  ``Error Code : ...`` line and gives an ``APIRespError``. Used by bots that call through the gateway.

Left out, because they never read or write the token file: pandas, websockets and pycryptodome (the
imports and everything built on them: ``KISWebSocket``, ``aes_cbc_base64_dec``, ``system_resp``,
``data_fetch``, the open/data maps: replicated in kis_auth_ws.py), ``set_order_hash_key`` (commented out in the original's
``_url_fetch``) and ``clearConsole``.

Observation only (replica additions; they never change behaviour):
``_created_at_import`` (this import created the empty file), ``_token_requests`` (tokenP POSTs sent),
``_approval_requests`` (Approval POSTs sent), ``_last_auth_ok`` (the last ``auth()`` ended with a token).
"""

import copy
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import namedtuple
from datetime import datetime

import yaml

# --- observation counters (replica only) ---------------------------------------------------------------
_created_at_import = False
_token_requests = 0
_approval_requests = 0
_last_auth_ok = False

key_bytes = 32
config_root = os.path.join(os.path.expanduser("~"), "KIS", "config")
# The daily file name: the local date of the import, computed once.
token_tmp = os.path.join(config_root, "KIS" + datetime.today().strftime("%Y%m%d"))

# As in the original: create today's file empty when it is missing. The handle stays bound to `f`
# (and therefore open) until the `with` below rebinds the name, exactly as in the original.
if os.path.exists(token_tmp) == False:  # noqa: E712 (kept as the original writes it)
    f = open(token_tmp, "w+")
    _created_at_import = True

with open(os.path.join(config_root, "kis_devlp.yaml"), encoding="UTF-8") as f:
    _cfg = yaml.load(f, Loader=yaml.FullLoader)

_TRENV = tuple()
_last_auth_time = datetime.now()
_autoReAuth = False
_DEBUG = False
_isPaper = False
_smartSleep = 0.1

_base_headers = {
    "Content-Type": "application/json",
    "Accept": "text/plain",
    "charset": "UTF-8",
    "User-Agent": _cfg["my_agent"],
}


# --- HTTP (stands in for requests.post) ---------------------------------------------------------------
class _RedirectLikeRequests(urllib.request.HTTPRedirectHandler):
    """requests follows up to 30 redirects; 307/308 keep the method and body, 301/302/303 turn a POST into
    a GET without body (urllib's default already does the latter but refuses 307/308 for POST)."""

    max_redirections = 30

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if code in (307, 308):
            return urllib.request.Request(
                newurl,
                data=req.data,
                headers=dict(req.header_items()),
                origin_req_host=req.origin_req_host,
                unverifiable=True,
                method=req.get_method(),
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_RedirectLikeRequests)


class _Response:
    """The two things the original reads from a requests.Response: status_code and json()."""

    def __init__(self, status_code, content, headers=None):
        self.status_code = status_code
        self.content = content
        # As requests' headers: the names in the case the server sent them (APIResp keeps the lower-case ones).
        self.headers = dict(headers or {})

    @property
    def text(self):
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.content)


def _send(req):
    try:
        with _opener.open(req) as resp:
            return _Response(resp.status, resp.read(), dict(resp.headers.items()))
    except urllib.error.HTTPError as e:
        # requests does not raise on non-2xx: hand the status back so the caller's `== 200` decides.
        try:
            content = e.read()
        except Exception:
            content = b""
        return _Response(e.code, content, dict(e.headers.items()) if e.headers else {})


def _get(url, params, headers):
    query = urllib.parse.urlencode(params or {})
    return _send(urllib.request.Request(f"{url}?{query}" if query else url, headers=headers, method="GET"))


def _post(url, data, headers):
    body = data.encode("utf-8") if isinstance(data, str) else data
    return _send(urllib.request.Request(url, data=body, headers=headers, method="POST"))


# --- token file -------------------------------------------------------------------------------------------
def save_token(my_token, my_expired):
    valid_date = datetime.strptime(my_expired, "%Y-%m-%d %H:%M:%S")
    with open(token_tmp, "w", encoding="utf-8") as f:
        f.write(f"token: {my_token}\n")
        f.write(f"valid-date: {valid_date}\n")


def read_token():
    try:
        with open(token_tmp, encoding="UTF-8") as f:
            tkg_tmp = yaml.load(f, Loader=yaml.FullLoader)

        # Both sides become "YYYY-MM-DD HH:MM:SS" strings; a naive comparison with the local clock.
        exp_dt = datetime.strftime(tkg_tmp["valid-date"], "%Y-%m-%d %H:%M:%S")
        now_dt = datetime.today().strftime("%Y-%m-%d %H:%M:%S")

        if exp_dt > now_dt:
            return tkg_tmp["token"]
        else:
            return None
    except Exception:
        return None


def _getBaseHeader():
    if _autoReAuth:
        reAuth()
    return copy.deepcopy(_base_headers)


def _setTRENV(cfg):
    nt1 = namedtuple(
        "KISEnv",
        ["my_app", "my_sec", "my_acct", "my_prod", "my_htsid", "my_token", "my_url", "my_url_ws"],
    )
    d = {
        "my_app": cfg["my_app"],
        "my_sec": cfg["my_sec"],
        "my_acct": cfg["my_acct"],
        "my_prod": cfg["my_prod"],
        "my_htsid": cfg["my_htsid"],
        "my_token": cfg["my_token"],
        "my_url": cfg["my_url"],
        "my_url_ws": cfg["my_url_ws"],
    }
    global _TRENV
    _TRENV = nt1(**d)


def isPaperTrading():
    return _isPaper


def changeTREnv(token_key, svr="prod", product=_cfg["my_prod"]):
    cfg = dict()

    global _isPaper
    if svr == "prod":
        ak1 = "my_app"
        ak2 = "my_sec"
        _isPaper = False
        _smartSleep = 0.05  # noqa: F841 (a local in the original too: the module value never changes)
    elif svr == "vps":
        ak1 = "paper_app"
        ak2 = "paper_sec"
        _isPaper = True
        _smartSleep = 0.5  # noqa: F841

    cfg["my_app"] = _cfg[ak1]
    cfg["my_sec"] = _cfg[ak2]

    # Account by server and product code; other combinations leave my_acct unset (KeyError below).
    if svr == "prod" and product in ("01", "22", "29"):
        cfg["my_acct"] = _cfg["my_acct_stock"]
    elif svr == "prod" and product in ("03", "08"):
        cfg["my_acct"] = _cfg["my_acct_future"]
    elif svr == "vps" and product == "01":
        cfg["my_acct"] = _cfg["my_paper_stock"]
    elif svr == "vps" and product == "03":
        cfg["my_acct"] = _cfg["my_paper_future"]

    cfg["my_prod"] = product
    cfg["my_htsid"] = _cfg["my_htsid"]
    cfg["my_url"] = _cfg[svr]

    try:
        my_token = _TRENV.my_token
    except AttributeError:
        my_token = ""
    # The original's expression, kept: a truthy token_key stores the PREVIOUS my_token.
    cfg["my_token"] = my_token if token_key else token_key
    cfg["my_url_ws"] = _cfg["ops" if svr == "prod" else "vops"]

    _setTRENV(cfg)


def _getResultObject(json_data):
    _tc_ = namedtuple("res", json_data.keys())
    return _tc_(**json_data)


def auth(svr="prod", product=_cfg["my_prod"], url=None):
    global _token_requests, _last_auth_ok
    _last_auth_ok = False

    p = {
        "grant_type": "client_credentials",
    }
    if svr == "prod":
        ak1 = "my_app"
        ak2 = "my_sec"
    elif svr == "vps":
        ak1 = "paper_app"
        ak2 = "paper_sec"

    p["appkey"] = _cfg[ak1]
    p["appsecret"] = _cfg[ak2]

    saved_token = read_token()
    if saved_token is None:
        url = f"{_cfg[svr]}/oauth2/tokenP"
        _token_requests += 1
        res = _post(url, json.dumps(p), _getBaseHeader())
        rescode = res.status_code
        if rescode == 200:
            my_token = _getResultObject(res.json()).access_token
            my_expired = _getResultObject(res.json()).access_token_token_expired
            save_token(my_token, my_expired)
        else:
            print("Get Authentification token fail!\nYou have to restart your app!!!")
            return
    else:
        my_token = saved_token

    changeTREnv(my_token, svr, product)

    _base_headers["authorization"] = f"Bearer {my_token}"
    _base_headers["appkey"] = _TRENV.my_app
    _base_headers["appsecret"] = _TRENV.my_sec

    global _last_auth_time
    _last_auth_time = datetime.now()
    _last_auth_ok = True

    if _DEBUG:
        print(f"[{_last_auth_time}] => get AUTH Key completed!")


def reAuth(svr="prod", product=_cfg["my_prod"]):
    n2 = datetime.now()
    # timedelta.seconds is the seconds part only (0..86399): this is never true, as in the original.
    if (n2 - _last_auth_time).seconds >= 86400:
        auth(svr, product)


def getEnv():
    return _cfg


def smart_sleep():
    if _DEBUG:
        print(f"[RateLimit] Sleeping {_smartSleep}s ")
    time.sleep(_smartSleep)


def getTREnv():
    return _TRENV


# --- websocket approval key -------------------------------------------------------------------------------
_base_headers_ws = {
    "content-type": "utf-8",
}


def _getBaseHeader_ws():
    if _autoReAuth:
        reAuth_ws()
    return copy.deepcopy(_base_headers_ws)


def auth_ws(svr="prod", product=_cfg["my_prod"]):
    global _approval_requests
    p = {"grant_type": "client_credentials"}
    if svr == "prod":
        ak1 = "my_app"
        ak2 = "my_sec"
    elif svr == "vps":
        ak1 = "paper_app"
        ak2 = "paper_sec"

    p["appkey"] = _cfg[ak1]
    p["secretkey"] = _cfg[ak2]

    url = f"{_cfg[svr]}/oauth2/Approval"
    _approval_requests += 1
    res = _post(url, json.dumps(p), _getBaseHeader())
    rescode = res.status_code
    if rescode == 200:
        approval_key = _getResultObject(res.json()).approval_key
    else:
        print("Get Approval token fail!\nYou have to restart your app!!!")
        return

    # As in the original: token_key None stores None as my_token.
    changeTREnv(None, svr, product)

    _base_headers_ws["approval_key"] = approval_key

    global _last_auth_time
    _last_auth_time = datetime.now()

    if _DEBUG:
        print(f"[{_last_auth_time}] => get AUTH Key completed!")


def reAuth_ws(svr="prod", product=_cfg["my_prod"]):
    n2 = datetime.now()
    if (n2 - _last_auth_time).seconds >= 86400:
        auth_ws(svr, product)


class APIResp:
    def __init__(self, resp):
        self._rescode = resp.status_code
        self._resp = resp
        self._header = self._setHeader()
        self._body = self._setBody()
        self._err_code = self._body.msg_cd
        self._err_message = self._body.msg1

    def getResCode(self):
        return self._rescode

    def _setHeader(self):
        # As the original: every all-lowercase header name becomes a field, and a name that is no identifier
        # ("content-type") makes namedtuple raise ValueError. KIS sends "Content-Type" and lower-case tr_id,
        # tr_cont, gt_uid; a server or proxy that lower-cases every name breaks this client.
        fld = dict()
        for x in self._resp.headers.keys():
            if x.islower():
                fld[x] = self._resp.headers.get(x)
        return namedtuple("header", fld.keys())(**fld)

    def _setBody(self):
        return namedtuple("body", self._resp.json().keys())(**self._resp.json())

    def getHeader(self):
        return self._header

    def getBody(self):
        return self._body

    def getResponse(self):
        return self._resp

    def isOK(self):
        try:
            return self.getBody().rt_cd == "0"
        except Exception:
            return False

    def getErrorCode(self):
        return self._err_code

    def getErrorMessage(self):
        return self._err_message

    def printError(self, url):
        print("-------------------------------\nError in response: ", self.getResCode(), " url=", url)
        print("rt_cd : ", self.getBody().rt_cd, "/ msg_cd : ", self.getErrorCode(), "/ msg1 : ", self.getErrorMessage())
        print("-------------------------------")


class APIRespError(APIResp):
    def __init__(self, status_code, error_text):
        self.status_code = status_code
        self.error_text = error_text
        self._error_code = str(status_code)
        self._error_message = error_text

    def isOK(self):
        return False

    def getErrorCode(self):
        return self._error_code

    def getErrorMessage(self):
        return self._error_message

    def getBody(self):
        class EmptyBody:
            def __getattr__(self, name):
                return None

        return EmptyBody()

    def getHeader(self):
        class EmptyHeader:
            tr_cont = ""

            def __getattr__(self, name):
                return ""

        return EmptyHeader()

    def getResCode(self):
        return self.status_code

    def printError(self, url=""):
        print(f"Error Code : {self.status_code} | {self.error_text}")
        if url:
            print(f"URL: {url}")


def _url_fetch(api_url, ptr_id, tr_cont, params, appendHeaders=None, postFlag=False, hashFlag=True):
    url = f"{getTREnv().my_url}{api_url}"
    headers = _getBaseHeader()
    tr_id = ptr_id
    if ptr_id[0] in ("T", "J", "C"):
        if isPaperTrading():
            tr_id = "V" + ptr_id[1:]
    headers["tr_id"] = tr_id
    headers["custtype"] = "P"
    headers["tr_cont"] = tr_cont
    if appendHeaders is not None and len(appendHeaders) > 0:
        for x in appendHeaders.keys():
            headers[x] = appendHeaders.get(x)
    if postFlag:
        res = _post(url, json.dumps(params), headers)
    else:
        res = _get(url, params, headers)
    if res.status_code == 200:
        return APIResp(res)
    print("Error Code : " + str(res.status_code) + " | " + res.text)
    return APIRespError(res.status_code, res.text)
