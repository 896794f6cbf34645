from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sim_kit import BASE, Api, FakeClock

from runner.sim import SimConfig, create_app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def api(clock: FakeClock) -> AsyncIterator[Api]:
    app = create_app(SimConfig(render_time=10, jitter=0, concurrency=8, max_side=64), clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield Api(client, app.state.sim, clock)
