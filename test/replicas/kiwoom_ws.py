# -*- coding: utf-8 -*-
"""Replica of the WebSocket client in Kiwoom's official REST API guide examples (the ``WebSocketClient`` class
the guide's real-time pages give, copied widely by users): ``connect()`` opens the socket and sends
``{"trnm": "LOGIN", "token": ACCESS_TOKEN}``; ``receive_messages()`` reads JSON messages while ``keep_running``:
a LOGIN answer with ``return_code != 0`` prints "로그인 실패하였습니다." and disconnects (``keep_running = False``), a
PING is sent back as received (``send_message(response)``, i.e. ``json.dumps`` of the parsed message), anything
else is printed; ``send_message`` reconnects (and logs in again) when not connected. ``main()`` starts the client
as a task, sleeps 1 s, then sends ``{"trnm": "REG", "grp_no": "1", "refresh": "1", "data": [{"item": [...],
"type": [...]}]}`` and waits for the task.

Usage:
  python3 kiwoom_ws.py --url WS_URL --token-file F [--item CODE ...] [--type 0B ...] [--grp-no 1] [--refresh 1]

The guide hard-codes ``SOCKET_URL`` and ``ACCESS_TOKEN`` (obtained from au10001); here they come from ``--url``
and ``--token-file`` (one trailing newline stripped). websockets is Debian's 10.4; the guide uses ``connect``,
``send``, ``recv`` and ``close``, the same in every version.

A quirk kept: ``main()`` sends its REG after a fixed 1 s; if ``connect()`` has not finished by then (a slow host, a
slow network), ``send_message`` finds ``connected`` false and connects, and logs in, a second time: on Kiwoom the
second LOGIN ends the first connection with R10001, so the process replaces its own session.

One deviation: when the server closes the connection, the guide's loop catches ``ConnectionClosed``, sets
``connected = False``, closes, and carries on with ``keep_running`` still true, so ``recv()`` raises again at once
for ever: a busy loop printing "Connection closed by the server", sending nothing. This replica reports the close
once and stops, since the spin reaches neither the broker nor the program's output of interest.

Output, one JSON line per event on stdout (the guide's prints go to stderr):
  {"event": "login", "returnCode", "returnMsg"}                  the LOGIN answer
  {"event": "answer", "trnm", "returnCode", "returnMsg"}         REG / REMOVE answers
  {"event": "real", "type", "item", "values": {fid: text}}       one per entry of a REAL push
  {"event": "ping"}                                              a PING received (and sent back)
  {"event": "system", "code", "message"}                         a SYSTEM message (R10001: replaced by a new login)
  {"event": "sent", "trnm"}                                      a message sent (never the token)
  {"event": "closed", "code"}                                    the server closed the connection
"""

import argparse
import asyncio
import contextlib
import json
import os
import sys

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _replica_events import emit  # noqa: E402
from _replica_http import read_secret  # noqa: E402


class WebSocketClient:
    def __init__(self, uri, access_token):
        self.uri = uri
        self.access_token = access_token
        self.websocket = None
        self.connected = False
        self.keep_running = True

    async def connect(self):
        try:
            self.websocket = await websockets.connect(self.uri)
            self.connected = True
            print("서버와 연결을 시도 중입니다.")
            param = {"trnm": "LOGIN", "token": self.access_token}
            print("실시간 시세 서버로 로그인 패킷을 전송합니다.")
            await self.send_message(message=param)
        except Exception as e:
            print(f"Connection error: {e}")
            self.connected = False

    async def send_message(self, message):
        if not self.connected:
            await self.connect()
        if self.connected:
            if not isinstance(message, str):
                message = json.dumps(message)
        await self.websocket.send(message)
        emit({"event": "sent", "trnm": json.loads(message).get("trnm")})
        # The guide prints the message sent, the LOGIN's token included; the replica does not repeat it.

    async def receive_messages(self):
        while self.keep_running:
            try:
                response = json.loads(await self.websocket.recv())
                trnm = response.get("trnm")
                if trnm == "LOGIN":
                    emit({"event": "login", "returnCode": response.get("return_code"), "returnMsg": response.get("return_msg")})
                    if response.get("return_code") != 0:
                        print("로그인 실패하였습니다. : ", response.get("return_msg"))
                        await self.disconnect()
                    else:
                        print("로그인 성공하였습니다.")
                elif trnm == "PING":
                    emit({"event": "ping"})
                    await self.send_message(response)
                if trnm != "PING":
                    print(f"실시간 시세 서버 응답 수신: {response}")
                    self.report(response)
            except websockets.ConnectionClosed as closed:
                print("Connection closed by the server")
                self.connected = False
                await self.websocket.close()
                emit({"event": "closed", "code": closed.code})
                return

    @staticmethod
    def report(response):
        trnm = response.get("trnm")
        if trnm == "REAL":
            for entry in response.get("data", []):
                emit({"event": "real", "type": entry.get("type"), "item": entry.get("item"), "values": entry.get("values")})
        elif trnm == "SYSTEM":
            emit({"event": "system", "code": response.get("code"), "message": response.get("message")})
        elif trnm in ("REG", "REMOVE"):
            emit({"event": "answer", "trnm": trnm, "returnCode": response.get("return_code"), "returnMsg": response.get("return_msg")})

    async def run(self):
        await self.connect()
        await self.receive_messages()

    async def disconnect(self):
        self.keep_running = False
        if self.connected and self.websocket:
            await self.websocket.close()
            self.connected = False
            print("Disconnected from WebSocket server")


async def main(args):
    websocket_client = WebSocketClient(args.url, read_secret(args.token_file))
    receive_task = asyncio.create_task(websocket_client.run())
    await asyncio.sleep(1)
    await websocket_client.send_message({
        "trnm": "REG",
        "grp_no": args.grp_no,
        "refresh": args.refresh,
        "data": [{"item": args.item, "type": args.type}],
    })
    await receive_task


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Kiwoom guide WebSocket client (replica)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--item", nargs="*", default=["005930"])
    parser.add_argument("--type", nargs="*", default=["0B"])
    parser.add_argument("--grp-no", default="1")
    parser.add_argument("--refresh", default="1")
    arguments = parser.parse_args()
    with contextlib.redirect_stdout(sys.stderr):
        asyncio.run(main(arguments))
