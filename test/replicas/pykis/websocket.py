# -*- coding: utf-8 -*-
"""Replica of python-kis's real-time client (Soju06/python-kis 6fcde3fa080108edbca562b6fef136bb580f777e):
``pykis/client/websocket.py`` (KisWebsocketClient), ``pykis/client/messaging.py`` (the request, the TR, the
encryption key), ``pykis/api/auth/websocket.py`` (the approval key), ``pykis/responses/websocket.py`` (how a frame
is parsed) and the field lists of ``pykis/api/websocket/{price,order_book,order_execution}.py``. Written anew;
behaviour kept:

* Every request (subscribe or unsubscribe) asks the broker for a **new approval key** first
  (``KisWebsocketRequest.build`` → ``websocket_approval_key``: ``POST /oauth2/Approval`` with ``appkey`` and
  ``secretkey``, no token), through ``PyKis.request``'s loop (EGW00201: sleep 0.1 s and again; any other refusal
  raises KisHTTPError). The header is ``{"approval_key", "custtype": "P", "tr_type", "content-type": "utf-8"}``.
* ``subscribe(id, key)``: connects if needed; a known (id, key) is ignored; the 41st distinct one raises
  ValueError("Maximum number of subscriptions reached") (``WEBSOCKET_MAX_SUBSCRIPTIONS = 40``); the request is sent
  only while connected, otherwise it waits for the next ``on_open``, which restores every subscription not yet
  confirmed in this session, one approval key each.
* The connection runs in a daemon thread: ``WebSocketApp(f"{domain}/tryitout").run_forever()``; when it returns
  (the broker closed, the network failed) the thread waits ``reconnect_interval`` (5 s, in 0.1 s steps) and
  connects again, for ever. ``on_open`` clears the confirmed set and the key chain, restores, then marks connected.
* Control messages: PINGPONG is answered by sending ``json.dumps(message)`` back as **text**; OPSP0000 and
  OPSP0002 confirm, OPSP0001 and OPSP0003 forget the TR and its key; OPSP8996 logs "RTC Session already in use"
  and nothing else (the broker's close then starts the 5 s reconnect); an answer with ``output`` stores its key and
  iv (for fill notices under the TR id alone: ``tr_key`` is dropped).
* Data frames: ``encrypted|id|count|body`` split once each; an encrypted body is AES-CBC decrypted with the stored
  key and iv and PKCS7-unpadded; then ``KisWebsocketResponse.parse``: the number of ``^`` fields must be a multiple
  of the response type's field count and equal ``count`` times it, else "RTC Failed to parse message" is logged
  and the frame dropped (the connection stays). python-kis's fill notice type has **23** fields while the broker's
  layout has 26 (python-kis #68, #80): every H0STCNI0/H0STCNI9 frame fails here, as it does in python-kis.
* Field conversions that can fail are the original's: ``KisString``, ``KisDecimal`` (``Decimal(...).normalize()``),
  ``KisInt`` (``int``), the sign and market-condition maps, empty text refused for a non-nullable field, and the
  ``__pre_init__`` datetime parsing (``strptime(BSOP_DATE + time, "%Y%m%d%H%M%S")``).

Deviations:

* The original uses websocket-client's ``WebSocketApp`` and the ``cryptography`` package; Debian's
  python3-websockets (asyncio, run here in the client's own thread by ``_WebSocketApp``, which keeps
  WebSocketApp's callbacks, its "an exception in a callback goes to on_error, the connection stays", and its
  report of a server's close as on_error then on_close) and python3-pycryptodome stand in.
* ``KisHTTPError``'s text is the REST replica's (kis.py), not python-kis's "HTTP 요청에 실패했습니다." with the
  request's details.
* Checked against the real python-kis (this commit, websocket-client 1.9.2) on the simulator: the log lines of a
  subscription, of OPSP8996 and its 5 s reconnect, of the approval refused at the second subscription, and the
  26-field parse failure are the same.
* The broker's WebSocket hosts (``WEBSOCKET_REAL_DOMAIN``/``WEBSOCKET_VIRTUAL_DOMAIN``, hard-coded) come from
  ``PYKIS_REPLICA_WEBSOCKET_REAL_DOMAIN``/``..._VIRTUAL_DOMAIN`` when set, like the REST hosts (see kis.py).
* Left out: the mock-mode primary client (a second session on the virtual domain for fills), the reference
  counting of ``on`` tickets (a handler here is never released) and the objects built on top of the events
  (``kis.stock(...).on("price")`` ends in ``websocket.on("H0STCNT0", code)``, which is what is kept).
* Observation only: ``KisWebsocketClient._approval_requests``, the number of approval keys asked for.
"""

import asyncio
import base64
import json
import logging
import os
import threading
import time
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

logger = logging.getLogger("pykis")

WEBSOCKET_REAL_DOMAIN = "ws://ops.koreainvestment.com:21000"
WEBSOCKET_VIRTUAL_DOMAIN = "ws://ops.koreainvestment.com:31000"
WEBSOCKET_MAX_SUBSCRIPTIONS = 40
TR_SUBSCRIBE_TYPE = "1"
TR_UNSUBSCRIBE_TYPE = "2"
TIMEZONE = ZoneInfo("Asia/Seoul")


def _websocket_domain(virtual):
    if virtual:
        return os.environ.get("PYKIS_REPLICA_WEBSOCKET_VIRTUAL_DOMAIN") or WEBSOCKET_VIRTUAL_DOMAIN
    return os.environ.get("PYKIS_REPLICA_WEBSOCKET_REAL_DOMAIN") or WEBSOCKET_REAL_DOMAIN


# --- messaging.py -----------------------------------------------------------------------------------------------
class KisWebsocketTR:
    __slots__ = ["id", "key"]

    def __init__(self, tr_id, tr_key):
        self.id = tr_id
        self.key = tr_key

    def build(self, dict=None):
        dict = dict or {}
        dict["tr_id"] = self.id
        dict["tr_key"] = self.key
        return dict

    def __str__(self):
        return f"{self.id}.{self.key}" if self.key else self.id

    def __eq__(self, other):
        return isinstance(other, self.__class__) and self.id == other.id and self.key == other.key

    def __hash__(self):
        return hash((self.id, self.key))


class KisWebsocketEncryptionKey:
    __slots__ = ["iv", "key"]

    def __init__(self, iv, key):
        self.iv = iv
        self.key = key

    def decrypt(self, data):
        from Cryptodome.Cipher import AES
        from Cryptodome.Util.Padding import unpad

        return unpad(AES.new(self.key, AES.MODE_CBC, self.iv).decrypt(data), AES.block_size)


def websocket_approval_key(kis, domain=None):
    """``PyKis.fetch("/oauth2/Approval", body=..., auth=False, appkey_location=None)``: note that the URL's domain
    is the PyKis's own (virtual when it is), while the app key is the one ``domain`` names."""
    appkey = kis.appkey if domain == "real" else kis.virtual_appkey
    if appkey is None:
        raise ValueError("모의도메인 appkey가 없습니다.")
    body = {"grant_type": "client_credentials", "appkey": appkey.appkey, "secretkey": appkey.secretkey}
    data = kis.request("/oauth2/Approval", method="POST", body=body, auth=False, appkey_location=None).json()
    approval_key = data.get("approval_key")
    if not approval_key:
        raise ValueError("KisWebsocketApprovalKey.approval_key 필드의 값이 빈 값입니다.")
    return approval_key


def build_request(kis, type, body, domain):
    """``KisWebsocketRequest(kis, type, body, domain).build()``: a new approval key for every message."""
    message = {
        "header": {
            "approval_key": websocket_approval_key(kis, domain=domain),
            "custtype": "P",
            "tr_type": type,
            "content-type": "utf-8",
        }
    }
    if body is not None:
        message["body"] = {"input": body.build()}
    return message


# --- responses ----------------------------------------------------------------------------------------------------
class _NoneValue(Exception):
    """KisNoneValueError: an empty value."""


def _string(value):
    return value


def _int(value):
    if value == "":
        raise _NoneValue
    return int(value)


def _decimal(value):
    if value == "":
        raise _NoneValue
    return Decimal(value).normalize()


_SIGNS = {"0": "steady", "1": "upper", "2": "rise", "3": "steady", "4": "lower", "5": "decline"}
_PRICE_CONDITIONS = {"1": "before", "2": None, "3": "after", "4": "extended"}
_ORDERBOOK_CONDITIONS = {"0": None, "A": "after", "B": "before", "C": None, "D": "extended"}


def _fields(size, **converters):
    """A __fields__ list: None everywhere but at the given positions, ``name=(index, converter, nullable)``."""
    fields = [None] * size
    for name, (index, convert, nullable) in converters.items():
        fields[index] = (name, convert, nullable)
    return fields


class RealtimePrice:
    """KisDomesticRealtimePrice (H0STCNT0): 46 fields."""

    fields = _fields(
        46,
        symbol=(0, _string, False),
        price=(2, _decimal, False),
        sign=(3, _SIGNS.__getitem__, False),
        change=(4, _decimal, False),
        open=(7, _decimal, False),
        high=(8, _decimal, False),
        low=(9, _decimal, False),
        ask=(10, _decimal, False),
        bid=(11, _decimal, False),
        volume=(13, _int, False),
        amount=(14, _decimal, False),
        sell_count=(15, _int, False),
        buy_count=(16, _int, False),
        sell_quantity=(19, _int, False),
        buy_quantity=(20, _int, False),
        condition=(34, lambda x: _PRICE_CONDITIONS[x[0]], True),
        ask_quantity=(38, _int, False),
        bid_quantity=(39, _int, False),
        prev_volume=(41, _int, True),
    )

    def pre_init(self, data):
        self.time = datetime.strptime(data[33] + data[1], "%Y%m%d%H%M%S").replace(tzinfo=TIMEZONE)
        self.open_time = datetime.strptime(data[33] + data[24], "%Y%m%d%H%M%S").replace(tzinfo=TIMEZONE)
        self.high_time = datetime.strptime(data[33] + data[27], "%Y%m%d%H%M%S").replace(tzinfo=TIMEZONE)
        self.low_time = datetime.strptime(data[33] + data[30], "%Y%m%d%H%M%S").replace(tzinfo=TIMEZONE)


class RealtimeOrderbook:
    """KisDomesticRealtimeOrderbook (H0STASP0): 59 fields."""

    fields = _fields(59, symbol=(0, _string, False), condition=(2, _ORDERBOOK_CONDITIONS.get, True))

    def pre_init(self, data):
        self.time = datetime.combine(datetime.now().date(), datetime.strptime(data[1], "%H%M%S").time(), tzinfo=TIMEZONE)
        self.asks = [(Decimal(data[3 + i]), int(data[23 + i])) for i in range(10)]
        self.bids = [(Decimal(data[13 + i]), int(data[33 + i])) for i in range(10)]


class RealtimeOrderExecution:
    """KisDomesticRealtimeOrderExecution (H0STCNI0/H0STCNI9): 23 fields, three fewer than the broker's layout, so
    the length check below refuses every frame before a field is read; the conversions are not replicated."""

    fields = [None] * 23

    def pre_init(self, data):
        pass


RESPONSES = {
    "H0STCNT0": RealtimePrice,
    "H0STASP0": RealtimeOrderbook,
    "H0STCNI0": RealtimeOrderExecution,
    "H0STCNI9": RealtimeOrderExecution,
}


def parse_responses(data, count, response_type):
    """``KisWebsocketResponse.parse``: the frame's records as objects, or ValueError."""
    items = data.split("^")
    fields = response_type.fields
    if len(items) % len(fields) != 0:
        raise ValueError(f"Invalid data length: {len(items)}")
    if count is not None and len(items) // len(fields) != count:
        raise ValueError(f"Invalid data count: {len(items) / len(fields)}")
    responses = []
    try:
        for start in range(0, len(items), len(fields)):
            values = items[start : start + len(fields)]
            response = response_type()
            response.pre_init(values)
            response.raw = values
            for field, value in zip(fields, values):
                if field is None:
                    continue
                name, convert, nullable = field
                try:
                    setattr(response, name, convert(value))
                except _NoneValue:
                    if not nullable:
                        raise ValueError(f"{response_type.__name__}.{name} 필드가 None일 수 없습니다.")
                    setattr(response, name, None)
                except Exception as e:
                    raise ValueError(f"{response_type.__name__}.{name} 필드를 변환하는 중 오류가 발생했습니다.\n→ {type(e).__name__}: {e}") from e
            responses.append(response)
    except Exception as e:
        raise ValueError(f"데이터 파싱 중 오류가 발생했습니다.\n→ {type(e).__name__}: {e}") from e
    return responses


# --- websocket-client's WebSocketApp, over websockets ---------------------------------------------------------------
class WebSocketConnectionClosedException(Exception):
    """websocket-client's exception for a connection that ended, which python-kis's on_error tells apart."""


class _WebSocketApp:
    """What websocket-client 1.9's ``WebSocketApp.run_forever()`` does, as python-kis uses it: connects, calls
    ``on_open``, then ``on_message`` per text message; when the connection ends, by the server's close frame or by a
    failure, ``on_error`` gets a WebSocketConnectionClosedException (or the failure) and ``on_close`` the close code
    and reason (None when there were none), then it returns. A callback's exception goes to ``on_error`` and the
    connection carries on. ``send`` may be called from any thread. No ping of its own (run_forever's default)."""

    def __init__(self, url, on_open, on_error, on_close, on_message):
        self.url = url
        self.on_open = on_open
        self.on_error = on_error
        self.on_close = on_close
        self.on_message = on_message
        self._loop = None
        self._ws = None

    def _callback(self, callback, *args):
        try:
            callback(self, *args)
        except Exception as e:
            self.on_error(self, e)

    def run_forever(self):
        asyncio.run(self._run())

    async def _run(self):
        import websockets

        self._loop = asyncio.get_running_loop()
        try:
            async with websockets.connect(self.url, ping_interval=None, compression=None) as ws:
                self._ws = ws
                self._callback(self.on_open)
                async for message in ws:
                    self._callback(self.on_message, message)
            code = ws.close_code
            self._callback(self.on_error, WebSocketConnectionClosedException(f"Connection closed normally (code {code})" if code == 1000 else f"Connection closed (code {code})"))
            self._callback(self.on_close, code, ws.close_reason or None)
        except websockets.ConnectionClosed as e:
            self._callback(self.on_error, WebSocketConnectionClosedException(str(e)))
            self._callback(self.on_close, None, None)
        except Exception as e:
            self._callback(self.on_error, e)
            self._callback(self.on_close, None, None)
        finally:
            self._ws = None

    def send(self, text):
        ws, loop = self._ws, self._loop
        if ws is None or loop is None:
            raise ConnectionError("Connection is already closed.")
        if _in_loop(loop):
            # From a callback, inside the loop: queued behind the callback, in order (blocking would deadlock).
            loop.create_task(ws.send(text))
        else:
            asyncio.run_coroutine_threadsafe(ws.send(text), loop).result()

    def close(self):
        ws, loop = self._ws, self._loop
        if ws is not None and loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(ws.close(), loop)


def _in_loop(loop):
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


# --- client/websocket.py -------------------------------------------------------------------------------------------
class KisWebsocketClient:
    reconnect = True
    reconnect_interval = 5

    def __init__(self, kis, virtual=False):
        self.kis = kis
        self.virtual = virtual
        self.websocket = None
        self.thread = None
        self._connect_lock = threading.Lock()
        self._subscriptions_lock = threading.RLock()
        self._connect_event = threading.Event()
        self._connected_event = threading.Event()
        self._subscriptions = set()
        self._registered_subscriptions = set()
        self._keychain = {}
        self._handlers = []

    @property
    def _approval_requests(self):
        """Observation only: the approval keys this client's PyKis asked for (retries included)."""
        return self.kis._posts["/oauth2/Approval"]

    @property
    def connected(self):
        return self.websocket is not None and self._connected_event.is_set()

    def connect(self):
        if self.connected:
            return
        if self.thread is not None and self.thread.is_alive():
            self._connect_event.set()
            return
        self.thread = threading.Thread(target=self._run_forever, daemon=True)
        self.thread.start()

    def _ensure_connection(self):
        if not self.connected:
            self.connect()

    def ensure_connected(self, timeout=None):
        self._ensure_connection()
        self._connected_event.wait(timeout=timeout)

    def disconnect(self):
        thread = self.thread
        if thread is not None and thread.is_alive():
            self.thread = None
            if self.websocket:
                logger.info("RTC Disconnecting from server")
                self.websocket.close()

    def _request(self, type, body=None, force=False):
        if not self.websocket or (not force and not self._connected_event.is_set()):
            return False
        logger.debug("RTC Sending request: %s %s", type, body)
        message = build_request(self.kis, type, body, "virtual" if self.virtual else "real")
        self.websocket.send(json.dumps(message))
        return True

    def subscribe(self, id, key, primary=False):
        with self._subscriptions_lock:
            self._ensure_connection()
            tr = KisWebsocketTR(id, key)
            if tr in self._subscriptions:
                return
            if len(self._subscriptions) >= WEBSOCKET_MAX_SUBSCRIPTIONS:
                logger.warning("RTC Maximum number of subscriptions reached")
                raise ValueError("Maximum number of subscriptions reached")
            self._subscriptions.add(tr)
            self._request(TR_SUBSCRIBE_TYPE, tr)

    def unsubscribe(self, id, key, primary=False):
        with self._subscriptions_lock:
            tr = KisWebsocketTR(id, key)
            if tr not in self._subscriptions:
                return
            self._subscriptions.remove(tr)
            self._request(TR_UNSUBSCRIBE_TYPE, tr)

    def on(self, id, key, callback, primary=False):
        """``on(id, key, callback)``: subscribes and calls ``callback(client, tr, response)`` for events of ``id``
        (the original filters by TR id only; the product filters sit above it)."""
        self.subscribe(id, key, primary)
        self._handlers.append((id, callback))

    def _reset_session_state(self):
        with self._subscriptions_lock:
            self._registered_subscriptions.clear()
            self._keychain.clear()

    def _restore_subscriptions(self):
        subscriptions = self._subscriptions - self._registered_subscriptions
        if not subscriptions:
            return
        logger.info("RTC Restoring subscriptions... %s", ", ".join(map(str, subscriptions)))
        for tr in subscriptions:
            self._request(TR_SUBSCRIBE_TYPE, tr, force=True)

    def _run_forever(self):
        SLEEP_INTERVAL = 0.1
        if not self._connect_lock.acquire(blocking=False):
            return False
        try:
            while self.reconnect or not self.thread != threading.current_thread():
                try:
                    self._connected_event.clear()
                    self.websocket = _WebSocketApp(
                        f"{_websocket_domain(self.virtual)}/tryitout",
                        on_open=self._on_open,
                        on_error=self._on_error,
                        on_close=self._on_close,
                        on_message=self._on_message,
                    )
                    self.websocket.run_forever()
                except Exception as e:
                    logger.error("RTC Unexpected error: %s", e, exc_info=True)
                if self.thread != threading.current_thread():
                    break
                self.websocket = None
                logger.info("RTC Reconnecting in %s seconds...", self.reconnect_interval)
                self._connect_event.clear()
                for _ in range(int(self.reconnect_interval / SLEEP_INTERVAL)):
                    time.sleep(SLEEP_INTERVAL)
                    if self.thread != threading.current_thread():
                        break
                    if self._connect_event.is_set():
                        self._connect_event.clear()
                        break
        finally:
            self.websocket = None
            self._connected_event.clear()
            self._connect_lock.release()
        return True

    def _on_open(self, websocket):
        if websocket is not self.websocket:
            return
        logger.info("RTC Connected to %s server", "virtual" if self.virtual else "real")
        self._reset_session_state()
        self._restore_subscriptions()
        self._connected_event.set()

    def _on_error(self, websocket, error):
        if websocket is not self.websocket:
            return
        if isinstance(error, WebSocketConnectionClosedException):
            logger.error("RTC Websocket error: Connection closed")
        elif isinstance(error, KeyboardInterrupt):
            logger.error("RTC Websocket error: Keyboard interrupt")
        else:
            logger.error("RTC Websocket error: %s", error)

    def _on_close(self, websocket, code, reason):
        if websocket is not self.websocket:
            return
        logger.info("RTC Disconnected from server: %s", reason)

    def _on_message(self, websocket, message):
        if websocket is not self.websocket:
            return
        try:
            if message[0] in ("0", "1"):
                self._handle_event(message)
            else:
                self._handle_control(json.loads(message))
        except Exception as e:
            logger.error("RTC failed to handle message: %s", e)

    def _handle_control(self, data):
        if not self.websocket:
            return False
        header = data["header"]
        body = data.get("body")
        id = header["tr_id"]
        key = header.get("tr_key")
        if id == "PINGPONG":
            self.websocket.send(json.dumps(data))
            return
        if not body:
            logger.warning("RTC Unhandled control data: %s", id)
            return
        tr = KisWebsocketTR(id, key or "")
        code = body["msg_cd"]
        message = body["msg1"]
        output = body.get("output")
        if output:
            self._set_encryption_key(tr, output)
        if code == "OPSP0000":
            logger.info("RTC Subscribed to %s", tr)
            self._registered_subscriptions.add(tr)
        elif code == "OPSP0002":
            logger.info("RTC Already subscribed to %s", tr)
            self._registered_subscriptions.add(tr)
        elif code == "OPSP0001":
            logger.info("RTC Unsubscribed from %s", tr)
            self._registered_subscriptions.discard(tr)
            self._keychain.pop(tr, None)
        elif code == "OPSP0003":
            logger.info("RTC Already unsubscribed from %s", tr)
            self._registered_subscriptions.discard(tr)
            self._keychain.pop(tr, None)
        elif code == "OPSP8996":
            logger.error("RTC Session already in use")
        elif code == "OPSP0007":
            logger.error("RTC Internal server error: %s %s", tr, message)
        else:
            logger.warning("RTC Unhandled control message: %s(%s) %s", tr, code, message)

    def _set_encryption_key(self, tr, body):
        if tr.id in ("H0STCNI0", "H0STCNI9", "H0GSCNI0", "H0GSCNI9"):
            tr = KisWebsocketTR(tr.id, "")
        self._keychain[tr] = KisWebsocketEncryptionKey(key=body["key"].encode("utf-8"), iv=body["iv"].encode("utf-8"))

    def _handle_event(self, message):
        encrypted, id, count, body = message.split("|", 3)
        encrypted = encrypted == "1"
        count = int(count)
        tr = KisWebsocketTR(id, "")
        if encrypted:
            try:
                key = self._keychain.get(tr)
                if not key:
                    logger.error("RTC No encryption key for %s", tr)
                    return
                body = key.decrypt(base64.b64decode(body)).decode("utf-8")
            except Exception as e:
                logger.error("RTC Failed to decrypt message: %s %s", id, e)
                return
        response_type = RESPONSES.get(id)
        if not response_type:
            logger.warning("RTC No response type for %s", id)
            return
        try:
            for response in parse_responses(body, count, response_type):
                for handler_id, callback in list(self._handlers):
                    if handler_id == id:
                        try:
                            callback(self, tr, response)
                        except Exception as e:
                            logger.error("RTC Failed to emit event: %s %s", tr, e)
        except Exception as e:
            logger.error("RTC Failed to parse message: %s %s", tr, e)
            return
