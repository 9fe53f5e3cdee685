"""A small synchronous HTTPS client for the minik API.

It speaks JSON, sends the bearer token from the kubeconfig, trusts only the
CA named there, and turns every error answer into `ApiError` (parsed from
the `metav1.Status` body) so that callers handle one exception type.
`Warning` headers are collected for the caller to print, as kubectl does.

One connection is kept alive between requests. A request that fails on a
reused connection (the server closed it while idle) is sent once more on a
new one, but only when it is idempotent, as Go's net/http does: a POST or
PATCH that may have reached the server is never sent twice. A connection
idle for longer than `IDLE_REUSE` is not reused at all.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Generator
from typing import Any
from urllib.parse import urlencode, urlsplit

from minik.api.errors import ApiError
from minik.api.objects import JsonObject
from minik.kubeconfig import ClusterAccess

Params = dict[str, Any] | list[tuple[str, Any]] | None
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
IDLE_REUSE = 15.0  # seconds; well under the server's keep-alive timeout (75 s)


def warning_text(header: str) -> str:
    """The text of a `Warning: 299 - "text"` header, unescaped as client-go's parser does.

    http.client reads header bytes as Latin-1; the server wrote UTF-8.
    """
    value = header.encode("latin-1", "replace").decode("utf-8", "replace")
    code, _, rest = value.partition(" ")
    quoted = rest.partition(" ")[2].strip()
    if not (code.isdigit() and quoted.startswith('"')):
        return value
    text: list[str] = []
    escaping = False
    for ch in quoted[1:]:
        if escaping or ch not in '\\"':
            text.append(ch)
            escaping = False
        elif ch == "\\":
            escaping = True
        else:
            break
    return "".join(text)


class ConnectionFailed(Exception):
    """The API server could not be reached at all."""


class RestClient:
    """Requests against one API server, reusing a single connection."""

    def __init__(self, access: ClusterAccess, *, timeout: float = 30.0) -> None:
        self.access = access
        self.timeout = timeout
        self.warnings: list[str] = []
        url = urlsplit(access.server)
        if url.scheme != "https":
            raise ValueError(f"minik only speaks HTTPS, not {access.server!r}")
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or 443
        self._context = self._ssl_context()
        self._conn: http.client.HTTPSConnection | None = None
        self._used_at = 0.0

    def _ssl_context(self) -> ssl.SSLContext:
        if self.access.insecure:
            return ssl._create_unverified_context()
        context = ssl.create_default_context()
        if self.access.ca_pem:
            context.load_verify_locations(cadata=self.access.ca_pem.decode())
        return context

    def _connection(self, timeout: float | None) -> http.client.HTTPSConnection:
        if self._conn is not None and time.monotonic() - self._used_at > IDLE_REUSE:
            self.close()
        if self._conn is None:
            self._conn = http.client.HTTPSConnection(
                self._host, self._port, context=self._context, timeout=timeout
            )
        else:
            self._conn.timeout = timeout
            if self._conn.sock is not None:
                self._conn.sock.settimeout(timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _send(
        self, method: str, path: str, params: Params, body: bytes | None,
        headers: dict[str, str], timeout: float | None,
    ) -> http.client.HTTPResponse:
        target = f"{path}?{urlencode(params, doseq=True)}" if params else path
        headers = {"Authorization": f"Bearer {self.access.token}", **headers} \
            if self.access.token else dict(headers)
        for attempt in (1, 2):
            reused = self._conn is not None
            conn = self._connection(timeout)
            try:
                conn.request(method, target, body=body, headers=headers)
                response = conn.getresponse()
            except (ConnectionError, http.client.HTTPException) as e:
                self.close()
                retry = reused and method in IDEMPOTENT and not isinstance(
                    e, ConnectionRefusedError)
                if attempt == 2 or not retry:
                    raise ConnectionFailed(self._refused()) from e
            except OSError as e:
                self.close()
                raise ConnectionFailed(self._refused()) from e
            else:
                self._used_at = time.monotonic()
                return response
        raise AssertionError("unreachable")

    def _refused(self) -> str:
        return (f"The connection to the server {self._host}:{self._port} was refused - "
                "did you specify the right host or port?")

    def _collect_warnings(self, response: http.client.HTTPResponse) -> None:
        for value in response.headers.get_all("Warning") or []:
            self.warnings.append(warning_text(value))

    def request(
        self, method: str, path: str, *, params: Params = None, body: object = None,
        content_type: str = "application/json", accept: str = "application/json",
        timeout: float | None = None,
    ) -> Any:
        """One request; returns decoded JSON (or text), raises ApiError on failure.

        The answer is whatever `path` serves (an object, a list, a Table, text),
        so it is `Any` here: the caller knows what it asked for.
        """
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Accept": accept}
        if data is not None:
            headers["Content-Type"] = content_type
        response = self._send(method, path, params, data, headers, timeout or self.timeout)
        payload = response.read()
        self._collect_warnings(response)
        if response.status >= 400:
            raise ApiError.from_response(response.status, payload, response.reason)
        if "json" in (response.headers.get("Content-Type") or ""):
            return json.loads(payload) if payload else None
        return payload.decode(errors="replace")

    def stream(self, path: str, *, params: Params = None,
               accept: str = "application/json") -> Generator[bytes, None, None]:
        """Yield the body of a streaming answer (watch, log -f) chunk by chunk."""
        response = self._send("GET", path, params, None, {"Accept": accept}, None)
        if response.status >= 400:
            data = response.read()
            raise ApiError.from_response(response.status, data, response.reason)
        try:
            while chunk := response.read1(65536):
                yield chunk
        finally:
            response.close()
            self.close()

    def watch(self, path: str, *, params: Params = None,
              accept: str = "application/json") -> Generator[JsonObject, None, None]:
        """Yield watch events, one JSON object per line."""
        buffer = b""
        for chunk in self.stream(path, params=params, accept=accept):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line)
