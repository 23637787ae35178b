"""The direct path's keep-alive connections (stores/httppool.py) against small real servers on loopback
that misbehave on purpose: a server closing idle connections, one closing a connection just as a request
arrives, a body shorter or longer than announced, and TLS with and without the right CA."""

from __future__ import annotations

import datetime as dt
import http.client
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hdh_migrate.errors import StoreUnavailableError
from hdh_migrate.stores import httppool
from hdh_migrate.stores.direct import send
from hdh_migrate.stores.httppool import BodyLengthError, Connections, fill


def _answer(body: bytes, length: int | None = None) -> bytes:
    n = len(body) if length is None else length
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s" % (n, body)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += conn.recv(65536)
    return head


class Server:
    """A loopback TCP server; handle(conn, nth_connection) serves one accepted connection."""

    def __init__(self, handle: Callable[[socket.socket, int], None], tls: ssl.SSLContext | None = None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._handle, self._tls = handle, tls
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            n = self.connections
            if self._tls is not None:
                try:
                    conn = self._tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    conn.close()
                    continue
            threading.Thread(target=self._run, args=(conn, n), daemon=True).start()

    def _run(self, conn: socket.socket, n: int) -> None:
        try:
            self._handle(conn, n)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(handle: Callable[[socket.socket, int], None], tls: ssl.SSLContext | None = None) -> Server:
        servers.append(Server(handle, tls))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_connections_are_kept_alive_and_reused(serve) -> None:
    def keep_alive(conn: socket.socket, n: int) -> None:
        while _read_request(conn):
            conn.sendall(_answer(b"hello"))

    srv = serve(keep_alive)
    pool = Connections(f"http://127.0.0.1:{srv.port}", maxsize=2)
    for _ in range(5):
        assert pool.request("GET", f"http://127.0.0.1:{srv.port}/k?a=%2F", body=None, headers={}).data == b"hello"
    assert srv.connections == 1


def test_a_connection_the_server_closed_while_idle_is_replaced(serve) -> None:
    def one_answer_per_connection(conn: socket.socket, n: int) -> None:
        _read_request(conn)
        conn.sendall(_answer(b"one"))  # keep-alive by HTTP/1.1 default, then closed: an idle timeout

    srv = serve(one_answer_per_connection)
    pool = Connections(f"http://127.0.0.1:{srv.port}", maxsize=2)
    for _ in range(3):
        assert pool.request("GET", "/x", body=None, headers={}).data == b"one"
        threading.Event().wait(0.05)  # the server's FIN arrives while the connection is idle in the pool
    assert srv.connections == 3


def test_a_reused_connection_closed_as_the_request_arrives_is_retried_once(serve, monkeypatch) -> None:
    def closes_on_second_request(conn: socket.socket, n: int) -> None:
        _read_request(conn)
        conn.sendall(_answer(b"first"))
        if n == 1:
            _read_request(conn)  # the race: the server gives up on the connection as a request comes in
            return
        while _read_request(conn):
            conn.sendall(_answer(b"again"))

    srv = serve(closes_on_second_request)
    monkeypatch.setattr(httppool, "_dropped", lambda sock: False)  # the idle check cannot see this race
    pool = Connections(f"http://127.0.0.1:{srv.port}", maxsize=2)
    assert pool.request("PUT", "/k", body=b"payload", headers={}).data == b"first"
    assert pool.request("PUT", "/k", body=memoryview(b"payload"), headers={}).data == b"first"
    assert srv.connections == 2  # sent again, once, on a new connection


def test_a_body_shorter_than_announced_is_refused(serve) -> None:
    def short(conn: socket.socket, n: int) -> None:
        _read_request(conn)
        conn.sendall(_answer(b"only this", length=100))

    srv = serve(short)
    pool = Connections(f"http://127.0.0.1:{srv.port}", maxsize=2)
    with pytest.raises(http.client.IncompleteRead):
        pool.request("GET", "/k", body=None, headers={}).data  # noqa: B018
    buf = memoryview(bytearray(100))
    with pytest.raises(BodyLengthError, match="ended after 9 of 100"):
        fill(pool.request("GET", "/k", body=None, headers={}), buf)
    with pytest.raises(BodyLengthError, match="declares 100"):
        fill(pool.request("GET", "/k", body=None, headers={}), buf[:50])
    # through the direct path's send(): a transient failure, retried, then a typed error
    with pytest.raises(StoreUnavailableError, match="cannot reach"):
        send(pool, "GET", "/k", headers=dict, into=buf, endpoint="test", what="read k")
    assert srv.connections >= 3 + 4  # every attempt of send() on a fresh connection: none was reused


def _self_signed(tmp_path: Path, host: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName([x509.DNSName(host)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{host}.pem", tmp_path / f"{host}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_tls_verifies_the_certificate_and_the_host_name(serve, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, "localhost")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    def keep_alive(conn: socket.socket, n: int) -> None:
        while _read_request(conn):
            conn.sendall(_answer(b"over tls"))

    srv = serve(keep_alive, tls=ctx)
    url = f"https://localhost:{srv.port}"
    assert Connections(url, 2, ca_bundle=str(cert)).request("GET", url + "/k", body=None, headers={}).data == (
        b"over tls"
    )
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        Connections(url, 2).request("GET", url + "/k", body=None, headers={})  # not in the system trust store
    other, _ = _self_signed(tmp_path, "store.example.org")  # a CA for another name: hostname check
    with pytest.raises(ssl.SSLCertVerificationError):
        Connections(url, 2, ca_bundle=str(other)).request("GET", url + "/k", body=None, headers={})


@pytest.mark.parametrize(
    "block",
    [
        b'Content-Length: 5\r\nETag: "0x8DC"\r\nx-ms-meta-Origin: snds\r\nx-amz-meta-a: 1\r\nX-AMZ-META-A: 2\r\n'
        b"Content-MD5: 1B2M2Y8AsgTpgAmY7PhCfg==\r\nx-empty:\r\nx-spaces:   padded value  \r\n\r\n",
        b"Content-Length: 5\r\nX-Folded: first\r\n  second line\r\n\r\n",  # obsolete folding: the email parser
        b"Content-Length: 5\r\nnot a header line\r\nETag: x\r\n\r\n",
        b"Content-Length : 5\r\n\r\n",
        b"Content-Length: 5\r\nx-latin1: caf\xe9\r\n\r\n",
    ],
)
def test_header_parsing_is_http_clients(block: bytes) -> None:
    """The direct path's header parser gives what http.client's gives: the same (name, value) pairs in order,
    the same answers to get/[]/in whatever the case, the same length and keep-alive decisions."""
    import io

    class Sock:
        def makefile(self, mode: str) -> io.BufferedReader:
            return io.BufferedReader(io.BytesIO(b"HTTP/1.1 200 OK\r\n" + block + b"hello"))

    theirs, ours = http.client.HTTPResponse(Sock(), method="GET"), httppool._Response(Sock(), method="GET")
    theirs.begin()
    ours.begin()
    assert ours.headers.items() == theirs.headers.items()
    if b'"0x8DC"' in block:  # the ordinary block takes the quick path (the odd ones the standard parser)
        assert isinstance(ours.headers, httppool.Headers)
    for name in ("content-length", "ETAG", "x-amz-meta-a", "X-Folded", "x-empty", "x-spaces", "missing", "x-latin1"):
        assert ours.headers.get(name) == theirs.headers.get(name)
        assert ours.headers[name] == theirs.headers[name]
        assert (name in ours.headers) == (name in theirs.headers)
    assert (ours.length, ours.will_close, ours.chunked) == (theirs.length, theirs.will_close, theirs.chunked)
    assert ours.read() == theirs.read()
