"""One NATS connection per cluster member, with the cluster's credentials.

The credentials come from files or environment variables, never from settings (which `cloudfn
info` shows) and never into logs. A worker runs what arrives on its subjects, so the NATS server
must require them in production (README, "Scaling out").
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from core.cluster.natsclient import Client
from core.config import Config
from core.errors import ConfigError, Unavailable

log = logging.getLogger("cloudfn.cluster")
TOKEN_ENV = "CLOUDFN_CLUSTER_NATS_TOKEN"
PASSWORD_ENV = "CLOUDFN_CLUSTER_NATS_PASSWORD"
CONNECT_TIMEOUT = 5.0


def _read_secret(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read it ({exc.strerror})") from None
    if not value:
        raise ConfigError(f"{what} {path} is empty")
    return value


def credentials(config: Config, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """nats.connect's keyword arguments for the configured credentials."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    token = env.get(TOKEN_ENV) or _read_secret(config["cluster.nats_token_file"], "cluster.nats_token_file")
    if token:
        out["token"] = token
    user = config["cluster.nats_user"]
    if user:
        password = env.get(PASSWORD_ENV) or _read_secret(
            config["cluster.nats_password_file"], "cluster.nats_password_file"
        )
        if not password:
            raise ConfigError(
                f"cluster.nats_user is set but no password: set {PASSWORD_ENV} or cluster.nats_password_file"
            )
        out["user"], out["password"] = user, password
    creds: Path | None = config["cluster.nats_creds_file"]
    if creds is not None:
        text = _read_secret(creds, "cluster.nats_creds_file") or ""
        if text.startswith("SU"):  # a bare nkey seed
            out["nkeys_seed"] = str(creds)
        else:
            out["user_credentials"] = str(creds)
    return out


async def connect(config: Config, name: str, no_echo: bool = False) -> Client:
    """Connected, or Unavailable naming the URL (never the credentials). `no_echo`: the server
    does not send this connection its own messages back."""
    url = config["cluster.nats_url"]
    kwargs = credentials(config)
    errors: list[str] = []

    async def error_cb(exc: Exception) -> None:  # nats-py's default prints a traceback
        detail = str(exc) or type(exc).__name__
        if not connected:  # the first connection retries on its own: reported once, below
            errors.append(detail)
            return
        log.warning("NATS: %s", detail)

    async def disconnected_cb() -> None:
        log.warning("NATS connection lost, reconnecting to %s", url)

    async def reconnected_cb() -> None:
        log.info("NATS connection back (%s)", url)

    connected = False
    try:
        # nats-py retries a refused first connection forever once reconnects are on: bounded here.
        nc = Client()
        # Seconds as floats: nats-py annotates them int but sleeps and waits on them as given.
        timing: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT, "reconnect_time_wait": 0.5}
        await asyncio.wait_for(
            nc.connect(
                servers=url.split(","),
                name=name,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                **timing,
                error_cb=error_cb,
                disconnected_cb=disconnected_cb,
                reconnected_cb=reconnected_cb,
                no_echo=no_echo,
                **kwargs,
            ),
            CONNECT_TIMEOUT,
        )
        connected = True
        return nc
    except Exception as exc:  # nats-py raises NoServersError, auth errors, OSError, timeouts
        detail = errors[-1] if errors else (str(exc) or type(exc).__name__)
        if "authorization" in detail.lower():
            detail += " (check cluster.nats_token_file / CLOUDFN_CLUSTER_NATS_TOKEN, or the user and password)"
        raise Unavailable(f"cannot reach NATS at {url}: {detail}") from None
