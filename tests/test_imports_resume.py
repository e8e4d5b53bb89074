"""Imports started from the app outlive the server that runs them: the file is kept with the job
until it is done, each batch commits with the runner's heartbeat, and the scheduler's leader
resumes a job whose heartbeat is stale (service.resume_stale) — once, however many ask; a runner
that finds its job taken over stops without writing its batch. A manager resumes a failed one
(POST /api/imports/{id}/resume). Imports go into this module's own stores."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest

from server.customers.tables import Customer
from server.imports import service
from server.imports.tables import ImportJob
from tests.test_imports import NAMES, code_of, counts, csv_bytes, world  # noqa: F401 — world: the fixture
from tests.test_imports_api import until_done
from tests.test_rules import World
from tests.test_rules import world as rules_world  # noqa: F401 — the fixture `world` builds on

ALL_NEW = {"created": 25, "updated": 0, "unchanged": 0, "merged": 0, "rejected": 0}


@pytest.fixture(scope="module", autouse=True)
def _app_first(client):
    """The app, and with it the database pool every test here uses, before this module's stores."""


def people(prefix: str) -> bytes:
    """25 new people (phones of this module's own: 1995…), 3 batches of 10."""
    rows = [[NAMES[n], f"1995{prefix}{n:02d}{(n * 7919 + 1234) % 10000:04d}", "", "", "", "", ""] for n in range(25)]
    return csv_bytes(rows, "utf-8")


async def job_row(shop) -> dict:
    [row] = await ImportJob.select(ImportJob.id).where(ImportJob.store_id == shop.id)
    return await service.job(row["id"])


async def stale(job_id, minutes: int = 3) -> None:
    """As if the job's runner had last committed ``minutes`` ago."""
    await ImportJob.raw(
        "UPDATE import_jobs SET heartbeat_at = {} WHERE id = {}",
        dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes),
        job_id,
    )


async def test_an_import_whose_server_stopped_is_resumed_once_by_the_leader(
    world: World,  # noqa: F811
    monkeypatch,
):
    shop = await world.shop()
    code = await code_of(shop)
    monkeypatch.setattr(service, "BATCH", 10)
    data = people("1")
    job, table, _ = await service.create_job(data, "门店.csv", store_code=code, keep_file=True)

    def shutdown_after_first(done, total, c):
        raise asyncio.CancelledError  # the server stops (its tasks are cancelled) after batch 1

    with pytest.raises(asyncio.CancelledError):
        await service.run_job(job, table, shutdown_after_first)
    stopped = await job_row(shop)
    assert (stopped["status"], stopped["next_row"], stopped["created"], stopped["kept"]) == ("running", 10, 10, True)
    assert await service.resume_stale() == 0  # its heartbeat is fresh: it may be running still

    await stale(stopped["id"])
    # Two leaders' worth of asking at once (a leader change): one resumes it, the other finds it taken.
    resumed = await asyncio.gather(service.resume_stale(), service.resume_stale())
    assert sorted(resumed) == [0, 1]
    done = await service.job(stopped["id"])
    assert done["status"] == "done" and counts(done) == ALL_NEW and done["total_rows"] == 25
    assert not done["kept"]  # the file goes with the job's end
    assert await Customer.count().where(Customer.store_id == shop.id) == 25  # nothing twice
    await stale(stopped["id"])
    assert await service.resume_stale() == 0  # done: nothing to resume


async def test_a_runner_whose_job_was_taken_over_writes_nothing_more(
    world: World,  # noqa: F811
    monkeypatch,
):
    shop = await world.shop()
    code = await code_of(shop)
    monkeypatch.setattr(service, "BATCH", 10)
    job, table, _ = await service.create_job(people("2"), "门店.csv", store_code=code, keep_file=True)
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    # This runner claimed the job, then stalled; another process took it for stopped and claimed it.
    await ImportJob.raw("UPDATE import_jobs SET runner = {} WHERE id = {}", theirs, job["id"])
    with pytest.raises(service.Superseded):
        await service.run_job(job, table, runner=mine)
    after = await job_row(shop)
    assert after["status"] == "running" and after["next_row"] == 0  # not failed: the other runner has it
    assert str(after["runner"]) == str(theirs)
    assert await Customer.count().where(Customer.store_id == shop.id) == 0  # its batch rolled back
    await stale(after["id"])  # … and that one stops too
    assert await service.resume_stale() == 1
    assert counts(await service.job(after["id"])) == ALL_NEW
    assert await Customer.count().where(Customer.store_id == shop.id) == 25


async def test_a_manager_resumes_a_failed_import_from_the_app(
    client,
    login,
    world: World,  # noqa: F811
    monkeypatch,
):
    shop = await world.shop()
    code = await code_of(shop)
    monkeypatch.setattr(service, "BATCH", 10)
    job, table, _ = await service.create_job(people("3"), "门店.csv", store_code=code, keep_file=True)

    def database_gone(done, total, c):
        raise ConnectionResetError("the database went away")

    with pytest.raises(ConnectionResetError):
        await service.run_job(job, table, database_gone)
    admin, rep, other = await login("admin"), await login("rep.bjcy"), await login("manager.bjcy")
    url = f"/api/imports/{job['id']}"
    failed = (await client.get(url, headers=admin)).json()
    assert failed["status"] == "failed" and "database went away" in failed["error"] and failed["resumable"]
    assert (await client.post(f"{url}/resume", headers=rep)).status_code == 403
    assert (await client.post(f"{url}/resume", headers=other)).status_code == 404  # another store's
    started = await client.post(f"{url}/resume", headers=admin)
    assert started.status_code == 202, started.text
    done = await until_done(client, admin, job["id"])
    assert done["status"] == "done" and counts(done) == ALL_NEW and not done["resumable"]
    again = await client.post(f"{url}/resume", headers=admin)
    assert again.status_code == 409 and "finished" in again.text
    assert await Customer.count().where(Customer.store_id == shop.id) == 25

    # Started from the command line (the file not kept): resumed there, not from the app.
    monkeypatch.setattr(service, "BATCH", 10)
    cli, cli_table, _ = await service.create_job(people("4"), "命令行.csv", store_code=code)
    with pytest.raises(ConnectionResetError):
        await service.run_job(cli, cli_table, database_gone)
    assert not (await client.get(f"/api/imports/{cli['id']}", headers=admin)).json()["resumable"]
    refused = await client.post(f"/api/imports/{cli['id']}/resume", headers=admin)
    assert refused.status_code == 422 and "command line" in refused.text


async def test_an_import_started_from_the_app_keeps_its_file_until_it_is_done(
    client,
    login,
    world: World,  # noqa: F811
):
    shop = await world.shop()
    code = await code_of(shop)
    admin = await login("admin")
    started = await client.post(f"/api/imports/?file_name=门店.csv&store={code}", headers=admin, content=people("5"))
    assert started.status_code == 202, started.text
    done = await until_done(client, admin, started.json()["id"])
    assert done["status"] == "done" and counts(done) == ALL_NEW and not done["resumable"]
    assert await ImportJob.raw("SELECT job_id FROM import_files WHERE job_id = {}", uuid.UUID(done["id"])) == []
    running = await client.post(f"/api/imports/{done['id']}/resume", headers=admin)
    assert running.status_code == 409
