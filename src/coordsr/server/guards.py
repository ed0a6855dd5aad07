"""Who may talk to the server: the Host header (DNS rebinding) and the origin of writes (CSRF).

The server has no accounts, so a web page the user visits elsewhere must not be able to use it:

- **Host**: a page on ``attacker.example`` whose name is made to resolve to 127.0.0.1 (DNS
  rebinding) talks to us with ``Host: attacker.example``. Only the names the server is reached
  by are answered: the bound address, ``localhost``, ``127.0.0.1``, ``::1``, and the names given
  with ``--allow-host`` (``*`` answers any, ``*.example.com`` any subdomain).
- **Origin**: a page elsewhere can POST a multipart form here without reading the answer (CSRF).
  Writes (POST, PUT, PATCH, DELETE) whose ``Sec-Fetch-Site`` is not ``same-origin``/``none``, or
  whose ``Origin`` (or, without one, ``Referer``) is not this server, are refused. Clients that
  send none of these headers (curl, scripts) are not browsers acting for a page, and pass.

Refusals are JSON ``{"detail": "one line"}``: 400 for the host, 403 for the origin.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def split_host(value: str) -> tuple[str, int | None] | None:
    """'Example.com:8080' -> ('example.com', 8080); '[::1]:7860' -> ('::1', 7860); None if malformed.

    >>> split_host("[::1]:7860"), split_host("LocalHost"), split_host("a b")
    (('::1', 7860), ('localhost', None), None)
    """
    value = value.strip().lower()
    if value.startswith("["):  # an IPv6 literal: [addr] or [addr]:port
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1:]
        if rest and not rest.startswith(":"):
            return None
        port = rest[1:] or None
    else:
        name, _, port = value.partition(":")
        port = port if _ else None
    if not name or any(c.isspace() or c in "/\\@?#[]" for c in name):
        return None
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            return None
        return name, int(port)
    return name, None


def default_allowed_hosts(bind_host: str) -> list[str]:
    """The names a server bound to ``bind_host`` is reached by without any --allow-host.

    A wildcard bind (0.0.0.0, ::) adds this machine's name and the addresses it resolves to;
    other names (a LAN DNS name, a second interface) need --allow-host.
    """
    names = list(LOOPBACK_NAMES)
    bind = bind_host.strip("[]").lower()
    if bind in WILDCARD_BINDS:
        hostname = socket.gethostname().lower()
        names += [hostname, socket.getfqdn().lower()]
        try:
            names += [info[4][0] for info in socket.getaddrinfo(hostname, None)]
        except OSError:
            pass
    else:
        names.append(bind)
    return list(dict.fromkeys(n for n in names if n))


def host_allowed(name: str, allowed: Iterable[str]) -> bool:
    for pattern in allowed:
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


def _same_origin(url: str, host: tuple[str, int | None], scheme: str) -> bool:
    """Whether ``url`` (an Origin or Referer) names the server the request came to."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return False
    if not parts.hostname:
        return False
    name = parts.hostname.lower()
    ours = host[1] or DEFAULT_PORTS.get(scheme)
    return _canonical(name) == _canonical(host[0]) and port == ours


def _canonical(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


class RequestGuard:
    """ASGI middleware: refuse unknown Host headers and cross-origin writes (see the module)."""

    def __init__(self, app, allowed_hosts: Iterable[str]):
        self.app = app
        self.allowed = [h.strip().strip("[]").lower() for h in allowed_hosts if h.strip()]

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        refusal = self.check(scope.get("method", "GET"), scope.get("scheme", "http"), headers)
        if refusal is not None:
            status, detail = refusal
            return await JSONResponse({"detail": detail}, status)(scope, receive, send)
        return await self.app(scope, receive, send)

    def check(self, method: str, scheme: str, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, one line) when the request is refused, None when it may go on."""
        raw_host = headers.get("host", "")
        host = split_host(raw_host)
        if host is None:
            return 400, f"bad Host header {raw_host[:100]!r}"
        if not host_allowed(host[0], self.allowed):
            return 400, (f"host {host[0][:100]!r} is not allowed (DNS rebinding guard); start the "
                         f"server with --allow-host {host[0][:100]} to answer it")
        if method.upper() not in UNSAFE_METHODS:
            return None
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return 403, f"cross-origin request refused (Sec-Fetch-Site: {site[:40]})"
        origin = headers.get("origin")
        if origin is not None:
            if not _same_origin(origin, host, scheme):
                return 403, f"cross-origin request refused (Origin: {origin[:100]})"
        elif headers.get("referer") is not None and not _same_origin(headers["referer"], host, scheme):
            return 403, "cross-origin request refused (Referer from another site)"
        return None


__all__ = ["RequestGuard", "default_allowed_hosts", "host_allowed", "split_host"]
