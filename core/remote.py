"""`RemotePlatform`: `PlatformAPI` over the REST API of a `cloudfn serve`.

Answers come back as the same models and the same `CloudfnError` classes `LocalPlatform` raises:
422/400 -> InvalidInput (with every field), 404 -> NotFound, 409 -> Conflict; a server that
cannot be reached, does not answer in time, refuses the token or speaks another API version ->
Unavailable (exit code 5), with a message that names the URL. The event stream is Server-Sent
Events, reconnecting with backoff.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from core import __version__
from core.api import PlatformAPI
from core.errors import BuildError, CloudfnError, Conflict, FieldError, InvalidInput, NotFound, QueueFull, Unavailable
from core.models import (
    Alert,
    AlertRule,
    AsyncInvocation,
    DeadLetter,
    Event,
    Function,
    FunctionTriggers,
    InvocationRecord,
    InvokeResult,
    LogRecord,
    SavedEvent,
)
from core.secrets import SecretInfo, SecretStore, name_problem, no_secret

API_VERSION = 1  # the wire format this client speaks; the server reports its own in /health
SERVICE = "cloudfn"
INVOKE_TIMEOUT = 960.0  # a function may run 900 s, plus time waiting for a slot
BUILD_TIMEOUT = 3660.0  # a create or update installs dependencies first (runtime.deps_timeout, at most 3600 s)
BACKOFF = (0.5, 30.0)  # first and largest pause between event-stream reconnects


class Unauthorized(Unavailable):
    """The server refused the token (401)."""


class Unreachable(Unavailable):
    """No answer: connection refused or reset, a timeout. The event stream retries these."""


class RemotePlatform(PlatformAPI):
    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        uds: Any = None,
    ):
        """`uds`: reach the server on this unix socket (a data directory owner's, see
        core/server/owner.py) rather than over TCP; a `ShortPath` or a path."""
        if not url.startswith(("http://", "https://")):
            url = "http://" + url
        self.url = url.rstrip("/")
        self._uds = uds  # kept alive: a ShortPath holds the folder handle its path goes through
        if uds is not None:
            self.url = f"unix:{getattr(uds, 'path', uds)}"
            url = "http://localhost"
            transport = transport or httpx.AsyncHTTPTransport(uds=getattr(uds, "text", str(uds)))
        self.base_url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        headers = {"user-agent": f"cloudfn/{__version__}", "accept": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._headers = headers
        self._transport = transport
        self._client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)
        self._checked: dict[str, Any] | None = None
        self._check_lock: asyncio.Lock | None = None
        self.stream_state = "connecting"  # then "live" or "lost"
        self.on_stream_state: Callable[[str], None] | None = None

    def __repr__(self) -> str:
        return f"RemotePlatform({self.url!r})"

    # -- plumbing --------------------------------------------------------------------------------
    async def _ensure_compatible(self) -> None:
        if self._checked is not None:
            return
        if self._check_lock is None:
            self._check_lock = asyncio.Lock()
        async with self._check_lock:
            if self._checked is not None:
                return
            resp = await self._send("GET", "/api/v1/health")
            try:
                body = resp.json()
            except ValueError:
                body = None
            if resp.status_code != 200 or not isinstance(body, dict) or body.get("service") != SERVICE:
                raise Unavailable(
                    f"{self.url} is not a cloudfn server (GET /api/v1/health answered "
                    f"{resp.status_code} {_snippet(resp)})"
                )
            api = body.get("api")
            if api != API_VERSION:
                raise Unavailable(
                    f"the cloudfn server at {self.url} speaks API version {api} (cloudfn {body.get('version')}); "
                    f"this cloudfn {__version__} speaks version {API_VERSION}. Use matching versions."
                )
            self._checked = body

    async def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        if self._client.is_closed:  # httpx would raise a RuntimeError
            raise Unavailable(f"this connection to {self.url} is closed; open a new one")
        try:
            return await self._client.request(method, path, **kw)
        except httpx.ConnectError as exc:
            raise Unreachable(
                f"cannot reach the cloudfn server at {self.url}: {_reason(exc)}. Is `cloudfn serve` running there?"
            ) from None
        except httpx.TimeoutException:
            t = kw.get("timeout", self.timeout)
            raise Unreachable(
                f"the cloudfn server at {self.url} did not answer {method} {path} within {t:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise Unreachable(f"talking to the cloudfn server at {self.url} failed: {_reason(exc)}") from None

    async def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201), **kw: Any) -> Any:
        await self._ensure_compatible()
        resp = await self._send(method, path, **kw)
        if resp.status_code in ok:
            try:
                return resp.json()
            except ValueError:
                raise Unavailable(
                    f"the cloudfn server at {self.url} answered {method} {path} with something "
                    f"that is not JSON: {_snippet(resp)}"
                ) from None
        raise self._error(resp, method, path)

    def _error(self, resp: httpx.Response, method: str, path: str) -> CloudfnError:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        message = body.get("error") or f"{resp.status_code} {resp.reason_phrase}: {_snippet(resp)}"
        status = resp.status_code
        if status == 422 and body.get("type") == "BuildError":
            return BuildError(message, str(body.get("log") or ""))
        if status in (400, 422):
            errors = [
                FieldError(str(e.get("field", "body")), str(e.get("message", "")))
                for e in body.get("errors") or []
                if isinstance(e, dict)
            ]
            return InvalidInput(str(body.get("what") or "request"), errors or [FieldError("body", message)])
        if status == 404:
            if body.get("type") == "NotFound" and "no route" in str(message):
                return Unavailable(
                    f"the cloudfn server at {self.url} has no route {method} {path}: is it an older version?"
                )
            return NotFound(message)
        if status == 409:
            return Conflict(message)
        if status == 429 and body.get("type") == "QueueFull":
            return QueueFull(message)
        if status == 401:
            hint = "pass --token or set CLOUDFN_TOKEN" if not self.token else "the token given is not this server's"
            return Unauthorized(f"the cloudfn server at {self.url} refused the request (401 unauthorized): {hint}")
        if status == 413:
            return InvalidInput("request", [FieldError("body", message)])
        if status == 501:
            return Unavailable(f"the cloudfn server at {self.url} cannot do this: {message}")
        if status == 503:
            return Unavailable(f"the cloudfn server at {self.url} is unavailable: {message}")
        return Unavailable(f"the cloudfn server at {self.url} failed on {method} {path} ({status}): {message}")

    # -- functions -------------------------------------------------------------------------------
    async def list_functions(self) -> list[Function]:
        body = await self._call("GET", "/api/v1/functions")
        return [Function.model_validate(f) for f in body["functions"]]

    async def get_function(self, ref: str) -> Function:
        body = await self._call("GET", f"/api/v1/functions/{_seg(ref)}")
        return Function.model_validate(body["function"])

    async def create_function(self, data: dict[str, Any]) -> Function:
        body = await self._call("POST", "/api/v1/functions", json=_jsonable(data), timeout=BUILD_TIMEOUT)
        return Function.model_validate(body["function"])

    async def update_function(self, ref: str, data: dict[str, Any]) -> Function:
        body = await self._call("PUT", f"/api/v1/functions/{_seg(ref)}", json=_jsonable(data), timeout=BUILD_TIMEOUT)
        return Function.model_validate(body["function"])

    async def delete_function(self, ref: str) -> Function:
        body = await self._call("DELETE", f"/api/v1/functions/{_seg(ref)}")
        return Function.model_validate(body["function"])

    async def function_versions(self, ref: str) -> list[Function]:
        body = await self._call("GET", f"/api/v1/functions/{_seg(ref)}/versions")
        return [Function.model_validate(f) for f in body["versions"]]

    async def rollback_function(self, ref: str, version: int) -> Function:
        body = await self._call(
            "POST", f"/api/v1/functions/{_seg(ref)}/rollback", json={"version": version}, timeout=BUILD_TIMEOUT
        )
        return Function.model_validate(body["function"])

    # -- triggers (issue 16) ---------------------------------------------------------------------
    async def function_triggers(self, ref: str) -> FunctionTriggers:
        body = await self._call("GET", f"/api/v1/functions/{_seg(ref)}/triggers")
        return FunctionTriggers.model_validate(body["triggers"])

    # -- dependencies ----------------------------------------------------------------------------
    async def function_dependencies(self, ref: str, rebuild: bool = False) -> dict[str, Any]:
        body: dict[str, Any]
        if rebuild:
            body = await self._call(
                "POST", f"/api/v1/functions/{_seg(ref)}/dependencies/rebuild", json={}, timeout=BUILD_TIMEOUT
            )
        else:
            body = await self._call("GET", f"/api/v1/functions/{_seg(ref)}/dependencies")
        return body

    # -- invocations -----------------------------------------------------------------------------
    async def invoke(self, ref: str, event: Any = None, context: dict[str, str] | None = None) -> InvokeResult:
        try:
            content = _invoke_body(event, context)
        except (TypeError, ValueError) as exc:
            from core.models import ErrorType

            return InvokeResult.failure(ErrorType.INVALID_EVENT, f"the event is not JSON: {exc}")
        body = await self._call(
            "POST",
            f"/api/v1/functions/{_seg(ref)}/invoke",
            ok=(200, 429),
            content=content,
            headers={"content-type": "application/json"},
            timeout=INVOKE_TIMEOUT,
        )
        return InvokeResult.model_validate(body)

    async def list_invocations(
        self,
        function: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        trigger: str | None = None,
    ) -> list[InvocationRecord]:
        params = _params(
            function=function, status=status, since=since, until=until, limit=limit, offset=offset, trigger=trigger
        )
        body = await self._call("GET", "/api/v1/invocations", params=params)
        return [InvocationRecord.model_validate(r) for r in body["invocations"]]

    async def get_invocation(self, invocation_id: str) -> InvocationRecord:
        body = await self._call("GET", f"/api/v1/invocations/{_seg(invocation_id)}")
        if body.get("invocation") is None:  # an asynchronous one that has not run yet: no record
            raise NotFound(f"invocation {invocation_id!r} has no history record yet (it is {body.get('status')})")
        return InvocationRecord.model_validate(body["invocation"])

    # -- asynchronous invocation (issue 16) ------------------------------------------------------
    async def invoke_async(self, ref: str, event: Any = None, context: dict[str, str] | None = None) -> AsyncInvocation:
        try:
            content = _invoke_body(event, context)
        except (TypeError, ValueError) as exc:
            raise InvalidInput("asynchronous invocation", [FieldError("event", f"is not JSON: {exc}")]) from None
        body = await self._call(
            "POST",
            f"/api/v1/functions/{_seg(ref)}/invoke",
            ok=(202,),
            content=content,
            headers={"content-type": "application/json", "x-cloudfn-invocation-type": "Event"},
        )
        return AsyncInvocation.model_validate(body)

    async def invocation_status(self, invocation_id: str, wait: float = 0) -> AsyncInvocation:
        body = await self._call(
            "GET",
            f"/api/v1/invocations/{_seg(invocation_id)}",
            params=_params(wait=wait or None),
            timeout=self.timeout + (wait or 0),
        )
        if "status" not in body:  # a server from before asynchronous invocation
            record = InvocationRecord.model_validate(body["invocation"])
            return AsyncInvocation(
                invocation_id=record.id,
                function_id=record.function_id,
                function_name=record.function_name,
                status=record.status,
                asynchronous=False,
                attempts=1,
                record=record,
            )
        return AsyncInvocation.model_validate({**body, "record": body.get("invocation")})

    async def list_dead_letters(self, function: str | None = None, limit: int = 100) -> list[DeadLetter]:
        body = await self._call("GET", "/api/v1/dead-letters", params=_params(function=function, limit=limit))
        return [DeadLetter.model_validate(d) for d in body["dead_letters"]]

    async def replay_dead_letter(self, dead_letter_id: str) -> AsyncInvocation:
        body = await self._call("POST", f"/api/v1/dead-letters/{_seg(dead_letter_id)}/replay", ok=(202,))
        return AsyncInvocation.model_validate(body)

    async def delete_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        body = await self._call("DELETE", f"/api/v1/dead-letters/{_seg(dead_letter_id)}")
        return DeadLetter.model_validate(body["dead_letter"])

    # -- saved test events -----------------------------------------------------------------------
    async def list_saved_events(self, ref: str) -> list[SavedEvent]:
        body = await self._call("GET", f"/api/v1/functions/{_seg(ref)}/saved-events")
        return [SavedEvent.model_validate(e) for e in body["saved_events"]]

    async def save_event(
        self, ref: str, name: str, event: Any, last_result: dict[str, Any] | None = None
    ) -> SavedEvent:
        body = await self._call(
            "PUT",
            f"/api/v1/functions/{_seg(ref)}/saved-events/{_seg(name)}",
            json=_jsonable({"event": event, "last_result": last_result}),
        )
        return SavedEvent.model_validate(body["saved_event"])

    async def delete_saved_event(self, ref: str, name: str) -> None:
        await self._call("DELETE", f"/api/v1/functions/{_seg(ref)}/saved-events/{_seg(name)}")

    # -- metrics and logs ------------------------------------------------------------------------
    async def metrics(self, function: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = await self._call("GET", "/api/v1/metrics", params=_params(function=function))
        return body

    async def prometheus_metrics(self) -> str:
        await self._ensure_compatible()
        resp = await self._send("GET", "/metrics", headers={"accept": "text/plain"})
        if resp.status_code != 200:
            raise self._error(resp, "GET", "/metrics")
        return resp.text

    async def query_logs(
        self,
        level: str | None = None,
        function: str | None = None,
        invocation_id: str | None = None,
        text: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 200,
    ) -> list[LogRecord]:
        params = _params(
            level=level,
            function=function,
            invocation_id=invocation_id,
            text=text,
            since=since,
            until=until,
            limit=limit,
        )
        body = await self._call("GET", "/api/v1/logs", params=params)
        return [LogRecord.model_validate(r) for r in body["logs"]]

    # -- alerts ----------------------------------------------------------------------------------
    async def list_alert_rules(self) -> list[AlertRule]:
        body = await self._call("GET", "/api/v1/alerts/rules")
        return [AlertRule.model_validate(r) for r in body["rules"]]

    async def create_alert_rule(self, data: dict[str, Any]) -> AlertRule:
        body = await self._call("POST", "/api/v1/alerts/rules", json=_jsonable(data))
        return AlertRule.model_validate(body["rule"])

    async def update_alert_rule(self, ref: str, data: dict[str, Any]) -> AlertRule:
        body = await self._call("PUT", f"/api/v1/alerts/rules/{_seg(ref)}", json=_jsonable(data))
        return AlertRule.model_validate(body["rule"])

    async def delete_alert_rule(self, ref: str) -> AlertRule:
        body = await self._call("DELETE", f"/api/v1/alerts/rules/{_seg(ref)}")
        return AlertRule.model_validate(body["rule"])

    async def alerts(self) -> list[Alert]:
        body = await self._call("GET", "/api/v1/alerts")
        return [Alert.model_validate(a) for a in body["alerts"]]

    async def alert_history(self, limit: int = 100) -> list[Alert]:
        body = await self._call("GET", "/api/v1/alerts/history", params={"limit": limit})
        return [Alert.model_validate(a) for a in body["alerts"]]

    # -- secrets ---------------------------------------------------------------------------------
    async def set_secret(self, name: str, value: str) -> SecretInfo:
        SecretStore.validate(name, value)  # as the local platform: a bad name never reaches a URL
        body = await self._call("PUT", f"/api/v1/secrets/{_seg(name)}", json={"value": value})
        return SecretInfo.model_validate(body["secret"])

    async def list_secrets(self) -> list[SecretInfo]:
        body = await self._call("GET", "/api/v1/secrets")
        return [SecretInfo.model_validate(s) for s in body["secrets"]]

    async def delete_secret(self, name: str, force: bool = False) -> SecretInfo:
        if name_problem(name):
            raise no_secret(name)
        body = await self._call(
            "DELETE", f"/api/v1/secrets/{_seg(name)}", params={"force": "true" if force else "false"}
        )
        return SecretInfo.model_validate(body["secret"])

    async def rotate_secrets_key(self) -> dict[str, Any]:
        body = await self._call("POST", "/api/v1/secrets/key/rotate")
        return {"rotated": body["rotated"], "key_source": body["key_source"]}

    # -- live ------------------------------------------------------------------------------------
    async def events(self, kinds: set[str] | None = None) -> AsyncIterator[Event]:
        """The server's event stream. A dropped connection is retried with exponential backoff
        (with jitter) and the stream goes on; a refused token or a gone route ends it with the
        error. Events published while disconnected are lost, as for a slow local reader."""
        params = {"kinds": ",".join(sorted(kinds))} if kinds else {}
        pause = BACKOFF[0]
        last_id: str | None = None
        # No read timeout: the server sends a heartbeat comment every few seconds, and a dead
        # peer shows as a closed connection.
        timeout = httpx.Timeout(self.timeout, read=None)
        # A transport of its own: closing this stream's client closes its transport.
        transport = self._transport
        if self._uds is not None:
            transport = httpx.AsyncHTTPTransport(uds=getattr(self._uds, "text", str(self._uds)))
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=self._headers, timeout=timeout, transport=transport
        ) as client:
            while True:
                headers = {"accept": "text/event-stream"}
                if last_id is not None:
                    headers["last-event-id"] = last_id
                try:
                    await self._ensure_compatible()
                    async with client.stream("GET", "/api/v1/events", params=params, headers=headers) as resp:
                        if resp.status_code == 503:  # shutting down: a restarted server may come back
                            await resp.aread()
                        elif resp.status_code != 200:
                            await resp.aread()
                            raise self._error(resp, "GET", "/api/v1/events")
                        else:
                            self._stream_state("live")
                            async for ev_id, kind, data in _sse_events(resp):
                                pause = BACKOFF[0]  # a live stream resets the backoff
                                if kind is None:
                                    continue
                                if ev_id is not None:
                                    last_id = ev_id
                                if kind == "shutdown":
                                    break
                                yield Event.model_validate_json(data)
                except (Unreachable, httpx.TransportError, httpx.StreamError):
                    self._checked = None  # the server may come back as another version
                self._stream_state("lost")
                await asyncio.sleep(pause * (0.5 + random.random() / 2))
                pause = min(pause * 2, BACKOFF[1])

    def _stream_state(self, state: str) -> None:
        """Tell a watcher (the console's header) whether the event stream is live or lost:
        the stream itself reconnects silently."""
        if state != self.stream_state:
            self.stream_state = state
            if self.on_stream_state is not None:
                self.on_stream_state(state)

    # -- about -----------------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        self._checked = None
        await self._ensure_compatible()
        return dict(self._checked or {})

    async def info(self) -> dict[str, Any]:
        info: dict[str, Any] = await self._call("GET", "/api/v1/info")
        info["mode"] = "remote"
        info["server"] = self.url
        info["server_mode"] = info.get("mode")
        return info

    async def start(self) -> None:
        """Nothing to start: the connection opens with the first call, and the server runs its
        own background work."""

    async def close(self) -> None:
        await self._client.aclose()
        close = getattr(self._uds, "close", None)
        if close is not None:
            close()


async def _sse_events(resp: httpx.Response) -> AsyncIterator[tuple[str | None, str | None, str]]:
    """(id, event, data) per dispatched event; (None, None, "") for a comment (heartbeat)."""
    ev_id: str | None = None
    kind: str | None = None
    data: list[str] = []
    async for line in resp.aiter_lines():
        if line == "":
            if data or kind:
                yield ev_id, kind or "message", "\n".join(data)
            ev_id, kind, data = None, None, []
            continue
        if line.startswith(":"):
            yield None, None, ""
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            kind = value
        elif name == "id":
            ev_id = value


def _seg(value: str) -> str:
    from urllib.parse import quote

    return quote(str(value), safe="")


def _params(**kw: Any) -> dict[str, Any]:
    """Query parameters as the server's document has them: times in RFC 3339 with an offset (a
    naive time is this machine's local time, as LocalPlatform reads it), log levels lowercase."""
    out = {}
    for k, v in kw.items():
        if v is None:
            continue
        if isinstance(v, datetime):
            v = (v if v.tzinfo is not None else v.astimezone()).isoformat()
        elif k == "level" and isinstance(v, str):
            v = v.lower()
        out[k] = v
    return out


def _jsonable(data: Any) -> Any:
    """Models and datetimes a caller passes (e.g. a FunctionSpec dump) as plain JSON."""
    if hasattr(data, "model_dump"):
        return data.model_dump(mode="json", by_alias=True)
    return json.loads(json.dumps(data, default=_default))


def _default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json", by_alias=True)
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"{type(o).__name__} is not JSON")


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "Errno 111" in text or "All connection attempts failed" in text:
        return "connection refused"
    return text


def _snippet(resp: httpx.Response) -> str:
    text = resp.text.strip().replace("\n", " ")
    return text[:200] + ("..." if len(text) > 200 else "")


# -- choosing a remote (the command line's --remote/--token, CLOUDFN_REMOTE/CLOUDFN_TOKEN,
#    the config file's named remotes, and attaching to a `cloudfn serve` holding the data dir) --
TOKEN_ENV = "CLOUDFN_TOKEN"


def remote_from_config(
    config: Any, remote: str | None = None, token: str | None = None, environ: Mapping[str, str] | None = None
) -> RemotePlatform | None:
    """The RemotePlatform the user asked for, or None for a local platform. `remote` (the
    --remote flag) wins over CLOUDFN_REMOTE and the config file's client.remote; it is a URL or a
    name from the config file's `remotes`. The token: --token, else CLOUDFN_TOKEN, else the named
    remote's token or token_file."""
    import os

    from core.errors import ConfigError

    env: Mapping[str, str] = os.environ if environ is None else environ
    target = remote or config["client.remote"]
    if not target:
        return None
    named = config.remotes.get(target)
    if named is not None:
        url = named.url
    elif target.startswith(("http://", "https://")) or ":" in target:
        url = target
    else:
        known = ", ".join(sorted(config.remotes)) or "none defined"
        raise ConfigError(
            f"remote {target!r} is neither a URL nor a name from the config file's remotes "
            f"(known: {known}; config file {config.file})"
        )
    token = token or env.get(TOKEN_ENV) or (named.resolve_token() if named else None)
    return RemotePlatform(url, token)


def attach_to_owner(
    data_dir: Any, token: str | None = None, environ: Mapping[str, str] | None = None
) -> RemotePlatform | None:
    """A RemotePlatform for the `cloudfn serve` that holds `data_dir`, if one does and wrote its
    URL into the lock file; its token is read from the data directory unless given."""
    import os
    from pathlib import Path

    from core.storage import DataDirLock

    env: Mapping[str, str] = os.environ if environ is None else environ
    holder = DataDirLock(Path(data_dir)).holder()
    if not holder or not holder.get("url"):
        return None
    if token is None and holder.get("auth", True):
        if holder.get("token_file"):  # the server uses the data directory's token
            try:
                token = Path(holder["token_file"]).read_text().strip() or None
            except OSError:
                token = None
        else:  # it was given one (--token, CLOUDFN_TOKEN): so must we be
            token = env.get(TOKEN_ENV)
    return RemotePlatform(str(holder["url"]), token)


def attach_to_socket(data_dir: Any) -> RemotePlatform | None:
    """A RemotePlatform on the private socket of the process that owns `data_dir`, or None when
    no owner answers there (none ever ran, or it crashed and left its socket: the next owner
    replaces it). A symlink or another user's socket there raises Unavailable."""
    from pathlib import Path

    from core.server.owner import ShortPath, probe, socket_path

    path = socket_path(Path(data_dir))
    if probe(path) != "live":
        return None
    return RemotePlatform("http://localhost", uds=ShortPath(path))


def _invoke_body(event: Any, context: dict[str, str] | None) -> bytes:
    """The invoke route's body; TypeError or ValueError when the event is not JSON."""
    payload: dict[str, Any] = {"event": event}
    if context is not None:
        payload["context"] = context
    return json.dumps(payload, allow_nan=False).encode()
