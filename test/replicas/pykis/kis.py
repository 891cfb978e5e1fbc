# -*- coding: utf-8 -*-
"""Replica of the token handling of python-kis (Soju06/python-kis, commit
6fcde3fa080108edbca562b6fef136bb580f777e): ``pykis/kis.py`` (PyKis), ``pykis/api/auth/token.py``
(KisAccessToken, token_issue), ``pykis/client/appkey.py`` (KisKey), ``pykis/responses/dynamic.py`` and
``pykis/responses/types.py`` (how a token file is turned into an object), ``pykis/__env__.py`` and
``pykis/utils/workspace.py`` (constants, ~/.pykis/cache). Written anew; behaviour kept:

* ``KisKey(id, appkey, secretkey)``: ValueError unless id is non-empty, appkey has 36 characters and
  secretkey 180. Note that PyKis builds the *virtual* KisKey with ``id=id`` (the real HTS id), so
  ``virtual_id`` plays no part in file names or hashes.
* ``KisAccessToken``: attributes as in python-kis: ``token`` (field access_token), ``type``
  (token_type), ``expired_at`` (access_token_token_expired, "%Y-%m-%d %H:%M:%S" in Asia/Seoul),
  ``validity_period`` (expires_in, int). ``load(path)`` raises when a field is missing (KeyError) or
  empty/unconvertible (ValueError), as ``KisObject.transform_`` does; extra fields are kept.
  ``save(path)`` writes ``json.dump(raw)`` (the loaded/received dict, minus ``__response__``).
  ``remaining = expired_at - datetime.now(Asia/Seoul)``.
* ``PyKis(id=, appkey=, secretkey=, virtual_id=, virtual_appkey=, virtual_secretkey=, token=,
  virtual_token=, keep_token=)``: ``keep_token=True`` means ``~/.pykis/cache`` (Path.home(), so HOME);
  a string is a folder. At construction the cached files are loaded once (``_load_cached_token``: the
  real file always, the virtual one too when virtual; any exception swallowed).
  File name: ``token_{real|virtual}_{self.appkey.id}_{sha1("pykis"+key.id+key.appkey+key.secretkey+"token")}.json``
  with ``key`` the KisKey of that domain.
* ``.token`` / ``.primary_token``: when the token is None or less than 10 minutes remain, POST
  ``{domain}/oauth2/tokenP`` with JSON ``{"grant_type":"client_credentials","appkey","appsecret"}`` and
  header ``User-Agent: PyKis/24+dev``, then save into the keep_token folder (mkdir parents). The URL is
  built with ``urljoin(domain, "/oauth2/tokenP")`` as the original does (a path in the domain is dropped).
  A non-OK answer (status >= 400) raises KisHTTPError, except ``msg_cd`` EGW00201 (sleep 0.1 s, retry) and
  EGW00123 (drop the token, retry), as ``PyKis.request`` does.

The ONLY deviation: the real client hard-codes the broker hosts (``REAL_DOMAIN``/``VIRTUAL_DOMAIN`` in
``__env__.py``, imported by name into ``pykis.kis``, whose globals each request reads); this replica takes them
from the environment variables ``PYKIS_REPLICA_REAL_DOMAIN`` and ``PYKIS_REPLICA_VIRTUAL_DOMAIN`` when set
(read at each request), else from the ``pykis.kis`` globals as the original does. So a program that points
python-kis elsewhere the way one must with the real package (``pykis.kis.REAL_DOMAIN = "..."``, the gateway
example) does so here too. As in the original, the class lives in ``pykis.kis`` and ``pykis`` re-exports it.

HTTP goes through ``urllib.request`` instead of a ``requests.Session`` (no pip packages here); redirects
are followed as requests does. Left out because they never touch the token file: KisAuth files (the
positional ``auth``/``virtual_auth`` arguments), account-number parsing (``account`` is stored as given),
the per-process rate limiter (19/s real, 2/s virtual; one token request never meets it), the thread-safety locks,
``discard``/revoke, and the business APIs other than those kept below. The real-time client is
``pykis/websocket.py``: ``PyKis.websocket`` as in the original (built at construction, inert until used); its
approval keys go through ``request``, the same request loop as the token, as in the original.

Observation only (replica addition): ``PyKis._posts``, the POSTs sent by path; ``PyKis._token_requests``, the
tokenP ones among them.
"""

import collections
import hashlib
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin

from .dynamic import TIMEZONE, as_int, as_kst_datetime, as_str, field, transform
from .websocket import KisWebsocketClient

__all__ = ["PyKis", "KisKey", "KisAccessToken", "KisException", "KisHTTPError", "get_cache_path"]

APPKEY_LENGTH = 36
SECRETKEY_LENGTH = 180

REAL_DOMAIN = "https://openapi.koreainvestment.com:9443"
VIRTUAL_DOMAIN = "https://openapivts.koreainvestment.com:29443"

VERSION = "24+dev"  # what an unreleased checkout reports ("{{VERSION_PLACEHOLDER}}" not substituted)
USER_AGENT = f"PyKis/{VERSION}"



def _real_domain():
    # The module global, read at each request: reassigning pykis.kis.REAL_DOMAIN takes effect, as in the original.
    return os.environ.get("PYKIS_REPLICA_REAL_DOMAIN") or globals()["REAL_DOMAIN"]


def _virtual_domain():
    return os.environ.get("PYKIS_REPLICA_VIRTUAL_DOMAIN") or globals()["VIRTUAL_DOMAIN"]


def get_workspace_path():
    return (Path.home() / ".pykis").resolve()


def get_cache_path():
    return (get_workspace_path() / "cache").resolve()


# --- errors -------------------------------------------------------------------------------------------------
class KisException(Exception):
    def __init__(self, message, response):
        super().__init__(message)
        self.status_code = response.status_code
        self.response = response


class KisHTTPError(KisException):
    def __init__(self, response):
        self.reason = response.reason
        self.text = response.text
        # The original lists the request with app key/secret masked; this one never includes them.
        super().__init__(f"[{response.status_code}] {response.reason}: {response.text}", response)


# --- app key ------------------------------------------------------------------------------------------------
class KisKey:
    __slots__ = ["id", "appkey", "secretkey"]

    def __init__(self, id, appkey, secretkey):
        if not id:
            raise ValueError("id를 입력해야 합니다.")
        if len(appkey) != APPKEY_LENGTH:
            raise ValueError(f"appkey 길이는 {APPKEY_LENGTH}자여야 합니다.")
        if len(secretkey) != SECRETKEY_LENGTH:
            raise ValueError(f"secretkey 길이는 {SECRETKEY_LENGTH}자여야 합니다.")
        self.id = id
        self.appkey = appkey
        self.secretkey = secretkey

    def build(self, dict=None):
        if dict is None:
            dict = {}
        dict.update({"appkey": self.appkey, "appsecret": self.secretkey})
        return dict

    def __repr__(self):
        return f"{self.__class__.__name__}(id={self.id!r}, appkey={self.appkey!r}, secretkey=***)"


# --- access token -----------------------------------------------------------------------------------------------
class KisAccessToken:
    # attribute -> field; transform walks them in dir() order, i.e. alphabetically (dynamic.py).
    _FIELDS = {
        "expired_at": field("access_token_token_expired", as_kst_datetime),
        "token": field("access_token", as_str),
        "type": field("token_type", as_str),
        "validity_period": field("expires_in", as_int),
    }

    token: str
    type: str
    expired_at: datetime
    validity_period: int

    @classmethod
    def _transform(cls, data):
        """What KisObject.transform_(data, KisAccessToken) does for this class."""
        if not isinstance(data, dict):
            raise TypeError(f"dict 형을 기대하였지만, {type(data).__name__} 형이 입력되었습니다.")
        return transform(cls(), cls._FIELDS, data)

    def raw(self):
        data = getattr(self, "__data__", None)
        if data is None:
            return None
        data = data.copy()
        data.pop("__response__", None)
        return data

    @property
    def expired(self):
        return self.expired_at < datetime.now(TIMEZONE)

    @property
    def remaining(self):
        return self.expired_at - datetime.now(TIMEZONE)

    def build(self, dict=None):
        if dict is None:
            dict = {}
        dict["Authorization"] = f"{self.type} {self.token}"
        return dict

    def __str__(self):
        return f"{self.type} {self.token}"

    def __repr__(self):
        return f"<KisAccessToken {self.type} expired_at={self.expired_at}>"

    def save(self, path):
        with open(path, "w") as f:
            json.dump(self.raw(), f)

    @classmethod
    def load(cls, path):
        with open(path) as f:
            return cls._transform(json.load(f))


# --- HTTP (stands in for requests.Session) -------------------------------------------------------------------
class _RedirectLikeRequests(urllib.request.HTTPRedirectHandler):
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


class _Response:
    def __init__(self, status_code, reason, content, headers):
        self.status_code = status_code
        self.reason = reason
        self.content = content
        # requests' headers are case-insensitive: python-kis reads response.headers["tr_cont"].
        self.headers = {name.lower(): value for name, value in headers.items()}

    @property
    def ok(self):
        return self.status_code < 400  # requests.Response.ok

    @property
    def text(self):
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.content)


_opener = urllib.request.build_opener(_RedirectLikeRequests)


def _send(method, url, headers, params=None, body=None):
    """requests.Session.request(method, url, headers=, params=, json=body) with the session's User-Agent: a JSON
    body (and its Content-Type) only when there is a body, as requests sends ``json=None``."""
    if params:
        url = f"{url}?{urllib.parse.urlencode(params)}"
    all_headers = {"User-Agent": USER_AGENT, **headers}
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        all_headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=all_headers, method=method)
    try:
        with _opener.open(req) as resp:
            return _Response(resp.status, resp.reason, resp.read(), dict(resp.headers.items()))
    except urllib.error.HTTPError as e:
        try:
            content = e.read()
        except Exception:
            content = b""
        return _Response(e.code, e.reason, content, dict(e.headers.items()) if e.headers else {})


# --- PyKis ------------------------------------------------------------------------------------------------------
class PyKis:
    def __init__(
        self,
        *,
        account=None,
        id=None,
        appkey=None,
        secretkey=None,
        token=None,
        virtual_id=None,
        virtual_appkey=None,
        virtual_secretkey=None,
        virtual_token=None,
        use_websocket=True,
        keep_token=None,
    ):
        self._posts = collections.Counter()  # observation only: POSTs sent, by path

        virtual_auth = None  # KisAuth files are left out of the replica
        # As in the original: without virtual_auth this is False, so the two virtual checks never run.
        virtual = virtual_appkey is not None and virtual_auth is not None

        if id is None:
            raise ValueError("id를 입력해야 합니다.")
        if appkey is None:
            raise ValueError("appkey를 입력해야 합니다.")
        if virtual and virtual_id is None:
            raise ValueError("virtual_id를 입력해야 합니다.")
        if virtual and virtual_appkey is None:
            raise ValueError("virtual_appkey를 입력해야 합니다.")

        if isinstance(appkey, str):
            if secretkey is None:
                raise ValueError("secretkey를 입력해야 합니다.")
            appkey = KisKey(id=id, appkey=appkey, secretkey=secretkey)
        self.appkey = appkey

        if isinstance(virtual_appkey, str):
            if virtual_secretkey is None:
                raise ValueError("primary_secretkey를 입력해야 합니다.")
            # The original passes id=id here, not virtual_id.
            virtual_appkey = KisKey(id=id, appkey=virtual_appkey, secretkey=virtual_secretkey)
        self.virtual_appkey = virtual_appkey

        self.primary_account = account

        self._token = token if isinstance(token, KisAccessToken) else KisAccessToken.load(token) if token else None
        self._virtual_token = (
            virtual_token
            if isinstance(virtual_token, KisAccessToken)
            else KisAccessToken.load(virtual_token) if self.virtual and virtual_token else None
        )

        if keep_token:
            if keep_token is True:
                keep_token = get_cache_path()
            self._keep_token = Path(keep_token).resolve()
            self._load_cached_token(self._keep_token)
        else:
            self._keep_token = None

        self._websocket = KisWebsocketClient(self) if use_websocket else None

    @property
    def _token_requests(self):
        """Observation only: the tokenP POSTs this PyKis sent (retries included)."""
        return self._posts["/oauth2/tokenP"]

    @property
    def websocket(self):
        if self._websocket is None:
            raise ValueError("웹소켓 클라이언트가 초기화되지 않았습니다.")
        return self._websocket

    @property
    def virtual(self):
        return self.virtual_appkey is not None

    @property
    def keep_token(self):
        return self._keep_token is not None

    def _get_hashed_token_name(self, domain):
        appkey = self.appkey if domain == "real" else self.virtual_appkey
        if appkey is None:
            raise ValueError("모의도메인 AppKey가 없습니다.")
        digest = hashlib.sha1(f"pykis{appkey.id}{appkey.appkey}{appkey.secretkey}token".encode()).hexdigest()
        return f"token_{domain}_{self.appkey.id}_{digest}.json"

    def _load_cached_token(self, token_dir):
        if not isinstance(token_dir, Path):
            token_dir = Path(token_dir)
        token_dir = token_dir.resolve()

        path = token_dir / self._get_hashed_token_name("real")
        if path.exists():
            try:
                self.token = KisAccessToken.load(path)
            except:  # noqa: E722 (the original swallows everything)
                pass

        if self.virtual:
            path = token_dir / self._get_hashed_token_name("virtual")
            if path.exists():
                try:
                    self.primary_token = KisAccessToken.load(path)
                except:  # noqa: E722
                    pass

    def _save_cached_token(self, token_dir, domain=None, force=False):
        if not isinstance(token_dir, Path):
            token_dir = Path(token_dir)
        token_dir = token_dir.resolve()
        token_dir.mkdir(parents=True, exist_ok=True)

        if domain is None or domain == "real":
            token = self.token if force else self._token
            if token is not None:
                token.save(token_dir / self._get_hashed_token_name("real"))

        if self.virtual and (domain is None or domain == "virtual"):
            virtual_token = self.primary_token if force else self._virtual_token
            if virtual_token is not None:
                virtual_token.save(token_dir / self._get_hashed_token_name("virtual"))

    def request(self, path, *, method="GET", params=None, body=None, headers=None, domain=None, appkey_location="header", auth=True):
        """PyKis.request: the app key and secret as headers (or in the body), the token as ``Authorization``, no
        ``custtype`` and no ``Content-Type`` on a GET; EGW00201 is retried after 0.1 s, EGW00123 drops the token
        (the loop then issues a new one), any other answer of status 400 or above raises KisHTTPError."""
        if method == "GET":
            if body is not None:
                raise ValueError("GET 요청에는 body를 입력할 수 없습니다.")
            if appkey_location == "body":
                raise ValueError("GET 요청에는 appkey_location을 header로 설정해야 합니다.")
        elif body is None:
            body = {}
        request_headers = headers.copy() if headers else {}
        if domain is None:
            domain = "virtual" if self.virtual else "real"
        if appkey_location:
            appkey = self.appkey if domain == "real" else self.virtual_appkey
            if appkey is None:
                raise ValueError("모의도메인 AppKey가 없습니다.")
            appkey.build(request_headers if appkey_location == "header" else body)
        while True:
            if auth:
                (self.token if domain == "real" else self.primary_token).build(request_headers)
            url = urljoin(_real_domain() if domain == "real" else _virtual_domain(), path)
            if method == "POST":
                self._posts[path] += 1
            resp = _send(method, url, request_headers, params=params, body=body)
            if resp.ok:
                return resp
            try:
                data = resp.json()
            except Exception:
                data = None
            error_code = data.get("msg_cd") if data is not None else None
            if error_code == "EGW00201":
                time.sleep(0.1)
                continue
            elif error_code == "EGW00123":
                if domain == "real":
                    self._token = None
                else:
                    self._virtual_token = None
            else:
                raise KisHTTPError(response=resp)

    def fetch(self, path, *, method="GET", params=None, body=None, headers=None, domain=None, appkey_location="header", auth=True, api=None, response_type=None):
        """PyKis.fetch: ``tr_id`` from ``api``, then the answer as JSON with ``__response__``, handed to
        ``response_type(data)`` (the KisObject.transform_ of that type), or returned as a dict without one."""
        if api is not None:
            headers = dict(headers or {})
            headers["tr_id"] = api
        response = self.request(
            path, method=method, params=params, body=body, headers=headers, domain=domain, appkey_location=appkey_location, auth=auth
        )
        data = response.json()
        data["__response__"] = response
        return data if response_type is None else response_type(data)

    def _token_issue(self, domain):
        """token_issue(): fetch("/oauth2/tokenP", the app key in the body, auth=False) -> KisAccessToken."""
        return self.fetch(
            "/oauth2/tokenP",
            body={"grant_type": "client_credentials"},
            appkey_location="body",
            response_type=KisAccessToken._transform,
            method="POST",
            domain=domain,
            auth=False,
        )

    @property
    def token(self):
        if self._token is None or self._token.remaining < timedelta(minutes=10):
            self._token = self._token_issue("real")
            if self._keep_token:
                self._save_cached_token(self._keep_token, domain="real", force=False)
        return self._token

    @token.setter
    def token(self, token):
        self._token = token

    @property
    def primary_token(self):
        if not self.virtual:
            return self.token
        if self._virtual_token is None or self._virtual_token.remaining < timedelta(minutes=10):
            self._virtual_token = self._token_issue("virtual")
            if self._keep_token:
                self._save_cached_token(self._keep_token, domain="virtual", force=False)
        return self._virtual_token

    @primary_token.setter
    def primary_token(self, token):
        self._virtual_token = token
