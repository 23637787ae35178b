"""Keep-alive HTTP(S) connections to one store endpoint, for the direct path: the standard library's
http.client, pooled.

Why not urllib3 (which the direct path used first): measured on 64 KiB GETs from Azurite, a request costs
~150 us of CPU on http.client and ~320 us through urllib3's connection pool (~390 us through its
PoolManager). Most of the difference is work the direct path does not need: re-parsing and
percent-normalising a URL that is already encoded, character by character in Python (every SAS token and
every quoted key contains '%', which defeats urllib3's fast path), header dicts rebuilt per request and
response, and retry/redirect machinery the caller has disabled anyway. A small object is two requests, so
this was a quarter of the copier's CPU per object, and on a machine shared with the stores, CPU is speed.

What urllib3 gave that matters is kept: keep-alive reuse with a check that an idle connection was not
closed by the server meanwhile (and one transparent retry on a fresh connection when a reused one turns
out dead), separate connect and read timeouts, TLS with certificate and hostname verification (the
system's trust store, or ``AWS_CA_BUNDLE``), and a body length checked against Content-Length.
"""

from __future__ import annotations

import email.parser
import http.client
import select
import socket
import ssl
import threading
import time
import types
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

#: what a broken connection raises (socket errors and timeouts are OSErrors; a short or garbled answer is
#: an HTTPException)
NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, http.client.HTTPException)

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0
# A server closes an idle keep-alive connection after its own timeout (Azurite: 5 s); older idle
# connections are not worth the check.
MAX_IDLE_S = 4.0


class BodyLengthError(http.client.HTTPException):
    """An answer whose body is not as long as the caller or its Content-Length said."""


class Headers(http.client.HTTPMessage):
    """A response's headers, indexed: ``get``, ``[]`` and ``in`` ignore case (as on any HTTPMessage) in one
    dict lookup instead of a walk of the list. Read-only, as http.client leaves response headers."""

    _first: dict[str, str]

    def get(self, name: str, failobj: Any = None) -> Any:  # type: ignore[override]
        return self._first.get(name.lower(), failobj)

    def __getitem__(self, name: str) -> Any:
        return self._first.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first


def parse_headers(fp: Any, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage) -> http.client.HTTPMessage:
    """http.client.parse_headers for the usual header block: one ``Name: value`` per line.

    Why: the standard one hands the block to the email package's feed parser, ~40 us per answer here (a
    small object's copy gets two answers); splitting the lines ourselves gives the same names and values
    (compat32 rules: value left-stripped of blanks, line end removed) in a few. Anything unusual (a folded
    continuation line, a line without a colon, a blank before the colon) goes to the standard parser, and a
    test compares both on ordinary and odd blocks."""
    lines = http.client._read_headers(fp)  # the standard reader: its line and count limits included
    pairs = []
    for raw in lines:
        if raw in (b"\r\n", b"\n", b""):
            break  # the blank line that ends the block (the reader keeps it)
        line = raw.decode("iso-8859-1")
        name, colon, value = line.partition(":")
        if not colon or not name or name[0] in " \t" or name[-1] in " \t":
            return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))
        pairs.append((name, value.lstrip(" \t").rstrip("\r\n")))
    msg = Headers()
    msg._headers = pairs
    first: dict[str, str] = {}
    for name, value in pairs:
        first.setdefault(name.lower(), value)
    msg._first = first
    return msg


class _Response(http.client.HTTPResponse):
    # http.client's own begin() (status line, 1xx skipping, length, keep-alive rules), run with the
    # parse_headers above in place of the module's: the same code object, other globals
    begin = types.FunctionType(
        http.client.HTTPResponse.begin.__code__, {**vars(http.client), "parse_headers": parse_headers}, "begin"
    )


class _HTTPConnection(http.client.HTTPConnection):
    response_class = _Response

    def connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), CONNECT_TIMEOUT, self.source_address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(READ_TIMEOUT)


class _HTTPSConnection(http.client.HTTPSConnection):
    response_class = _Response

    def connect(self) -> None:
        self.timeout = CONNECT_TIMEOUT
        super().connect()  # TLS handshake with the context's verification (hostname included)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(READ_TIMEOUT)


def _dropped(sock: socket.socket | None) -> bool:
    """True when an idle connection is unusable: closed, or readable (the server's EOF or stray bytes)."""
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class Answer:
    """One response: status, headers (case-insensitive ``get``), and its body read whole, streamed, or
    read into a caller's buffer. Its connection goes back to the pool once the body is fully read
    (``release_conn``), and is closed instead if anything is left unread."""

    __slots__ = ("_conn", "_data", "_pool", "_resp", "headers", "status")

    def __init__(self, resp: http.client.HTTPResponse, conn: http.client.HTTPConnection, pool: Connections) -> None:
        self._resp, self._conn, self._pool = resp, conn, pool
        self._data: bytes | None = None
        self.status = resp.status
        self.headers = resp.headers  # email.message.Message: get() and "in" ignore case

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = self.read()
        return self._data

    def read(self) -> bytes:
        """The whole (rest of the) body; the connection is released."""
        try:
            data = self._resp.read()
        except BaseException:
            self.close()
            raise
        self.release_conn()
        return data

    def stream(self, chunk_size: int) -> Iterator[bytes]:
        while chunk := self._resp.read(chunk_size):
            yield chunk

    def readinto(self, view: memoryview) -> int:
        """Up to len(view) bytes of the body into view; 0 at its end."""
        return self._resp.readinto(view)

    def close(self) -> None:
        """Drop the connection (an unread rest is not drained)."""
        if self._conn is not None:
            self._resp.close()
            self._conn.close()
            self._conn = None

    def release_conn(self) -> None:
        """Give the connection back if the body was read to its end (and the server keeps it open)."""
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        if self._resp.isclosed() and not self._resp.will_close:
            self._pool.give(conn)
        else:
            self._resp.close()
            conn.close()


class Connections:
    """A pool of keep-alive connections to one origin (scheme://host:port). Thread-safe; never blocks:
    more connections than maxsize may be open at once, at most maxsize are kept idle."""

    def __init__(self, url: str, maxsize: int, ca_bundle: str | None = None) -> None:
        parts = urlsplit(url)
        self.scheme, self.host = parts.scheme, parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self._maxsize = maxsize
        self._idle: list[tuple[float, http.client.HTTPConnection]] = []
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._tls = ssl.create_default_context(cafile=ca_bundle or None)

    def _new(self) -> http.client.HTTPConnection:
        if self._tls is not None:
            return _HTTPSConnection(self.host, self.port, context=self._tls)
        return _HTTPConnection(self.host, self.port)

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    break
                since, conn = self._idle.pop()
            if now - since < MAX_IDLE_S and not _dropped(conn.sock):
                return conn, True
            conn.close()
        return self._new(), False

    def give(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._maxsize:
                self._idle.append((time.monotonic(), conn))
                return
        conn.close()

    def request(self, method: str, url: str, *, body: bytes | memoryview | None, headers: Mapping[str, str]) -> Answer:
        """Send one request and read the answer's status and headers (the body is the caller's to read).

        url is the full URL of this origin, already encoded as it must be sent. A reused connection the
        server had closed fails before any answer: the request is then sent once more on a new one."""
        target = url[len(self.origin) :] if url.startswith(self.origin) else url
        target = target or "/"
        conn, reused = self._take()
        try:
            resp = self._exchange(conn, method, target, body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            conn.close()
            if not reused:
                raise
            conn = self._new()  # the server had closed the idle connection: once more, on a new one
            try:
                resp = self._exchange(conn, method, target, body, headers)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            conn.close()
            raise
        return Answer(resp, conn, self)

    @staticmethod
    def _exchange(
        conn: http.client.HTTPConnection,
        method: str,
        target: str,
        body: bytes | memoryview | None,
        headers: Mapping[str, str],
    ) -> http.client.HTTPResponse:
        conn.request(method, target, body=body, headers=dict(headers))
        return conn.getresponse()


def fill(r: Answer, into: memoryview) -> None:
    """Read a body of exactly len(into) bytes from the socket into the caller's buffer.

    Why: a fresh bytes object per 8 MiB part costs an allocation and the page faults of its first touch
    (~12 % of a large copy's CPU, perf); a reused buffer costs neither. A body of any other length is
    refused (its connection dropped, not reused)."""
    declared = r.headers.get("Content-Length")
    if declared is None or int(declared) != len(into):
        r.close()
        raise BodyLengthError(f"expected a body of {len(into)} bytes, the answer declares {declared or 'no length'}")
    got, done = 0, False
    try:
        while got < len(into):
            n = r.readinto(into[got:])
            if not n:
                raise BodyLengthError(f"the body ended after {got} of {len(into)} bytes")
            got += n
        done = True
    finally:
        if not done:
            r.close()
        r.release_conn()
