"""Small local servers for the token-origin tests (issue 14): each records every request it receives.

- `Recorder`: an HTTP or HTTPS server on 127.0.0.1 answering with a function of the request (a redirect,
  a CircleCI-like answer, or a relay to the simulator: a TLS front like a CircleCI server's load balancer).
- `ForwardProxy`: an HTTP forward proxy (absolute-form requests for http:// targets, CONNECT tunnels for https://).
- `make_ca` / `server_certificate`: a certificate authority and a certificate for 127.0.0.1 and localhost it signed.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import select
import socket
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Mapping, Optional
from urllib.parse import urlsplit

# What a handler answers: status, headers, body.
Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Seen:
    """One request a server received: its request line and every header, as sent."""

    method: str
    target: str  # the path, or for a proxy the absolute URL / CONNECT authority
    headers: list[tuple[str, str]]

    def carries(self, secret: str) -> bool:
        """True when the request holds the token anywhere: in a Circle-Token header, any header value or its target."""
        return any(name.lower() == "circle-token" or secret in value for name, value in self.headers) or secret in self.target


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def _record(self) -> None:
        self.server.seen.append(Seen(self.command, self.path, list(self.headers.items())))  # type: ignore[attr-defined]

    def _reply(self, reply: Reply) -> None:
        status, headers, body = reply
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that refuses our certificate or drops a tunnel is part of the tests, not a failure


class Recorder:
    """A server on 127.0.0.1 answering `answer(path, headers)`; `seen` lists every request received."""

    def __init__(self, answer: Callable[[str, Mapping[str, str]], Reply], tls: Optional[ssl.SSLContext] = None) -> None:
        self.answer = answer

        class Handler(_Quiet):
            def do_GET(handler) -> None:  # noqa: N805
                handler._record()
                handler._reply(self.answer(handler.path, handler.headers))

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.seen = []  # type: ignore[attr-defined]
        self.origin = f"{'https' if tls else 'http'}://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def seen(self) -> list[Seen]:
        return self._httpd.seen  # type: ignore[attr-defined,no-any-return]

    def __enter__(self) -> "Recorder":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def relay_to(origin: str) -> Callable[[str, Mapping[str, str]], Reply]:
    """An answer that asks `origin` (the simulator) for the same path with the same token: a TLS front."""
    parts = urlsplit(origin)

    def answer(path: str, headers: Mapping[str, str]) -> Reply:
        upstream = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        upstream.request("GET", path, headers={k: v for k, v in headers.items() if k.lower() in ("circle-token", "accept")})
        response = upstream.getresponse()
        body = response.read()
        upstream.close()
        return response.status, {"Content-Type": response.getheader("Content-Type") or "application/json"}, body

    return answer


class ForwardProxy:
    """An HTTP proxy on 127.0.0.1: forwards `GET http://...` requests and tunnels `CONNECT host:port`.
    `seen` lists what the proxy saw of each request (for a tunnel only the CONNECT line and its headers)."""

    def __init__(self) -> None:
        class Handler(_Quiet):
            def do_GET(handler) -> None:  # noqa: N805
                handler._record()
                target = urlsplit(handler.path)
                upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
                headers = {k: v for k, v in handler.headers.items() if not k.lower().startswith("proxy-")}
                upstream.request("GET", target.path + (f"?{target.query}" if target.query else ""), headers=headers)
                response = upstream.getresponse()
                body = response.read()
                passed = {k: v for k, v in response.getheaders() if k.lower() not in ("content-length", "transfer-encoding", "connection")}
                upstream.close()
                handler._reply((response.status, passed, body))

            def do_CONNECT(handler) -> None:  # noqa: N805
                handler._record()
                host, port = handler.path.rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)), timeout=30)
                handler.send_response(200, "Connection established")
                handler.end_headers()
                handler.wfile.flush()
                sockets = [handler.connection, upstream]
                try:
                    while True:
                        readable, _, _ = select.select(sockets, [], [], 30)
                        if not readable:
                            return
                        for sock in readable:
                            data = sock.recv(65536)
                            if not data:
                                return
                            (upstream if sock is handler.connection else handler.connection).sendall(data)
                finally:
                    upstream.close()

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.seen = []  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def seen(self) -> list[Seen]:
        return self._httpd.seen  # type: ignore[attr-defined,no-any-return]

    def __enter__(self) -> "ForwardProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# --- certificates ---------------------------------------------------------------------------------------


@dataclass
class Authority:
    key: object
    certificate: object
    pem: str  # the CA certificate, as a user pastes it into ca_certificate


def make_ca(name: str) -> Authority:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, certificate, certificate.public_bytes(serialization.Encoding.PEM).decode())


def server_context(ca: Authority, folder: Path) -> ssl.SSLContext:
    """A TLS server context whose certificate (for 127.0.0.1 and localhost) `ca` signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "circleci.test")]))
        .issuer_name(ca.certificate.subject)  # type: ignore[attr-defined]
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False  # type: ignore[attr-defined]
        )
        .sign(ca.key, hashes.SHA256())  # type: ignore[arg-type]
    )
    cert_file = folder / "server.pem"
    key_file = folder / "server.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context

