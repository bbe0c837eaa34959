"""A local OAuth 2.0 authorisation/token server for the connect flows, and adapters pointed at local fakes.

:class:`FakeOAuth` speaks each network's documented variant of RFC 6749 (with RFC 7636 PKCE):

  GET  /i/oauth2/authorize        X consent screen (PKCE S256 required)
  POST /2/oauth2/token            X token endpoint (HTTP Basic client auth, or ``client_id`` for public clients)
  GET  /<V>/dialog/oauth          Facebook Login dialog
  GET  /o/oauth2/v2/auth          Google consent screen (PKCE optional, checked when sent)
  POST /token                     Google token endpoint (client id + secret in the body)
  GET  /<V>/oauth/access_token    Facebook token endpoint (code → short-lived, ``fb_exchange_token`` →
                                  long-lived) — mounted on a :class:`FakeGraph` with :meth:`mount_graph`,
                                  because Facebook serves it from graph.facebook.com next to ``/me/accounts``

The consent screens behave like a person who pressed "Allow": 302 to ``redirect_uri`` with ``code``
and the unchanged ``state`` (``deny = True``: ``error=access_denied``). Token endpoints refuse a
reused code, another client, another redirect URI, or a PKCE verifier whose S256 hash is not the
challenge sent to the consent screen (400 ``invalid_grant``). Every access token issued is handed
to ``on_token(provider, token)`` so a test registers it with the API fake that checks it.

:func:`local_adapters` hands the runtime a platform registry whose transports point at local fakes
(the core builds adapters with the registry's transports), and restores the previous one afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from _servers_b import FakeServer, Request, Response, Router

from ainfluencer.platforms.facebook.adapter import GRAPH_VERSION

V = GRAPH_VERSION


@dataclass
class Grant:
    provider: str
    client_id: str
    redirect_uri: str
    challenge: str
    method: str
    scope: str
    used: bool = False


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class FakeOAuth:
    def __init__(self, *, clients: dict[str, str] | None = None,
                 on_token: Callable[[str, str], None] | None = None) -> None:
        self.clients = dict(clients or {"x-client": "", "fb-app": "fb-secret", "google-client": "google-secret"})
        self.on_token = on_token or (lambda provider, token: None)
        self.deny = False
        self.omit_refresh_token = False
        self.grants: dict[str, Grant] = {}
        self.short_tokens: set[str] = set()
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self._n = itertools.count(1)
        self.server = FakeServer(self._router())

    def __enter__(self) -> FakeOAuth:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self.server.url

    # -- consent screens ----------------------------------------------------------------------------
    def _authorize(self, req: Request, provider: str, *, pkce_required: bool) -> Response:
        q = req.query
        self.authorize_requests.append({"provider": provider, **q})
        client, redirect, state = q.get("client_id", ""), q.get("redirect_uri", ""), q.get("state", "")
        if client not in self.clients or not redirect:
            return Response(400, "unknown client or missing redirect_uri")
        if pkce_required and (not q.get("code_challenge") or q.get("code_challenge_method") != "S256"):
            return Response(400, "PKCE with S256 is required")
        sep = "&" if "?" in redirect else "?"
        if self.deny:
            query = {"error": "access_denied", "error_description": "The user denied the request.", "state": state}
            return Response(302, b"", {"Location": redirect + sep + urlencode(query)})
        code = f"{provider}-code-{next(self._n)}"
        self.grants[code] = Grant(provider, client, redirect, q.get("code_challenge", ""),
                                  q.get("code_challenge_method", ""), q.get("scope", ""))
        return Response(302, b"", {"Location": redirect + sep + urlencode({"code": code, "state": state})})

    def _redeem(self, provider: str, form: dict[str, str], client: str) -> Grant | str:
        """The grant for a code, or the reason it is refused."""
        grant = self.grants.get(form.get("code", ""))
        if grant is None or grant.provider != provider:
            return "unknown code"
        if grant.used:
            return "code already used"
        if grant.client_id != client:
            return "code issued to another client"
        if grant.redirect_uri != form.get("redirect_uri"):
            return "redirect_uri mismatch"
        if grant.challenge:
            verifier = form.get("code_verifier", "")
            if not verifier or s256(verifier) != grant.challenge:
                return "code_verifier does not match the code_challenge"
        grant.used = True
        return grant

    def _issue(self, provider: str, prefix: str) -> str:
        token = f"{prefix}-{next(self._n)}"
        self.on_token(provider, token)
        return token

    # -- routes -----------------------------------------------------------------------------------------
    def _router(self) -> Router:
        r = Router()

        @r.route("GET", "/i/oauth2/authorize")
        def x_authorize(req: Request) -> Response:
            return self._authorize(req, "x", pkce_required=True)

        @r.route("POST", "/2/oauth2/token")
        def x_token(req: Request) -> Response:
            self.token_requests.append({"provider": "x", **req.form})
            auth = req.headers.get("authorization", "")
            if auth.startswith("Basic "):
                client, _, secret = base64.b64decode(auth.split(" ", 1)[1]).decode().partition(":")
                if self.clients.get(client) != secret:
                    return Response(401, {"error": "unauthorized_client"})
            else:
                client = req.form.get("client_id", "")
                if client not in self.clients or self.clients[client]:
                    return Response(401, {"error": "unauthorized_client"})
            if req.form.get("grant_type") != "authorization_code":
                return Response(400, {"error": "unsupported_grant_type"})
            grant = self._redeem("x", req.form, client)
            if isinstance(grant, str):
                return Response(400, {"error": "invalid_grant", "error_description": grant})
            return Response(200, {"token_type": "bearer", "expires_in": 7200, "scope": grant.scope,
                                  "access_token": self._issue("x", "x-access"),
                                  "refresh_token": f"x-refresh-{next(self._n)}"})

        @r.route("GET", f"/{V}/dialog/oauth")
        def fb_dialog(req: Request) -> Response:
            return self._authorize(req, "facebook", pkce_required=False)

        @r.route("GET", "/o/oauth2/v2/auth")
        def google_authorize(req: Request) -> Response:
            return self._authorize(req, "google", pkce_required=False)

        @r.route("POST", "/token")
        def google_token(req: Request) -> Response:
            self.token_requests.append({"provider": "google", **req.form})
            client = req.form.get("client_id", "")
            if client not in self.clients or self.clients[client] != req.form.get("client_secret"):
                return Response(401, {"error": "invalid_client", "error_description": "The OAuth client was not "
                                      "found."})
            if req.form.get("grant_type") != "authorization_code":
                return Response(400, {"error": "unsupported_grant_type"})
            grant = self._redeem("google", req.form, client)
            if isinstance(grant, str):
                return Response(400, {"error": "invalid_grant", "error_description": grant})
            body: dict[str, Any] = {"access_token": self._issue("google", "ya29.access"), "expires_in": 3599,
                                    "token_type": "Bearer", "scope": grant.scope}
            if not self.omit_refresh_token:
                body["refresh_token"] = f"1//refresh-{next(self._n)}"
            return Response(200, body)

        return r

    def facebook_token(self, req: Request) -> Response:
        """``GET /<V>/oauth/access_token`` as graph.facebook.com answers it."""
        q = req.query
        self.token_requests.append({"provider": "facebook", **q})
        client = q.get("client_id", "")
        if client not in self.clients or self.clients[client] != q.get("client_secret"):
            return _graph_error(101, "Error validating application. Invalid application ID.")
        if q.get("grant_type") == "fb_exchange_token":
            if q.get("fb_exchange_token") not in self.short_tokens:
                return _graph_error(190, "Invalid OAuth access token.")
            return Response(200, {"access_token": self._issue("facebook", "fb-long"), "token_type": "bearer",
                                  "expires_in": 5183944})
        grant = self._redeem("facebook", dict(q), client)
        if isinstance(grant, str):
            return _graph_error(100, f"Invalid verification code format. ({grant})", subcode=36007)
        token = f"fb-short-{next(self._n)}"
        self.short_tokens.add(token)
        return Response(200, {"access_token": token, "token_type": "bearer", "expires_in": 5400})

    def mount_graph(self, graph: Any) -> None:
        """Serve the Facebook token endpoint from a FakeGraph (same host as /me/accounts, as in production)."""
        graph.server.handler.route("GET", f"/{V}/oauth/access_token")(self.facebook_token)


def _graph_error(code: int, message: str, *, subcode: int | None = None) -> Response:
    err: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}
    if subcode:
        err["error_subcode"] = subcode
    return Response(400, {"error": err})


# -- adapters pointed at local fakes -------------------------------------------------------------------


@contextmanager
def local_adapters(runtime: Any, **transports: dict[str, Any]) -> Iterator[None]:
    """Point the runtime's adapters for the named platforms at local fakes (its registry, not a global)."""
    previous = runtime.platforms
    for name, transport in transports.items():
        runtime.platforms = runtime.platforms.with_transport(name, **transport)
    try:
        yield
    finally:
        runtime.platforms = previous
