"""The `sim` provider: the Lumenfall client talking to the built-in simulator, in-process or over HTTP."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

import httpx

from runner.errors import ConnectError, EndpointError, RejectedError, UsageError
from runner.providers.base import SIMULATOR_HEADER
from runner.providers.capabilities import ProviderCaps
from runner.providers.lumenfall import LumenfallProvider
from runner.providers.transport import make_client, resolve_base_url, transport_error

IN_PROCESS_URL = "http://sim.local/v1"
KEY_ENV = "SIM_API_KEY"
"""The environment variable whose key a run sends to a served simulator (`gridrun sim serve --api-key` requires one);
the built-in one needs none, and none is sent to it."""


class SimProvider(LumenfallProvider):
    """Lumenfall's API served by `runner.sim`: one simulated world per provider instance, no key needed.

    Without `base_url` every client runs the same in-process app through `httpx.ASGITransport`;
    with one (a `gridrun sim serve` URL) the clients talk HTTP to it and `sim_config` is not used.
    Over HTTP no create is sent until the server has shown itself a gridrun simulator (`verified`): a run labelled
    free must not pay whatever answers at that address (a provider's API, a gateway or proxy on this machine).
    An in-process world given a `world` file is kept in it: a later process (a resumed run, `cancel`) finds
    its videos again. One process at a time may use the file; gridrun's state lock sees to that.
    """

    def __init__(
        self,
        caps: ProviderCaps,
        *,
        base_url: str | None = None,
        sim_config: Any = None,
        name: str = "sim",
        world: Path | None = None,
    ) -> None:
        self.name = name
        self.caps = caps
        self.remote = base_url is not None
        self.base_url = resolve_base_url(base_url, None, "") if base_url is not None else IN_PROCESS_URL
        self.config: Any = None if self.remote else _config(sim_config)
        if self.config is not None and not self.config.honour_idempotency:
            # The in-process world is known: a simulator told to ignore keys must be treated as one that does
            # (a create whose answer was lost is then found in the request log, or left unknown; never re-sent).
            self.caps = dataclasses.replace(caps, honours_idempotency_keys=False)
        if self.config is not None:
            self.caps = _with_window(self.caps, self.config.idempotency_window)
        self._app: Any = None
        self.world = None if self.remote else world
        self.verified = not self.remote  # the in-process app is gridrun's simulator
        self.base_url_from: str | None = None  # where the base URL is set (`base_url:` at m.yaml:5:1), for errors
        if self.config is not None:  # the knobs are here: nothing to ask
            self._sim_asked = True
            self.sim_render_seconds = float(self.config.render_time) * float(self.config.time_scale)

    @property
    def app(self) -> Any:
        """The simulator app every in-process client of this provider shares, made on first use (the first
        `client()`: under the state lock, so the world file is read only by the process that will write it).

        :raises UsageError: the world file cannot be read.
        """
        if self._app is None:
            from runner.sim import create_app
            from runner.sim.world import World, WorldError

            try:
                world = World.open(self.world) if self.world is not None else None
                # the run's own capability data: a model or a price of its capabilities files is simulated as planned
                self._app = create_app(self.config, world=world, caps=self.caps)  # replays the world
            except WorldError as exc:
                raise UsageError(f"sim: {exc}") from None
        return self._app

    def close(self) -> None:
        """Close the in-process world's file (a later request opens it again): the provider's app holds it in
        reference cycles, which would keep it open after the run, in the host's process, until a collection."""
        if self._app is not None and self._app.state.sim.world is not None:
            self._app.state.sim.world.close()

    async def prepare(self, client: httpx.AsyncClient) -> None:
        """Over HTTP, ask the simulator whether it honours idempotency keys (`gridrun sim serve
        --no-idempotency` does not), and for how long (`--idempotency-window`), and how long it renders: one that does not is treated so,
        as the in-process one is (a create whose answer was lost is never sent again with its key, which would
        pay again there), and a key older than its window is not sent again either. A simulator that does not
        say is taken at its capability data's word."""
        if not self.remote:
            return
        if await self._verify(client) is False:  # unanswered: each create asks again before it is sent
            raise EndpointError(self._not_simulator("no create was sent, nor the key"), base_url=self.base_url)
        knobs = await self.simulator_knobs(client)  # its render time too (`sim_render_seconds`)
        honours, window = knobs.get("honour_idempotency"), knobs.get("idempotency_window")
        if honours is False:
            self.caps = dataclasses.replace(self.caps, honours_idempotency_keys=False)
        if isinstance(window, (int, float)) and not isinstance(window, bool) and window > 0:
            self.caps = _with_window(self.caps, float(window))

    async def submit(self, client: httpx.AsyncClient, body: dict[str, Any]) -> Any:
        """The create, sent only to a server that has shown itself a gridrun simulator: one that did not answer when
        the run began is asked again first (unanswered again: the create is not sent; answered without the header:
        refused, NOT_A_SIMULATOR, which stops the run)."""
        if not self.verified:
            found = await self._verify(client)
            if isinstance(found, httpx.HTTPError):
                raise self._unanswered(found) from found
            if not found:
                raise RejectedError(self._not_simulator("the create was not sent"), code="NOT_A_SIMULATOR")
        return await super().submit(client, body)

    async def _verify(self, client: httpx.AsyncClient) -> bool | httpx.HTTPError:
        """Whether the server at the base URL answers as gridrun's simulator (`SIMULATOR_HEADER` on its answer, whatever
        its status: a simulator wanting a key answers 401 with it); the error met when no answer came, which proves
        nothing either way. Asked of `_sim/config`, which costs nothing, without the key: a server that is not a
        simulator never gets SIM_API_KEY from this."""
        request = client.build_request("GET", "_sim/config", timeout=10.0)
        request.headers.pop("Authorization", None)
        try:
            response = await client.send(request, stream=True)  # its headers alone are read
            await response.aclose()
        except httpx.HTTPError as exc:
            return exc
        if response.headers.get(SIMULATOR_HEADER) == "1":
            self.verified = True
            return True
        return False

    def _unanswered(self, exc: httpx.HTTPError) -> ConnectError:
        """Why a create is not sent where the check that the base URL is gridrun's simulator met `exc`: nothing listening
        there (a `gridrun sim serve` stopped or stopping, a port mistyped) in the words a poll uses for it ("could not
        connect to 127.0.0.1:8000 (Connection refused)"); else what the check met on the connection it made."""
        said = transport_error(exc, op="POST /videos", create=False, secret=None)
        if isinstance(said, ConnectError):
            return ConnectError(f"{said.message} (is `gridrun sim serve` running at {self.base_url}?)")
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return ConnectError(f"POST /videos: {self.base_url} did not answer the check that it is gridrun's simulator "
                            f"({detail}); the request was not sent")

    def _not_simulator(self, outcome: str) -> str:
        """Why nothing is sent to a base URL whose server does not show itself a gridrun simulator."""
        where = self.base_url_from or "the manifest's `base_url:`"
        return (f"{self.base_url} ({where}) is not gridrun's simulator: its answer lacks the {SIMULATOR_HEADER} "
                f"header every gridrun simulator sends, and `provider: sim` sends no create to anything else (that "
                f"address may be a provider's paid API, or a gateway to one); {outcome}. Point `base_url:` at the "
                f"address `gridrun sim serve` prints, or, for a provider's own API, name that provider in "
                f"`provider:`")

    def forgot(self, video_id: str) -> bool:
        """In-process, the whole simulated world is here: a video it does not know was made by a simulator
        whose world was not kept (no world file, or another one). Over HTTP only the server can tell."""
        return not self.remote and video_id not in self.app.state.sim.videos

    key_shape = "<the key given to gridrun sim serve --api-key>"

    @property
    def key_env(self) -> str:
        """The environment variable holding the key sent to a served simulator."""
        return KEY_ENV

    def api_key(self) -> str:
        """The key sent: over HTTP, SIM_API_KEY's, where it is set (a `gridrun sim serve --api-key K` requires K);
        else none ("").

        :raises NeedsKeyError: SIM_API_KEY holds a character an HTTP header cannot carry.
        """
        if not self.remote or not os.environ.get(KEY_ENV, "").strip():
            return ""
        return super().api_key()

    def key_settings(self) -> str | None:
        """Over HTTP, SIM_API_KEY (the key the served simulator was given with --api-key); in-process, None: the
        built-in simulator takes no key."""
        return f"{KEY_ENV}, the key `gridrun sim serve --api-key` was given" if self.remote else None

    def base_url_settings(self) -> str | None:
        """Over HTTP, the manifest's `base_url:` (no environment variable is read); in-process, nothing to set."""
        return "the manifest's `base_url:`, the address `gridrun sim serve` prints" if self.remote else None

    def client(
        self,
        *,
        max_connections: int = 100,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> httpx.AsyncClient:
        """A client for the simulator: in-process, with no key; over HTTP, with SIM_API_KEY's where it is set.

        :raises NeedsKeyError: SIM_API_KEY holds a character an HTTP header cannot carry.
        """
        if transport is None and not self.remote:
            transport = httpx.ASGITransport(app=self.app)
        key = self.api_key()
        return make_client(self.base_url, headers={"Authorization": f"Bearer {key}"} if key else None,
                           max_connections=max_connections, timeout=timeout, transport=transport)


def _with_window(caps: ProviderCaps, window: float | None) -> ProviderCaps:
    """`caps` with the simulator's idempotency window, where it is shorter than the data's (or the data has none)."""
    if window is None or (caps.idempotency_window_seconds is not None and caps.idempotency_window_seconds <= window):
        return caps
    return dataclasses.replace(caps, idempotency_window_seconds=window)


def _config(knobs: Any) -> Any:
    """A `runner.sim.SimConfig` from a mapping of knobs (or a `SimConfig`).

    :raises UsageError: an unknown knob or a bad value.
    """
    from runner.sim import ConfigError, SimConfig

    if isinstance(knobs, SimConfig):
        return knobs
    if knobs is not None and not isinstance(knobs, Mapping):
        raise UsageError(f"sim: the simulator's knobs must be a mapping, got {type(knobs).__name__}")
    try:
        return SimConfig.from_dict(knobs or {})
    except ConfigError as exc:
        raise UsageError(f"sim: {exc}") from exc
