"""A small Stripe-compatible front for the tests, over in-process localstripe instances.

localstripe ignores ``Stripe-Account``, does not honour idempotency keys and has no Connect
OAuth. This front adds exactly those, and nothing else:

- one localstripe per connected account, routed by the ``Stripe-Account`` header (a copy of
  the localstripe modules is imported per account, so each has its own store; disk
  persistence is patched off); an account the front never connected gets a 403;
- Stripe's idempotency: the first response per (account, Idempotency-Key) is replayed, and
  the same key with other parameters is a 400 ``idempotency_error``;
- ``POST /oauth/token`` (authorization code → ``stripe_user_id``) and ``/oauth/deauthorize``.

Everything runs on 127.0.0.1 in one background event loop.
"""

import asyncio
import hashlib
import hmac
import importlib
import json
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import httpx
from aiohttp import ClientSession, web

PLATFORM = "platform"


def _fresh_localstripe() -> ModuleType:
    """Import a private copy of localstripe: its own store, webhooks and aiohttp app."""
    for name in [n for n in sys.modules if n == "localstripe" or n.startswith("localstripe.")]:
        del sys.modules[name]
    resources = importlib.import_module("localstripe.resources")
    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    resources.Store.try_load_from_disk = lambda self: None  # type: ignore[method-assign]
    return importlib.import_module("localstripe.server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Account:
    id: str
    url: str
    runner: web.AppRunner


@dataclass
class Logged:
    account: str
    method: str
    path: str
    idempotency_key: str | None
    replayed: bool
    status: int


@dataclass
class StripeFront:
    platform_key: str
    client_id: str
    url: str = ""
    accounts: dict[str, Account] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)
    deauthorized: list[str] = field(default_factory=list)
    log: list[Logged] = field(default_factory=list)
    _replays: dict[tuple[str, str], tuple[str, int, bytes]] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _lock: asyncio.Lock | None = None

    # Life cycle (called from the test thread) --------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self._start_front())

    def stop(self) -> None:
        assert self._loop is not None
        self._call(self._stop_all())
        self._loop.call_soon_threadsafe(self._loop.stop)

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def approve(self, account_id: str | None = None) -> str:
        """The provider clicks "Connect" on Stripe: a one-time code for a (new) account."""
        account_id = account_id or f"acct_{secrets.token_hex(8)}"
        self._call(self._account(account_id))
        code = f"ac_{secrets.token_hex(12)}"
        self.codes[code] = account_id
        return code

    def api(self, account: str) -> httpx.Client:
        """Talk to one account's localstripe directly (what the test sees as Stripe's state)."""
        return httpx.Client(
            base_url=self.accounts[account].url,
            headers={"Authorization": f"Bearer {self.platform_key}"},
        )

    def listing(self, account: str, path: str, **params: Any) -> list[dict[str, Any]]:
        with self.api(account) as api:
            response = api.get(path, params={"limit": 100, **params})
            response.raise_for_status()
            data: list[dict[str, Any]] = response.json()["data"]
            return data

    def events(self, account: str, type: str | None = None) -> list[dict[str, Any]]:
        """The account's events as Stripe delivers Connect events: with ``account`` set."""
        params = {"type": type} if type else {}
        return [{**e, "account": account} for e in self.listing(account, "/v1/events", **params)]

    # The servers ---------------------------------------------------------------------------

    async def _start_front(self) -> None:
        self._lock = asyncio.Lock()
        app = web.Application()
        app.router.add_post("/oauth/token", self._token)
        app.router.add_post("/oauth/deauthorize", self._deauthorize)
        app.router.add_route("*", "/{tail:.*}", self._proxy)
        runner = web.AppRunner(app)
        await runner.setup()
        port = _free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        self._front_runner = runner
        await self._account(PLATFORM)

    async def _stop_all(self) -> None:
        for account in self.accounts.values():
            await account.runner.cleanup()
        await self._front_runner.cleanup()

    async def _account(self, account_id: str) -> Account:
        if account_id not in self.accounts:
            server = _fresh_localstripe()
            runner = web.AppRunner(server.app)
            await runner.setup()
            port = _free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            self.accounts[account_id] = Account(account_id, f"http://127.0.0.1:{port}", runner)
        return self.accounts[account_id]

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.platform_key}"

    @staticmethod
    def _error(status: int, type_: str, message: str, **extra: str) -> web.Response:
        body = {"error": {"type": type_, "message": message, **extra}}
        return web.json_response(body, status=status)

    async def _token(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "invalid_client", "platform key required")
        form = await request.post()
        account = self.codes.pop(str(form.get("code", "")), None)
        if form.get("grant_type") != "authorization_code" or account is None:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "code unknown or used"},
                status=400,
            )
        return web.json_response(
            {
                "access_token": f"sk_test_{secrets.token_hex(8)}",
                "livemode": False,
                "refresh_token": f"rt_{secrets.token_hex(8)}",
                "scope": "read_write",
                "stripe_publishable_key": f"pk_test_{secrets.token_hex(8)}",
                "stripe_user_id": account,
                "token_type": "bearer",
            }
        )

    async def _deauthorize(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "invalid_client", "platform key required")
        form = await request.post()
        if form.get("client_id") != self.client_id:
            return web.json_response({"error": "invalid_client"}, status=400)
        account = str(form.get("stripe_user_id", ""))
        self.deauthorized.append(account)
        return web.json_response({"stripe_user_id": account})

    async def _proxy(self, request: web.Request) -> web.Response:
        account_id = request.headers.get("Stripe-Account", PLATFORM)
        if account_id not in self.accounts:
            return self._error(403, "invalid_request_error", f"no access to account '{account_id}'")
        body = await request.read()
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        assert self._lock is not None
        async with self._lock:  # one request at a time: replays are exact under concurrency
            fingerprint = hashlib.sha256(request.path_qs.encode() + b"\0" + body).hexdigest()
            if key is not None and (account_id, key) in self._replays:
                seen, status, payload = self._replays[(account_id, key)]
                replayed = True
                if seen != fingerprint:
                    return self._error(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters",
                    )
            else:
                replayed = False
                status, payload = await self._forward(account_id, request, body)
                if key is not None:
                    self._replays[(account_id, key)] = (fingerprint, status, payload)
            self.log.append(Logged(account_id, request.method, request.path, key, replayed, status))
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return web.Response(
            body=payload, status=status, content_type="application/json", headers=headers
        )

    async def _forward(
        self, account_id: str, request: web.Request, body: bytes
    ) -> tuple[int, bytes]:
        target = self.accounts[account_id].url + request.path_qs
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("authorization", "content-type")
        }
        async with (
            ClientSession() as session,
            session.request(request.method, target, data=body, headers=headers) as response,
        ):
            return response.status, await response.read()


def sign(payload: bytes, secret: str, *, at: int | None = None) -> str:
    """A ``Stripe-Signature`` header, computed as Stripe does."""
    timestamp = at if at is not None else int(time.time())
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def event_body(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()
