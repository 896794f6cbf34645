"""Providers: one module per service behind the interface in `base`, found by name in a registry."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from runner.errors import UsageError
from runner.providers import capabilities
from runner.providers.capabilities import ProviderCaps
from runner.providers.retry_after import parse_retry_after

if TYPE_CHECKING:
    from runner.providers.base import (
        STATUSES,
        TERMINAL,
        Download,
        Provider,
        VideoStatus,
    )

# The providers' modules (and the HTTP stack under them) are imported when a provider is made, or one of
# `base`'s names is asked for here: planning a manifest reads capability data only.
_FROM_BASE = ("STATUSES", "TERMINAL", "Download", "Provider", "VideoStatus")

__all__ = [
    "STATUSES",
    "TERMINAL",
    "Download",
    "Factory",
    "Provider",
    "VideoStatus",
    "base_url_env",
    "get_provider",
    "known",
    "parse_retry_after",
    "register",
]

Factory = Callable[..., "Provider"]
"""`factory(caps, *, base_url=None, sim_config=None, state_dir=None) -> Provider`."""

SIM_WORLD = "sim-world.jsonl"
"""The in-process simulator's world, in the state folder."""

_REGISTRY: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    """Make `get_provider(name)` build providers with `factory`."""
    _REGISTRY[name] = factory


def known() -> list[str]:
    """The names `get_provider` accepts."""
    return sorted(_REGISTRY)


def get_provider(
    name: str,
    *,
    base_url: str | None = None,
    sim_config: Mapping[str, Any] | None = None,
    capability_files: Sequence[Path] = (),
    state_dir: str | os.PathLike[str] | None = None,
) -> Provider:
    """The provider called `name`, with its capability data (built-in merged with `capability_files`).
    `state_dir` is where a provider keeps what it must find again in a later process (the in-process
    simulator's world).

    :raises UsageError: no provider has that name, or it has no capability data; an argument of the wrong kind.
    """
    if state_dir is not None and not isinstance(state_dir, (str, os.PathLike)):
        raise UsageError(f"state_dir must be a folder's path (or None), got {type(state_dir).__name__}")
    if base_url is not None and not isinstance(base_url, str):
        raise UsageError(f"base_url must be a string (or None), got {type(base_url).__name__}")
    if sim_config is not None and not isinstance(sim_config, Mapping):
        raise UsageError(f"sim_config must be a mapping of the simulator's knobs (or None), got "
                         f"{type(sim_config).__name__}")
    factory = _REGISTRY.get(name)
    if factory is None:
        raise UsageError(f"unknown provider {name!r}; known providers: {', '.join(known())}")
    caps = capabilities.load(name, extra=tuple(capability_files))
    if caps is None:
        raise UsageError(f"provider {name!r} has no capability data")
    return factory(caps, base_url=base_url, sim_config=sim_config,
                   state_dir=None if state_dir is None else Path(state_dir))


def base_url_env(name: str) -> str | None:
    """The environment variable that sets provider `name`'s base URL (`LUMENFALL_BASE_URL`); None for the
    simulator, which runs in process unless a manifest names a served one, and for a name holding a lone surrogate
    (a `\\ud800` escape), which no variable's name can hold: looking it up would fail before the name is told
    to be no provider's."""
    if name == "sim" or any(0xD800 <= ord(c) <= 0xDFFF for c in name):
        return None
    return f"{name.upper()}_BASE_URL"


def _lumenfall(caps: ProviderCaps, *, base_url: str | None = None, sim_config: Any = None, state_dir: Path | None = None) -> Provider:
    from runner.providers.lumenfall import LumenfallProvider

    return LumenfallProvider(caps, base_url=base_url)


def _sim(
    caps: ProviderCaps, *, base_url: str | None = None, sim_config: Mapping[str, Any] | None = None, state_dir: Path | None = None
) -> Provider:
    from runner.providers.sim import SimProvider

    return SimProvider(caps, base_url=base_url, sim_config=sim_config,
                       world=state_dir / SIM_WORLD if state_dir is not None else None)


def __getattr__(name: str) -> Any:
    """`base`'s names (`runner.providers.VideoStatus`, ...), imported at their first use."""
    if name in _FROM_BASE:
        from runner.providers import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


register("lumenfall", _lumenfall)
register("sim", _sim)
