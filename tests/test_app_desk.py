"""The managers' desk in the app (imports and the review queue) against a real server: a store
manager sees the store's imports with their counts and the possible duplicates, decides one pair
"not the same" and merges another from the screen; a rep has no desk tab. The two pairs are made
here (two customers each, in BJ-CY) and everything is removed afterwards."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from mobile.ui.screens import DeskScreen
from mobile.ui.shell import Shell
from server.customers.tables import Customer
from server.imports import service
from server.imports.tables import CustomerAlias, CustomerMerge, MergeCandidate
from shared.ids import uuid7
from tests.flet_tree import click, find, has, render, texts
from tests.test_app_state import no_device_left, sign_in
from tests.test_imports import code_of, counts, world  # noqa: F401 — world: the fixture (deletes import rows)
from tests.test_imports_resume import ALL_NEW, people
from tests.test_rules import World
from tests.test_rules import world as rules_world  # noqa: F401 — the fixture `world` builds on


@pytest.fixture
async def pairs(stores):
    """Two open review entries in BJ-CY: (candidate id, customer a, customer b) each."""
    made: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = []
    for n in range(2):
        a, b = uuid7(), uuid7()
        for ident, name in ((a, f"查重甲{n}"), (b, f"查重甲{n}")):
            await Customer.insert(Customer(id=ident, version=0, store_id=stores["BJ-CY"], name=name, city="北京市"))
        candidate = uuid7()
        await MergeCandidate.insert(
            MergeCandidate(id=candidate, store_id=stores["BJ-CY"], customer_a=a, customer_b=b, score=0.71,
                           reasons=json.dumps(["name_same", "same_district"]))
        )  # fmt: skip
        made.append((candidate, a, b))
    yield made
    everyone = [c for _, a, b in made for c in (a, b)]
    await MergeCandidate.delete().where(MergeCandidate.id.is_in([m[0] for m in made]))
    await CustomerAlias.delete().where(CustomerAlias.id.is_in(everyone))
    await CustomerMerge.delete().where(CustomerMerge.merged_id.is_in(everyone))
    await Customer.delete().where(Customer.id.is_in(everyone))


async def test_a_manager_decides_duplicates_from_the_desk(live_server, tmp_path, pairs):
    phone = await sign_in(live_server.url, tmp_path / "manager", "manager.bjcy")
    state = phone.state
    try:
        tree = render(lambda: Shell(state, DeskScreen(state)))
        labels = [d.label for d in find(tree, key="nav").destinations]
        assert labels[-4:] == ["看板", "报表", "导入", "推广"]  # the desk tabs, for managers
        await state.load_desk()
        tree = render(lambda: Shell(state, DeskScreen(state)))
        (first, _, _), (second, _, b2) = pairs
        assert has(tree, key=f"pair-{first}") and has(tree, key=f"pair-{second}")
        assert any("查重甲0 ↔ 查重甲0 · 相似度 0.71" in t for t in texts(tree))

        await click(find(tree, key=f"distinct-{first}"))
        assert state.toast == "不是同一人"
        assert (await MergeCandidate.select().where(MergeCandidate.id == first).first())["status"] == "distinct"

        tree = render(lambda: Shell(state, DeskScreen(state)))
        assert not has(tree, key=f"pair-{first}")
        await click(find(tree, key=f"merge-{second}"))
        assert state.toast == "已合并（可撤销）"
        row = await MergeCandidate.select().where(MergeCandidate.id == second).first()
        assert row["status"] == "merged" and row["merge_id"] is not None
        assert (await Customer.select(Customer.deleted).where(Customer.id == b2).first())["deleted"] is True
    finally:
        await state.close()
        no_device_left(tmp_path / "manager")


async def test_a_rep_has_no_desk(live_server, tmp_path):
    phone = await sign_in(live_server.url, tmp_path / "rep")
    state = phone.state
    try:
        tree = render(lambda: Shell(state, DeskScreen(state)))
        assert [d.label for d in find(tree, key="nav").destinations] == ["今日", "客户", "消息", "同步"]
        await state.load_desk()
        assert state.desk_candidates == [] and state.desk_imports == []
    finally:
        await state.close()
        no_device_left(tmp_path / "rep")


async def test_an_import_that_stopped_is_resumed_from_the_desk(
    live_server,
    tmp_path,
    world: World,  # noqa: F811
    monkeypatch,
):
    shop = await world.shop()
    code = await code_of(shop)
    monkeypatch.setattr(service, "BATCH", 10)  # here; the server resumes it with its own batches
    job, table, _ = await service.create_job(people("7"), "门店.csv", store_code=code, keep_file=True)

    def database_gone(done, total, c):
        raise ConnectionResetError("the database went away")

    with pytest.raises(ConnectionResetError):
        await service.run_job(job, table, database_gone)
    phone = await sign_in(live_server.url, tmp_path / "admin", "admin")
    state = phone.state
    try:
        await state.load_desk()
        tree = render(lambda: Shell(state, DeskScreen(state)))
        assert any("门店.csv · 中断（可续传） · 10/25 行" in t for t in texts(tree))
        await click(find(tree, key=f"resume-{job['id']}"))
        assert state.toast == "已从第 11 行继续导入"
        for _ in range(600):  # the server goes on with it in the background
            done = await service.job(job["id"])
            if done["status"] != "running":
                break
            await asyncio.sleep(0.05)
        assert done["status"] == "done" and counts(done) == ALL_NEW
        await state.load_desk()
        tree = render(lambda: Shell(state, DeskScreen(state)))
        assert not has(tree, key=f"resume-{job['id']}")
        assert any("门店.csv · 完成 · 25/25 行" in t for t in texts(tree))
    finally:
        await state.close()
        no_device_left(tmp_path / "admin")
