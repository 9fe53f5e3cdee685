"""How the API server reaches node agents: the kubelet client, the agent's URL, its errors.

The agent is trusted when its certificate is signed by minik's CA; its
host name is not checked, because an in-process agent reuses the API
server's certificate, whose names need not include the node's address.
An agent that does not answer within `upgrade.DIAL_TIMEOUT` is answered
503 like one that cannot be reached; a token it refuses is a 500 (the
API server's own misconfiguration, not the client's).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from minik.api import errors
from minik.httpstream import upgrade


class KubeletClient:
    """How the API server reaches agents: the CA it trusts them by, the token it shows."""

    def __init__(self, *, ssl_context: ssl.SSLContext, token: str) -> None:
        self._ssl = ssl_context
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def trusting(cls, ca_file: Path, *, token: str) -> KubeletClient:
        context = ssl.create_default_context(cafile=str(ca_file))
        context.check_hostname = False
        return cls(ssl_context=context, token=token)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
            self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        return self._session

    async def get(self, url: URL) -> aiohttp.ClientResponse:
        async with upgrade.answer_deadline():
            return await self.session.get(url, headers=self._headers, ssl=self._ssl)

    async def websocket(self, url: URL, protocol: str | None) -> aiohttp.ClientWebSocketResponse:
        async with upgrade.answer_deadline():
            return await self.session.ws_connect(url, headers=self._headers, ssl=self._ssl,
                                                 protocols=(protocol,) if protocol else (),
                                                 max_msg_size=0)

    async def upgrade(self, url: URL, *, method: str, versions: list[str]
                      ) -> tuple[dict[str, str], upgrade.Upgraded] | upgrade.Refusal:
        headers = [*self._headers.items(), *((upgrade.PROTOCOL_VERSION, v) for v in versions)]
        return await upgrade.dial(url, method=method, headers=headers, ssl_context=self._ssl)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


KUBELET_KEY = web.AppKey("kubelet", KubeletClient)


def install(app: web.Application, *, ca_file: Path, token: str) -> None:
    """Give the API server application a kubelet client, closed with the application."""
    app[KUBELET_KEY] = KubeletClient.trusting(ca_file, token=token)

    async def close(app: web.Application) -> None:
        await app[KUBELET_KEY].close()

    app.on_cleanup.append(close)




def kubelet_base(node: dict[str, Any]) -> URL:
    """https://InternalIP:port of a Node's agent, from its status."""
    status = node.get("status") or {}
    name = node["metadata"]["name"]
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    host = addresses.get("InternalIP") or addresses.get("Hostname")
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not host or not port:
        raise errors.ApiError(503, "ServiceUnavailable",
                              f'node "{name}" does not report the address of its agent')
    return URL.build(scheme="https", host=host, port=int(port))


def kubelet_of(request: web.Request) -> KubeletClient:
    client = request.app.get(KUBELET_KEY)
    if client is None:
        raise errors.ApiError(503, "ServiceUnavailable",
                              "this API server has no client for node agents")
    return client


def unreachable(url: URL, e: BaseException) -> errors.ApiError:
    return errors.ApiError(503, "ServiceUnavailable",
                           f"error dialing backend: the node agent at {url.host}:{url.port} "
                           f"is not reachable: {e}")


def check_token_accepted(status: int, url: URL) -> None:
    if status == 401:
        raise errors.internal(f"the node agent at {url.host}:{url.port} refused the API "
                              "server's token")
