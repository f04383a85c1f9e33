"""The HTTP opener of monitoring's clients (served arms, the event sink): a loopback server is never reached
through an HTTP proxy from the environment."""
from __future__ import annotations

import urllib.parse
import urllib.request

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def opener_for(url: str) -> urllib.request.OpenerDirector:
    loopback = urllib.parse.urlparse(url).hostname in LOOPBACK
    return urllib.request.build_opener(*([urllib.request.ProxyHandler({})] if loopback else []))
