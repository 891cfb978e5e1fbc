# -*- coding: utf-8 -*-
"""Replica of the WebSocket half of KIS's official client ``examples_user/kis_auth.py``: ``data_fetch``,
``system_resp``, ``aes_cbc_base64_dec``, ``open_map``/``add_open_map``, ``data_map``/``add_data_map`` and the
``KISWebSocket`` class the samples drive with ``subscribe(...)`` and ``start(on_result=...)``.

Source: koreainvestment/open-trading-api, commit 885dd4e2f5c37e4f7e23dd63c15555a9967bc7bc. Written anew from a
reading of that file; the behaviour is the original's:

* ``KISWebSocket.__runner``: refuses more than 40 entries in ``open_map`` (its keys are the request functions'
  names, so this caps the kinds of subscription, not their items); the URL is ``getTREnv().my_url_ws`` (``ops`` or
  ``vops`` of kis_devlp.yaml, set by ``auth_ws()``) + ``api_url``; ``while retry_count < max_retries`` it connects,
  sends every subscription (``tr_type "1"``), then reads until the connection ends. An exception (a refused
  connection, a send on a closed socket, a bad frame) prints ``Connection exception >>``, counts one retry and
  sleeps 1 s; a connection the broker closes *normally* ends the read loop without an exception, so the loop
  connects again at once and counts nothing: against a broker that refuses with OPSP8996 and closes, the client
  reconnects for ever, as fast as the broker answers. With several subscriptions too: ``smart_sleep()`` blocks the
  event loop between the sends, so the close frame is read only after the last send went out on the still open
  socket, and no send fails.
* ``send``: builds the message with the request function (``data_fetch``: the approval key from ``auth_ws()``,
  ``custtype "P"``), records the columns in ``data_map``, logs ``send message >> <json>`` at INFO (the approval
  key included, as in the original), sends, then ``smart_sleep()``: a blocking ``time.sleep(0.1)`` inside the
  event loop.
* ``__subscriber``: logs every message (``received message >> <raw>``). A data frame (``0|`` or ``1|``) is split
  on ``|``; fewer than 4 parts raises ValueError (the connection ends, a retry is counted); the payload is
  decrypted when ``data_map[tr_id]["encrypt"] == "Y"`` (set from the registration answer's header) with the key
  and iv of that answer; then it is read with ``pd.read_csv(..., sep="^", names=columns, dtype=object)``. Any other
  message goes through ``system_resp`` and ``add_data_map`` (encrypt flag, key and iv of the answer); a PINGPONG is
  answered with a **pong frame** carrying the text (``await ws.pong(raw)``), never echoed as text.
* ``on_result(ws, tr_id, df, data_map[tr_id])`` is called for data frames (and for control messages when
  ``result_all_data``).
* ``unsubscribe`` calls ``send_multiple`` without awaiting it, as the original does: nothing is sent.

Checked against the original (pandas 3.0.6, websockets 17.1, pycryptodome) on the simulator: the same records
read (with three records a frame, a 1×46 DataFrame whose 92-level index holds the first two), the fill notice
decrypted, PINGPONG answered with a pong frame, and the same reconnect loop (refused with OPSP8996 on the same
host, 45 and 37 refusals in 6 s for the original, 46 and 38 for this replica, run in turn).

Deviations, none of which changes what reaches the broker:

* The original keeps all this in kis_auth.py; here it is a module of its own that reads the REST half's state
  through ``import kis_auth`` (the approval-key header ``_getBaseHeader_ws()``, ``getTREnv()``, ``smart_sleep()``).
* pandas is not installed: ``read_csv_caret`` stands in for ``pd.read_csv(StringIO(d), header=None, sep="^",
  names=columns, dtype=object)`` and gives what pandas gives for one line: with exactly as many fields as columns,
  one row; with fewer, one row padded with NaN (None here); with more, the extra *leading* fields become the row's
  index (pandas' implicit index), so a frame of several records shows only its **last** record as the row. Empty
  fields and pandas' default NA strings become None.
* pycryptodome comes from Debian, whose module is ``Cryptodome``; the original imports ``Crypto``. Both are tried.
* Debian's websockets is 10.4 (the original is written for a newer one: its annotations name
  ``websockets.ClientConnection``, absent from 10.4, so they are left out). ``connect``, ``send``, ``pong`` and the
  end of ``async for`` on a normal close behave the same in both.
* Observation only (replica addition): ``set_observer(callback)`` receives ``{"event": "connect" | "closed" |
  "exception", ...}`` from the runner (``closed`` carries the close code), never changing what it does.
"""

import asyncio
import json
import logging
from base64 import b64decode
from collections import namedtuple

import websockets

try:
    from Crypto.Cipher import AES
    from Crypto.Util.Padding import unpad
except ImportError:  # Debian's python3-pycryptodome: the same library under the name Cryptodome
    from Cryptodome.Cipher import AES
    from Cryptodome.Util.Padding import unpad

import kis_auth as _ka

_observer = None


def set_observer(callback):
    """Replica addition: who is told of connects, normal ends and exceptions of the runner's loop."""
    global _observer
    _observer = callback


def _observe(event, **fields):
    if _observer is not None:
        _observer({"event": event, **fields})


def data_fetch(tr_id, tr_type, params, appendHeaders=None) -> dict:
    headers = _ka._getBaseHeader_ws()
    headers["tr_type"] = tr_type
    headers["custtype"] = "P"
    if appendHeaders is not None:
        if len(appendHeaders) > 0:
            for x in appendHeaders.keys():
                headers[x] = appendHeaders.get(x)
    if _ka._DEBUG:
        print("< Sending Info >")
        print(f"TR: {tr_id}")
        print(f"<header>\n{headers}")
    inp = {"tr_id": tr_id}
    inp.update(params)
    return {"header": headers, "body": {"input": inp}}


def system_resp(data):
    isPingPong = False
    isUnSub = False
    isOk = False
    tr_msg = None
    tr_key = None
    encrypt, iv, ekey = None, None, None

    rdic = json.loads(data)
    tr_id = rdic["header"]["tr_id"]
    if tr_id != "PINGPONG":
        # KeyError on an answer without tr_key or encrypt, as in the original (the read loop then ends).
        tr_key = rdic["header"]["tr_key"]
        encrypt = rdic["header"]["encrypt"]
    if rdic.get("body", None) is not None:
        isOk = True if rdic["body"]["rt_cd"] == "0" else False
        tr_msg = rdic["body"]["msg1"]
        if "output" in rdic["body"]:
            iv = rdic["body"]["output"]["iv"]
            ekey = rdic["body"]["output"]["key"]
        isUnSub = True if tr_msg[:5] == "UNSUB" else False
    else:
        isPingPong = True if tr_id == "PINGPONG" else False

    nt2 = namedtuple("SysMsg", ["isOk", "tr_id", "tr_key", "isUnSub", "isPingPong", "tr_msg", "iv", "ekey", "encrypt"])
    return nt2(
        isOk=isOk,
        tr_id=tr_id,
        tr_key=tr_key,
        tr_msg=tr_msg,
        isUnSub=isUnSub,
        isPingPong=isPingPong,
        iv=iv,
        ekey=ekey,
        encrypt=encrypt,
    )


def aes_cbc_base64_dec(key, iv, cipher_text):
    if key is None or iv is None:
        raise AttributeError("key and iv cannot be None")
    cipher = AES.new(key.encode("utf-8"), AES.MODE_CBC, iv.encode("utf-8"))
    return bytes.decode(unpad(cipher.decrypt(b64decode(cipher_text)), AES.block_size))


open_map: dict = {}


def add_open_map(name, request, data, kwargs=None):
    if open_map.get(name, None) is None:
        open_map[name] = {"func": request, "items": [], "kwargs": kwargs}
    if type(data) is list:
        open_map[name]["items"] += data
    elif type(data) is str:
        open_map[name]["items"].append(data)


data_map: dict = {}


def add_data_map(tr_id, columns=None, encrypt=None, key=None, iv=None):
    if data_map.get(tr_id, None) is None:
        data_map[tr_id] = {"columns": [], "encrypt": False, "key": None, "iv": None}
    if columns is not None:
        data_map[tr_id]["columns"] = columns
    if encrypt is not None:
        data_map[tr_id]["encrypt"] = encrypt
    if key is not None:
        data_map[tr_id]["key"] = key
    if iv is not None:
        data_map[tr_id]["iv"] = iv


# --- pandas.read_csv, as far as the original uses it ------------------------------------------------------------
_NA_VALUES = {
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "NaN", "None", "n/a", "nan", "null",
}  # fmt: skip


class CaretFrame:
    """What the original's DataFrame holds for one line: ``rows`` (a list of one dict, column → text or None),
    ``index`` (the implicit index: the leading fields beyond the column count, as a tuple; empty when none) and
    ``columns``. An empty frame (a control message) has no rows."""

    def __init__(self, columns, rows, index):
        self.columns = list(columns)
        self.rows = rows
        self.index = index

    @property
    def empty(self):
        return len(self.rows) == 0


def read_csv_caret(text, columns):
    fields = [None if f in _NA_VALUES else f for f in text.split("^")]
    extra = len(fields) - len(columns)
    index = tuple(fields[:extra]) if extra > 0 else ()
    values = fields[extra:] if extra > 0 else fields + [None] * (-extra)
    return CaretFrame(columns, [dict(zip(columns, values))], index)


class KISWebSocket:
    api_url: str = ""
    on_result = None
    result_all_data: bool = False

    retry_count: int = 0
    amx_retries: int = 0

    def __init__(self, api_url: str, max_retries: int = 3):
        self.api_url = api_url
        self.max_retries = max_retries

    async def __subscriber(self, ws):
        async for raw in ws:
            logging.info("received message >> %s" % raw)
            show_result = False
            df = CaretFrame([], [], ())

            if raw[0] in ["0", "1"]:
                d1 = raw.split("|")
                if len(d1) < 4:
                    raise ValueError("data not found...")
                tr_id = d1[1]
                dm = data_map[tr_id]
                d = d1[3]
                if dm.get("encrypt", None) == "Y":
                    d = aes_cbc_base64_dec(dm["key"], dm["iv"], d)
                df = read_csv_caret(d, dm["columns"])
                show_result = True
            else:
                rsp = system_resp(raw)
                tr_id = rsp.tr_id
                add_data_map(tr_id=rsp.tr_id, encrypt=rsp.encrypt, key=rsp.ekey, iv=rsp.iv)
                if rsp.isPingPong:
                    print(f"### RECV [PINGPONG] [{raw}]")
                    await ws.pong(raw)
                    print(f"### SEND [PINGPONG] [{raw}]")
                if self.result_all_data:
                    show_result = True

            if show_result is True and self.on_result is not None:
                self.on_result(ws, tr_id, df, data_map[tr_id])

    async def __runner(self):
        if len(open_map.keys()) > 40:
            raise ValueError("Subscription's max is 40")

        url = f"{_ka.getTREnv().my_url_ws}{self.api_url}"

        while self.retry_count < self.max_retries:
            try:
                async with websockets.connect(url) as ws:
                    _observe("connect")
                    for name, obj in open_map.items():
                        await self.send_multiple(ws, obj["func"], "1", obj["items"], obj["kwargs"])
                    await asyncio.gather(self.__subscriber(ws))
                _observe("closed", code=ws.close_code)
            except Exception as e:
                print("Connection exception >> ", e)
                _observe("exception", error=type(e).__name__)
                self.retry_count += 1
                await asyncio.sleep(1)

    @classmethod
    async def send(cls, ws, request, tr_type, data, kwargs=None):
        k = {} if kwargs is None else kwargs
        msg, columns = request(tr_type, data, **k)
        add_data_map(tr_id=msg["body"]["input"]["tr_id"], columns=columns)
        logging.info("send message >> %s" % json.dumps(msg))
        await ws.send(json.dumps(msg))
        _ka.smart_sleep()

    async def send_multiple(self, ws, request, tr_type, data, kwargs=None):
        if type(data) is str:
            await self.send(ws, request, tr_type, data, kwargs)
        elif type(data) is list:
            for d in data:
                await self.send(ws, request, tr_type, d, kwargs)
        else:
            raise ValueError("data must be str or list")

    @classmethod
    def subscribe(cls, request, data, kwargs=None):
        add_open_map(request.__name__, request, data, kwargs)

    def unsubscribe(self, ws, request, data):
        # Not awaited, as in the original: the coroutine is created and dropped, nothing is sent.
        self.send_multiple(ws, request, "2", data)

    def start(self, on_result, result_all_data=False):
        self.on_result = on_result
        self.result_all_data = result_all_data
        try:
            asyncio.run(self.__runner())
        except KeyboardInterrupt:
            print("Closing by KeyboardInterrupt")
