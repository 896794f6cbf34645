from __future__ import annotations

import pytest
from sim_kit import Api

pytestmark = pytest.mark.anyio


async def test_list_pages_newest_first_with_a_cursor(api: Api) -> None:
    ids = [(await api.create(prompt=f"p{i}")).json()["id"] for i in range(5)]
    r = await api.client.get("/videos", params={"limit": 2})
    page = r.json()
    assert page["object"] == "list"
    assert [v["id"] for v in page["data"]] == [ids[4], ids[3]]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (ids[4], ids[3], True)
    rest = (await api.client.get("/videos", params={"limit": 10, "after": page["last_id"]})).json()
    assert [v["id"] for v in rest["data"]] == [ids[2], ids[1], ids[0]]
    assert rest["has_more"] is False
    asc = (await api.client.get("/videos", params={"order": "asc", "limit": 1})).json()
    assert asc["data"][0]["id"] == ids[0]


async def test_one_list_call_polls_many_jobs(api: Api) -> None:
    api.configure(concurrency=2)
    for i in range(4):
        await api.create(prompt=f"p{i}")
    api.clock.advance(10)
    data = (await api.client.get("/videos", params={"limit": 100})).json()["data"]
    assert sorted(v["status"] for v in data) == ["completed", "completed", "in_progress", "in_progress"]
    assert all(v["output"]["size_bytes"] > 0 for v in data if v["status"] == "completed")


@pytest.mark.parametrize(("params", "field"), [({"limit": 101}, "limit"), ({"order": "up"}, "order"), ({"after": "video_x"}, "after")])
async def test_list_rejects_bad_arguments_naming_them(api: Api, params: dict[str, object], field: str) -> None:
    r = await api.client.get("/videos", params=params)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == field


async def test_request_log_finds_a_lost_create_by_idempotency_key(api: Api) -> None:
    await api.create(idempotency_key="gridrun-aaa-1", prompt="a")
    lost = (await api.create(idempotency_key="gridrun-bbb-1", prompt="b")).json()["id"]
    r = await api.client.get("http://sim.test/v1/requests", params={"idempotency_key": "gridrun-bbb-1"})
    entries = r.json()["data"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["id"].startswith("req_")
    assert entry["video_id"] == lost
    assert entry["idempotency_key"] == "gridrun-bbb-1"
    assert entry["status"] == "pending"
    single = (await api.client.get(f"http://sim.test/v1/requests/{entry['id']}")).json()
    assert single == entry


async def test_request_log_statuses_follow_the_videos(api: Api) -> None:
    api.configure(script=[{"route": "create", "nth": 2, "fault": "job_failure"}])
    done = (await api.create(prompt="done")).json()["id"]
    await api.create(prompt="fails")
    cancelled = (await api.create(prompt="cancelled")).json()["id"]
    await api.create(duration=7)
    await api.client.delete(f"/videos/{cancelled}")
    api.clock.advance(11)
    log = (await api.client.get("http://sim.test/v1/requests")).json()["data"]
    assert [e["status"] for e in log] == ["rejected", "cancelled", "upstream_failure", "completed"]
    assert log[0]["video_id"] is None and log[0]["error"]["code"] == "INVALID_REQUEST"
    assert log[3]["video_id"] == done
    completed = (await api.client.get("http://sim.test/v1/requests", params={"status": "completed"})).json()["data"]
    assert [e["video_id"] for e in completed] == [done]


async def test_request_log_filters_by_creation_time(api: Api) -> None:
    t0 = api.clock.now
    await api.create(prompt="old")
    api.clock.advance(100)
    await api.create(prompt="new")
    newer = (await api.client.get("http://sim.test/v1/requests", params={"created_after": int(t0) + 50})).json()["data"]
    assert len(newer) == 1
    older = (await api.client.get("http://sim.test/v1/requests", params={"created_before": "2027-01-15T08:00:50Z"})).json()["data"]
    assert len(older) == 1
    assert (await api.client.get("http://sim.test/v1/requests", params={"created_after": "yesterday"})).status_code == 400


async def test_injected_5xx_on_create_is_logged_as_upstream_failure(api: Api) -> None:
    api.configure(script=[{"route": "create", "nth": 1, "fault": "server_error", "status": 502}])
    r = await api.create(idempotency_key="k")
    assert r.status_code == 502
    log = (await api.client.get("http://sim.test/v1/requests", params={"idempotency_key": "k"})).json()["data"]
    assert [(e["status"], e["video_id"], e["http_status"]) for e in log] == [("upstream_failure", None, 502)]
