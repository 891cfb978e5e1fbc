# -*- coding: utf-8 -*-
"""What the real-time replicas' bots share: one JSON event per line on the process's real stdout, even while the
replicated client's own prints are redirected to stderr (``contextlib.redirect_stdout``), so a test can read
stdout line by line. Observation only: nothing a client sends depends on it."""

import json
import sys

_STDOUT = sys.stdout


def emit(event):
    _STDOUT.write(json.dumps(event, ensure_ascii=False) + "\n")
    _STDOUT.flush()
