"""The phone's replica, mutators, local queries and sync engine, on real SQLite files (no server:
the engine tests answer HTTP with a double at the process edge, httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import sqlite3
import uuid
from typing import Any

import httpx
import msgspec
import pytest

from mobile import queries
from mobile.engine import SyncEngine
from mobile.mutators import MutationError
from mobile.replica import Replica
from shared import sync as proto
from shared.ids import uuid7

NOW = dt.datetime(2025, 6, 10, 4, 0, tzinfo=dt.UTC)  # 12:00 in Shanghai
NOW_MS = NOW.timestamp() * 1000
STORE = str(uuid7())
OTHER_STORE = str(uuid7())
ME = str(uuid7())
COLLEAGUE = str(uuid7())
MANAGER = str(uuid7())
STAGES = {"lead": "open", "proposal": "open", "won": "won", "lost": "lost"}
STAGE_IDS = {code: str(uuid.uuid5(uuid.NAMESPACE_DNS, code)) for code in STAGES}


def ts(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row(table: str, **values: Any) -> list[Any]:
    """A wire row of ``table`` (columns in the spec's order); unspecified columns are null."""
    spec = proto.TABLES_BY_NAME[table]
    values.setdefault("version", 1)
    values.setdefault("deleted", False)
    unknown = set(values) - set(spec.column_names)
    assert not unknown, unknown
    return [values.get(name) for name in spec.column_names]


def rows(table: str, *items: list[Any]) -> proto.TableRows:
    return proto.TableRows(table=table, columns=list(proto.TABLES_BY_NAME[table].column_names), rows=list(items))


def page(*changes: proto.TableRows, cursor: str = "c1", last: int = 0, removed: list[str] | None = None, more=False):
    return proto.PullResponse(
        changes=list(changes),
        cursor=cursor,
        has_more=more,
        last_mutation_id=last,
        scopes_removed=removed or [],
        reset_required=False,
    )


def base_page(cursor: str = "c1") -> proto.PullResponse:
    """Org and catalog rows, and one customer of mine."""
    return page(
        rows("stores", row("stores", id=STORE, code="SH01", name="Shanghai 1", time_zone="Asia/Shanghai", active=True)),
        rows(
            "users",
            row("users", id=ME, display_name="小李", role="rep", store_id=STORE, active=True),
            row("users", id=COLLEAGUE, display_name="王经理", role="store_manager", store_id=STORE, active=True),
        ),
        rows(
            "pipeline_stages",
            *[
                row("pipeline_stages", id=STAGE_IDS[code], code=code, name_zh=code, name_en=code, position=n, kind=kind)
                for n, (code, kind) in enumerate(STAGES.items())
            ],
        ),
        rows("customers", customer_row(CUSTOMER, name="张三")),
        cursor=cursor,
    )


CUSTOMER = str(uuid7())


def customer_row(ident: str, *, store: str = STORE, owner: str | None = ME, version: int = 1, **values: Any):
    values.setdefault("name", "客户")
    values.setdefault("field_clocks", "{}")
    values.setdefault("consents", "{}")
    for field in ("province", "city", "district", "address"):
        values.setdefault(field, "")
    return row(
        "customers",
        id=ident,
        version=version,
        store_id=store,
        owner_id=owner,
        created_at=ts(NOW - dt.timedelta(days=400)),
        updated_at=ts(NOW - dt.timedelta(days=1)),
        **values,
    )


@pytest.fixture
def replica(tmp_path):
    r = Replica(tmp_path / "me.sqlite3", clock_ms=lambda: NOW_MS)
    r.set_identity(ME)
    r.apply_page(base_page())
    yield r
    r.close()


def one(r: Replica, sql: str, *params: Any) -> Any:
    found = r.db.execute(sql, params).fetchone()
    return None if found is None else found[0] if len(found) == 1 else found


# --- schema ---------------------------------------------------------------------------------------


def test_tables_and_indexes_follow_the_specs(tmp_path):
    r = Replica(tmp_path / "a.sqlite3")
    for spec in proto.TABLES:
        columns = {c[1]: c[2] for c in r.db.execute(f"PRAGMA table_info({spec.name})")}
        assert list(columns) == list(spec.column_names)
        for name, kind in spec.columns:
            assert columns[name] == ("INTEGER" if kind in ("int", "bool") else "TEXT")
        indexed = {
            tuple(c[2] for c in r.db.execute(f"PRAGMA index_info({i[1]})"))
            for i in r.db.execute(f"PRAGMA index_list({spec.name})")
        }
        assert set(spec.indexes) <= indexed
    assert one(r, "PRAGMA journal_mode") == "wal"
    assert r.get_meta("schema_version") == str(proto.SCHEMA_VERSION)
    for table in ("meta", "outbox", "conflicts"):
        assert one(r, "SELECT count(*) FROM sqlite_master WHERE name = ?", table) == 1
    r.close()


def test_another_schema_version_recreates_synced_tables_and_keeps_the_outbox(tmp_path):
    path = tmp_path / "me.sqlite3"
    r = Replica(path, clock_ms=lambda: NOW_MS)
    r.set_identity(ME, store_id=STORE)
    r.apply_page(base_page())
    created = r.create_customer("新客户")
    r.log_visit(CUSTOMER, "来店看沙发")
    client_id = r.client_id
    r.set_meta("schema_version", "0")  # as if an older app made this file
    r.close()

    r = Replica(path, clock_ms=lambda: NOW_MS)
    assert r.client_id == client_id
    assert r.cursor is None
    assert [e.id for e in r.pending()] == [1, 2]
    assert one(r, "SELECT count(*) FROM users") == 0
    # The pending create is re-applied; the visit's customer is gone until the next pull.
    assert one(r, "SELECT name FROM customers WHERE id = ?", str(created)) == "新客户"
    assert one(r, "SELECT count(*) FROM interactions") == 0
    r.apply_page(base_page())
    assert one(r, "SELECT body FROM interactions") == "来店看沙发"
    assert r.log_visit(CUSTOMER) and [e.id for e in r.pending()] == [1, 2, 3]
    r.close()


# --- pulling ------------------------------------------------------------------------------------


def test_apply_page_upserts_deletes_tombstones_and_removed_scopes(replica):
    other = str(uuid7())
    gone = str(uuid7())
    replica.apply_page(
        page(
            rows(
                "customers",
                customer_row(CUSTOMER, version=5, name="张三丰", consents='{"sms": true}'),
                customer_row(other, store=OTHER_STORE, version=6, name="李四"),
                customer_row(gone, version=7, name="王五"),
            ),
            rows("stores", row("stores", id=OTHER_STORE, code="SH02", name="2", pilot=True, active=False)),
            cursor="c2",
        )
    )
    assert one(replica, "SELECT name, version, consents FROM customers WHERE id = ?", CUSTOMER) == (
        "张三丰",
        5,
        '{"sms": true}',
    )
    assert one(replica, "SELECT pilot, active FROM stores WHERE id = ?", OTHER_STORE) == (1, 0)
    tombstone = [None] * len(proto.TABLES_BY_NAME["customers"].columns)
    tombstone[:3] = [gone, 8, True]
    replica.apply_page(page(rows("customers", tombstone), cursor="c3", removed=[OTHER_STORE]))
    assert one(replica, "SELECT count(*) FROM customers WHERE id IN (?, ?)", gone, other) == 0
    assert one(replica, "SELECT count(*) FROM customers") == 1
    assert one(replica, "SELECT count(*) FROM stores") == 2  # org rows are not store-scoped
    assert replica.cursor == "c3"


def test_a_failure_mid_page_leaves_the_previous_page_and_cursor(replica):
    before = one(replica, "SELECT name FROM customers WHERE id = ?", CUSTOMER)
    unknown = proto.TableRows(table="from_a_newer_server", columns=["id"], rows=[["x"]])  # skipped
    broken = rows("customer_tags", row("customer_tags", id=str(uuid7()), tag={"not": "bindable"}))  # raises
    with pytest.raises(sqlite3.ProgrammingError):
        replica.apply_page(
            page(rows("customers", customer_row(CUSTOMER, version=9, name="改了")), unknown, broken, cursor="c9")
        )
    assert one(replica, "SELECT name FROM customers WHERE id = ?", CUSTOMER) == before
    assert replica.cursor == "c1"
    assert not replica.db.in_transaction


def test_reset_forgets_rows_and_cursor_but_keeps_the_outbox(replica):
    replica.log_visit(CUSTOMER, "hello")
    replica.reset()
    assert replica.cursor is None
    assert one(replica, "SELECT count(*) FROM customers") == 0
    assert replica.pending_count() == 1


def test_apply_page_speed_is_not_per_row_python(tmp_path):
    """Not a timing assertion (timings live in bench/): 20,000 rows go through one page."""
    r = Replica(tmp_path / "big.sqlite3")
    many = [
        row(
            "interactions",
            id=str(uuid7()),
            version=n,
            store_id=STORE,
            customer_id=CUSTOMER,
            kind="visit",
            occurred_at=ts(NOW),
            body="x" * 40,
        )
        for n in range(20_000)
    ]
    r.apply_page(page(rows("interactions", *many)))
    assert one(r, "SELECT count(*) FROM interactions") == 20_000
    r.close()


# --- the outbox -----------------------------------------------------------------------------------


def test_mutation_ids_are_contiguous_and_survive_reopen_acks_and_resets(tmp_path):
    path = tmp_path / "me.sqlite3"
    r = Replica(path, clock_ms=lambda: NOW_MS)
    r.set_identity(ME)
    r.apply_page(base_page())
    ids = [r.log_visit(CUSTOMER) and r.pending()[-1].id for _ in range(3)]
    assert ids == [1, 2, 3]
    r.apply_page(page(cursor="c2", last=2))  # the server applied 1 and 2 (a lost push reply)
    assert [e.id for e in r.pending()] == [3]
    r.close()
    r = Replica(path, clock_ms=lambda: NOW_MS)
    r.apply_page(page(cursor="c3", last=3))
    assert r.pending_count() == 0
    r.reset()
    r.apply_page(base_page())
    assert r.complete_task is not None
    assert r.mutate("tag.add", {"id": uuid7(), "customer_id": CUSTOMER, "tag": "VIP"}) == 4
    hlcs = [r.mutate("tag.add", {"id": uuid7(), "customer_id": CUSTOMER, "tag": f"t{n}"}) for n in range(3)]
    assert hlcs == [5, 6, 7]
    stamps = [e.hlc for e in r.pending()]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4  # same millisecond: the counter orders them
    r.close()


def test_an_invalid_mutation_is_refused_before_queueing(replica):
    with pytest.raises(MutationError):
        replica.mutate("task.create", {"id": uuid7(), "title": "", "due_at": ts(NOW)})
    with pytest.raises(MutationError, match="unknown mutation"):
        replica.mutate("customer.delete", {})
    with pytest.raises(MutationError, match=r"not a (valid )?phone number"):
        replica.create_customer("x", phone="12")
    assert replica.pending_count() == 0


# --- mutators -------------------------------------------------------------------------------------


def test_customer_create_and_update(replica):
    created = replica.create_customer(" 赵六 ", phone="138 1234 5678", city="上海", gender="female")
    customer = one(
        replica, "SELECT name, store_id, owner_id, city, gender, version FROM customers WHERE id = ?", str(created)
    )
    assert customer == ("赵六", STORE, ME, "上海", "female", 0)
    phone = one(
        replica, "SELECT number, digits, is_primary, store_id FROM customer_phones WHERE customer_id = ?", str(created)
    )
    assert phone == ("+8613812345678", "13812345678", 1, STORE)
    entry = replica.pending()[-1]
    assert entry.name == "customer.create" and entry.args["phone_id"]

    replica.update_customer(CUSTOMER, email="zs@example.com", city="杭州")
    entry = replica.pending()[-1]
    assert entry.args["base"] == {"email": None, "city": ""}
    assert one(replica, "SELECT email, city FROM customers WHERE id = ?", CUSTOMER) == ("zs@example.com", "杭州")
    clocks = json.loads(one(replica, "SELECT field_clocks FROM customers WHERE id = ?", CUSTOMER))
    assert clocks["city"] == {"hlc": entry.hlc, "by": ME} and set(clocks) == {"email", "city"}
    with pytest.raises(MutationError, match="not on this phone"):
        replica.update_customer(str(uuid7()), city="x")


def test_phone_tag_and_interaction_mutators(replica):
    first = replica.add_phone(CUSTOMER, "13900001111")
    second = replica.add_phone(CUSTOMER, "021-6123 4567", kind="landline")
    primary = dict(replica.db.execute("SELECT id, is_primary FROM customer_phones").fetchall())
    assert primary == {str(first): 1, str(second): 0}
    with pytest.raises(MutationError, match="already has the phone"):
        replica.add_phone(CUSTOMER, "+86 139 0000 1111")

    tag = replica.add_tag(CUSTOMER, " VIP ")
    assert one(replica, "SELECT tag, store_id FROM customer_tags WHERE id = ?", str(tag)) == ("VIP", STORE)
    with pytest.raises(MutationError, match="already has the tag"):
        replica.add_tag(CUSTOMER, "VIP")
    replica.remove_tag(tag)
    assert one(replica, "SELECT count(*) FROM customer_tags") == 0

    visit = replica.log_visit(CUSTOMER, "看了沙发")
    call = replica.log_interaction(CUSTOMER, "call", duration_seconds=60, occurred_at="2025-06-10T09:30:00+08:00")
    message = replica.log_interaction(CUSTOMER, "message")
    got = {r[0]: r[1:] for r in replica.db.execute("SELECT id, kind, channel, user_id, occurred_at FROM interactions")}
    assert got[str(visit)] == ("visit", "store", ME, ts(NOW))
    assert got[str(call)] == ("call", "phone", ME, "2025-06-10T01:30:00.000000Z")
    assert got[str(message)][1] == "wechat"


def test_task_mutators(replica):
    task = replica.create_task("回访", "2025-06-10T18:00:00+08:00", customer_id=CUSTOMER, kind="call")
    assert one(replica, "SELECT status, source, owner_id, store_id, due_at FROM tasks WHERE id = ?", str(task)) == (
        "open",
        "manual",
        ME,
        STORE,
        "2025-06-10T10:00:00.000000Z",
    )
    with pytest.raises(MutationError, match="future"):
        replica.snooze_task(task, "2025-06-01T00:00:00Z")
    replica.snooze_task(task, "2025-06-12T09:00:00+08:00")
    assert one(replica, "SELECT due_at FROM tasks WHERE id = ?", str(task)) == "2025-06-12T01:00:00.000000Z"
    replica.complete_task(task)
    assert one(replica, "SELECT status, completed_at FROM tasks WHERE id = ?", str(task)) == ("done", ts(NOW))
    with pytest.raises(MutationError, match="not open"):
        replica.complete_task(task)


def test_opportunity_mutators_and_their_local_validation(replica):
    deal = replica.create_opportunity(CUSTOMER, "全屋定制", amount="12000")
    assert one(replica, "SELECT stage_id, amount, owner_id FROM opportunities WHERE id = ?", str(deal)) == (
        STAGE_IDS["lead"],
        "12000.00",
        ME,
    )
    with pytest.raises(MutationError, match="negative"):
        replica.create_opportunity(CUSTOMER, "x", amount="-1")
    with pytest.raises(MutationError, match="unknown stage"):
        replica.create_opportunity(CUSTOMER, "x", stage="nope")
    with pytest.raises(MutationError, match="closed stage"):
        replica.create_opportunity(CUSTOMER, "x", stage="won")
    replica.update_opportunity(deal, amount="15000.5", title="全屋定制 二期")
    assert one(replica, "SELECT amount, title FROM opportunities WHERE id = ?", str(deal)) == (
        "15000.50",
        "全屋定制 二期",
    )
    with pytest.raises(MutationError, match="negative"):
        replica.update_opportunity(deal, amount="-3")
    with pytest.raises(MutationError, match="unknown stage"):
        replica.move_opportunity(deal, "signed")
    with pytest.raises(MutationError, match="lost_reason"):
        replica.move_opportunity(deal, "lost")
    replica.move_opportunity(deal, "proposal")
    replica.move_opportunity(deal, "lost", lost_reason="价格太高")
    assert one(replica, "SELECT stage_id, lost_reason, closed_at FROM opportunities WHERE id = ?", str(deal)) == (
        STAGE_IDS["lost"],
        "价格太高",
        ts(NOW),
    )
    with pytest.raises(MutationError, match="closed"):
        replica.move_opportunity(deal, "proposal")
    with pytest.raises(MutationError, match="closed"):
        replica.update_opportunity(deal, amount="1")
    assert [e.name for e in replica.pending()] == [
        "opportunity.create",
        "opportunity.update",
        "opportunity.move",
        "opportunity.move",
    ]


# --- rebase, push replies, clocks ----------------------------------------------------------------


def test_a_page_that_overwrites_a_pending_edit_is_rebased(replica):
    replica.update_customer(CUSTOMER, name="张三(VIP)")
    mine = replica.pending()[-1].hlc
    # The server has not seen the edit yet: its row comes back with the old name.
    replica.apply_page(
        page(rows("customers", customer_row(CUSTOMER, version=3, name="张三", city="北京")), cursor="c2")
    )
    assert one(replica, "SELECT name, city FROM customers WHERE id = ?", CUSTOMER) == ("张三(VIP)", "北京")
    # A later edit by a colleague (a later clock) wins locally too, as it will on the server.
    later = proto.hlc_format(int(NOW_MS) + 60_000, 0, "colleague")
    clocks = json.dumps({"name": {"hlc": later, "by": COLLEAGUE}})
    replica.apply_page(page(rows("customers", customer_row(CUSTOMER, version=4, name="张总", field_clocks=clocks))))
    assert one(replica, "SELECT name FROM customers WHERE id = ?", CUSTOMER) == "张总"
    assert later > mine
    # Once the server acknowledges the mutation, its rows are simply the truth.
    replica.apply_page(page(rows("customers", customer_row(CUSTOMER, version=5, name="张总")), last=1))
    assert replica.pending_count() == 0


def result(mutation_id: int, status: str = "applied", *changes: proto.TableRows, **extra: Any) -> proto.MutationResult:
    return proto.MutationResult(id=mutation_id, status=status, rows=list(changes), **extra)  # type: ignore[arg-type]


def test_push_reply_applied_with_server_rows_and_lost_fields(replica):
    replica.update_customer(CUSTOMER, city="杭州", name="张三丰")
    visit = replica.log_visit(CUSTOMER, "hi")
    kept = proto.hlc_format(int(NOW_MS) + 1000, 0, "x")
    server_row = customer_row(CUSTOMER, version=10, name="张三爷", city="杭州")
    loss = proto.FieldLoss(field="name", kept_value="张三爷", kept_by=uuid.UUID(COLLEAGUE), kept_hlc=kept)
    conflicts = replica.apply_push(
        proto.PushResponse(
            results=[result(1, "applied", rows("customers", server_row), lost_fields=[loss])], last_mutation_id=1
        )
    )
    assert [e.id for e in replica.pending()] == [2]
    assert one(replica, "SELECT name, city, version FROM customers WHERE id = ?", CUSTOMER) == ("张三爷", "杭州", 10)
    assert one(replica, "SELECT count(*) FROM interactions WHERE id = ?", str(visit)) == 1  # still pending, rebased
    (conflict,) = conflicts
    assert (conflict.kind, conflict.field, conflict.my_value, conflict.kept_value) == (
        "lost_field",
        "name",
        "张三丰",
        "张三爷",
    )
    assert conflict.kept_by_name == "王经理" and conflict.customer_id == CUSTOMER
    assert conflict.kept_at == "2025-06-10T04:00:01.000000Z"
    assert "王经理" in conflict.message
    assert replica.conflicts(unseen_only=True) == conflicts
    replica.mark_conflicts_seen()
    assert replica.conflicts(unseen_only=True) == [] and len(replica.conflicts()) == 1


def test_rejected_mutations_restore_server_rows_and_delete_refused_creates(replica):
    deal_id = str(uuid7())
    replica.apply_page(
        page(
            rows(
                "opportunities",
                row(
                    "opportunities",
                    id=deal_id,
                    version=4,
                    store_id=STORE,
                    customer_id=CUSTOMER,
                    owner_id=ME,
                    title="沙发",
                    stage_id=STAGE_IDS["lead"],
                    amount="3000.00",
                ),
            ),
            cursor="c2",
        )
    )
    created = replica.create_customer("新客户", phone="13812345678")  # 1
    replica.move_opportunity(deal_id, "proposal")  # 2
    replica.update_opportunity(deal_id, contract_end_date="2026-06-30")  # 3, stays pending
    phone_id = replica.pending()[0].args["phone_id"]
    server_deal = row(
        "opportunities",
        id=deal_id,
        version=6,
        store_id=STORE,
        customer_id=CUSTOMER,
        owner_id=ME,
        title="沙发",
        stage_id=STAGE_IDS["won"],
        amount="3000.00",
    )
    conflicts = replica.apply_push(
        proto.PushResponse(
            results=[
                result(1, "rejected", reason="the phone +8613812345678 belongs to another customer", field="phone"),
                result(2, "rejected", rows("opportunities", server_deal), reason="opportunity is already closed"),
            ],
            last_mutation_id=2,
        )
    )
    assert one(replica, "SELECT count(*) FROM customers WHERE id = ?", str(created)) == 0
    assert one(replica, "SELECT count(*) FROM customer_phones WHERE id = ?", phone_id) == 0
    # The server's row is back (won), and the pending change is re-applied on top of it.
    assert one(replica, "SELECT stage_id, contract_end_date, version FROM opportunities WHERE id = ?", deal_id) == (
        STAGE_IDS["won"],
        "2026-06-30",
        6,
    )
    assert [c.kind for c in conflicts] == ["rejected", "rejected"]
    assert conflicts[0].reason.startswith("the phone") and conflicts[0].field == "phone"
    assert conflicts[1].mutation == "opportunity.move" and conflicts[1].row_id == deal_id
    assert [e.id for e in replica.pending()] == [3]


def test_a_duplicate_push_reply_changes_nothing(replica):
    replica.log_visit(CUSTOMER, "x")
    reply = proto.PushResponse(results=[result(1)], last_mutation_id=1)
    replica.apply_push(reply)
    replica.apply_push(reply)
    assert replica.pending_count() == 0 and replica.conflicts() == []


def conflict_row(loser: str, *, loser_hlc: str, field: str = "address", ident: str | None = None) -> list[Any]:
    """A synced ``sync_conflicts`` row: the colleague's later value replaced ``loser``'s."""
    return row(
        "sync_conflicts",
        id=ident or str(uuid7()),
        store_id=STORE,
        customer_id=CUSTOMER,
        field=field,
        winner_value="王经理写的地址",
        loser_value="我写的地址",
        winner_user_id=COLLEAGUE,
        loser_user_id=loser,
        winner_hlc=proto.hlc_format(int(NOW_MS) + 5_000, 0, "colleague"),
        loser_hlc=loser_hlc,
        at=ts(NOW + dt.timedelta(seconds=6)),
    )


def test_a_synced_conflict_row_of_mine_is_logged_once(replica):
    """My edit was applied (no loss in the push reply), then a later unseeing edit replaced it:
    the store's synced sync_conflicts row is the only word of it, and the log shows it once."""
    mine = proto.hlc_format(int(NOW_MS), 0, "me")
    ident = str(uuid7())
    synced = page(
        rows(
            "sync_conflicts",
            conflict_row(ME, loser_hlc=mine, ident=ident),
            conflict_row(MANAGER, loser_hlc=proto.hlc_format(int(NOW_MS), 0, "mgr")),  # not mine
        ),
        cursor="c2",
    )
    replica.apply_page(synced)
    (conflict,) = replica.conflicts(unseen_only=True)
    assert (conflict.kind, conflict.customer_id, conflict.field, conflict.my_value, conflict.kept_value) == (
        "lost_field",
        CUSTOMER,
        "address",
        "我写的地址",
        "王经理写的地址",
    )
    assert (conflict.kept_by, conflict.kept_by_name) == (COLLEAGUE, "王经理")
    assert conflict.kept_at == "2025-06-10T04:00:06.000000Z"
    assert conflict.mutation == "customer.update" and conflict.row_id == CUSTOMER
    assert "王经理" in conflict.message
    assert one(replica, "SELECT source_id, my_hlc FROM conflicts") == (ident, mine)
    replica.mark_conflicts_seen()
    # Re-pulled, after a reset, in a fresh snapshot: still the one entry (and still seen).
    replica.apply_page(synced)
    replica.reset()
    replica.apply_page(base_page())
    replica.apply_page(synced)
    assert replica.conflicts() == [msgspec.structs.replace(conflict, seen=True)]
    # A tombstone of the row leaves the log alone.
    tombstone = conflict_row(ME, loser_hlc=mine, ident=ident)
    tombstone[2] = True  # deleted
    replica.apply_page(page(rows("sync_conflicts", tombstone), cursor="c3"))
    assert len(replica.conflicts()) == 1
    # A winner this phone has no user row for yet gets a name once a page brings the user.
    other = conflict_row(ME, field="city", loser_hlc=proto.hlc_format(int(NOW_MS), 1, "me"))
    other[proto.TABLES_BY_NAME["sync_conflicts"].column_names.index("winner_user_id")] = MANAGER
    replica.apply_page(page(rows("sync_conflicts", other), cursor="c4"))
    assert (replica.conflicts()[0].kept_by, replica.conflicts()[0].kept_by_name) == (MANAGER, None)
    replica.apply_page(page(rows("users", row("users", id=MANAGER, display_name="陈店长", role="rep")), cursor="c5"))
    assert replica.conflicts()[0].kept_by_name == "陈店长"


def test_a_loss_the_push_reply_logged_is_not_logged_again_from_the_synced_row(replica):
    replica.update_customer(CUSTOMER, address="我写的地址")
    (mutation,) = replica.pending()
    kept = proto.hlc_format(int(NOW_MS) + 5_000, 0, "colleague")
    loss = proto.FieldLoss(field="address", kept_value="王经理写的地址", kept_by=uuid.UUID(COLLEAGUE), kept_hlc=kept)
    (logged,) = replica.apply_push(
        proto.PushResponse(results=[result(1, "applied", lost_fields=[loss])], last_mutation_id=1)
    )
    ident = str(uuid7())
    replica.apply_page(page(rows("sync_conflicts", conflict_row(ME, loser_hlc=mutation.hlc, ident=ident))))
    assert replica.conflicts() == [logged]
    assert one(replica, "SELECT source_id FROM conflicts") == ident  # remembered: re-pulls skip it at once

    # The other order (the pull told of it before the push reply did): still one entry.
    replica.update_customer(CUSTOMER, city="苏州")
    (second,) = replica.pending()
    replica.apply_page(page(rows("sync_conflicts", conflict_row(ME, field="city", loser_hlc=second.hlc)), cursor="c3"))
    city = proto.FieldLoss(field="city", kept_value="王经理写的地址", kept_by=uuid.UUID(COLLEAGUE), kept_hlc=kept)
    assert (
        replica.apply_push(proto.PushResponse(results=[result(2, "applied", lost_fields=[city])], last_mutation_id=2))
        == []
    )
    assert [(c.field, c.mutation_id) for c in replica.conflicts()] == [("city", 2), ("address", 1)]


def test_a_conflict_log_an_older_app_made_gains_the_new_columns(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE conflicts (
            id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL,
            mutation_id INTEGER, mutation TEXT, table_name TEXT, row_id TEXT, customer_id TEXT, field TEXT,
            my_value TEXT, kept_value TEXT, kept_by TEXT, kept_by_name TEXT, kept_at TEXT, reason TEXT,
            seen INTEGER NOT NULL DEFAULT 0
        );
        INSERT INTO conflicts (at, kind, mutation, reason)
        VALUES ('2025-06-01T00:00:00.000000Z', 'rejected', 'x', 'no');
        """
    )
    db.commit()
    db.close()
    r = Replica(path, clock_ms=lambda: NOW_MS)
    r.set_identity(ME)
    assert {"my_hlc", "source_id"} <= {c[1] for c in r.db.execute("PRAGMA table_info(conflicts)")}
    assert [c.reason for c in r.conflicts()] == ["no"]
    r.apply_page(base_page())
    r.apply_page(page(rows("sync_conflicts", conflict_row(ME, loser_hlc=proto.hlc_format(int(NOW_MS), 0, "me")))))
    assert [c.kind for c in r.conflicts()] == ["lost_field", "rejected"]
    r.close()
    r = Replica(path, clock_ms=lambda: NOW_MS)  # and opens again as it is
    assert len(r.conflicts()) == 2
    r.close()


def test_hlc_skew_an_edit_after_seeing_a_value_is_later_than_its_stamp(tmp_path):
    behind = NOW_MS - 3_600_000  # this phone's clock is an hour slow
    r = Replica(tmp_path / "slow.sqlite3", clock_ms=lambda: behind)
    r.set_identity(ME)
    r.apply_page(base_page())
    seen = proto.hlc_format(int(NOW_MS), 7, "otherphone")
    clocks = json.dumps({"city": {"hlc": seen, "by": COLLEAGUE}})
    r.apply_page(page(rows("customers", customer_row(CUSTOMER, version=2, city="北京", field_clocks=clocks))))
    r.update_customer(CUSTOMER, city="上海")
    stamp = r.pending()[-1].hlc
    assert stamp > seen and proto.hlc_parse(stamp)[:2] == (int(NOW_MS), 8)
    assert one(r, "SELECT city FROM customers WHERE id = ?", CUSTOMER) == "上海"
    r.close()
    # The clock is remembered across restarts: still later, never going back.
    r = Replica(tmp_path / "slow.sqlite3", clock_ms=lambda: behind)
    r.log_visit(CUSTOMER)
    assert r.pending()[-1].hlc > stamp
    r.close()

    ahead = NOW_MS + 86_400_000  # a day fast: stamps run ahead (the server caps them)
    r = Replica(tmp_path / "fast.sqlite3", clock_ms=lambda: ahead)
    r.set_identity(ME)
    r.apply_page(base_page())
    r.update_customer(CUSTOMER, city="广州")
    assert proto.hlc_parse(r.pending()[-1].hlc)[0] == int(ahead)
    msgspec.convert(msgspec.to_builtins(r.pending()[-1].to_mutation()), proto.Mutation)  # a valid stamp
    r.close()


# --- local queries ----------------------------------------------------------------------------------


@pytest.fixture
def populated(replica):
    rng = random.Random(7)
    customers, phones, orders, lines, interactions, deals, tasks = [], [], [], [], [], [], []
    for n in range(300):
        cid = str(uuid7())
        owner = ME if n % 3 == 0 else COLLEAGUE
        customers.append(customer_row(cid, owner=owner, name=f"客户{n:03d}"))
        phones.append(
            row(
                "customer_phones",
                id=str(uuid7()),
                store_id=STORE,
                customer_id=cid,
                number=f"+86139{n:08d}",
                digits=f"139{n:08d}",
                kind="mobile",
                is_primary=True,
                created_at=ts(NOW),
            )
        )
        amount = 6000 if n % 10 == 0 else 100
        oid = str(uuid7())
        orders.append(
            row(
                "orders",
                id=oid,
                store_id=STORE,
                customer_id=cid,
                channel="store" if n % 2 else "online",
                ordered_at=ts(NOW - dt.timedelta(days=30)),
                amount=f"{amount}.00",
            )
        )
        lines.append(
            row(
                "order_lines",
                id=str(uuid7()),
                store_id=STORE,
                order_id=oid,
                product_name="沙发",
                quantity=1,
                amount="1",
            )
        )
        days_ago = 5 if n % 4 == 0 else 45
        for _ in range(rng.randint(1, 4)):
            interactions.append(
                row(
                    "interactions",
                    id=str(uuid7()),
                    store_id=STORE,
                    customer_id=cid,
                    user_id=owner,
                    kind="visit",
                    channel="store",
                    occurred_at=ts(NOW - dt.timedelta(days=days_ago, hours=rng.randint(0, 20))),
                )
            )
        if n % 5 == 0:
            deals.append(
                row(
                    "opportunities",
                    id=str(uuid7()),
                    store_id=STORE,
                    customer_id=cid,
                    owner_id=owner,
                    title="deal",
                    stage_id=STAGE_IDS["lead" if n % 10 == 0 else "won"],
                    amount="100.00",
                    created_at=ts(NOW),
                )
            )
        if owner == ME and n < 60:
            due = NOW + dt.timedelta(hours=(n % 6) * 5 - 10)  # from 10 h ago to 15 h ahead
            tasks.append(
                row(
                    "tasks",
                    id=str(uuid7()),
                    store_id=STORE,
                    owner_id=ME,
                    customer_id=cid,
                    kind="call" if n % 2 else "follow_up",
                    title=f"task {n}",
                    due_at=ts(due),
                    status="open",
                )
            )
    replica.apply_page(
        page(
            rows("customers", *customers),
            rows("customer_phones", *phones),
            rows("orders", *orders),
            rows("order_lines", *lines),
            rows("interactions", *interactions),
            rows("opportunities", *deals),
            rows("tasks", *tasks),
            cursor="c5",
        )
    )
    return replica


def test_search_by_name_phone_digits_and_filters(populated):
    hits = queries.search_customers(populated, "客户01", now=NOW)
    assert [h.name for h in hits] == [f"客户{n:03d}" for n in range(10, 20)]
    assert hits[0].phone == "139****0010"
    by_phone = queries.search_customers(populated, "0000 0123", now=NOW, unmask=True)
    assert [(h.name, h.phone) for h in by_phone] == [("客户123", "+8613900000123")]
    short = queries.search_customers(populated, "12", now=NOW)  # two digits: a name search
    assert short and all("12" in h.name for h in short)
    mine = queries.search_customers(populated, mine=True, limit=1000, now=NOW)
    assert len(mine) == 100 + 1  # the fixture's own customer is mine too
    high = queries.search_customers(populated, high_value=True, limit=1000, now=NOW)
    assert len(high) == 30 and all(int(h.name[2:]) % 10 == 0 for h in high)
    open_deals = queries.search_customers(populated, open_opportunity=True, limit=1000, now=NOW)
    assert len(open_deals) == 30
    stale = queries.search_customers(populated, "客户", not_contacted_days=30, limit=1000, now=NOW)
    assert len(stale) == 225 and all(int(h.name[2:]) % 4 for h in stale)
    combined = queries.search_customers(populated, mine=True, high_value=True, open_opportunity=True, now=NOW)
    assert {int(h.name[2:]) % 30 for h in combined} == {0}


def test_customer_card(populated):
    cid = queries.search_customers(populated, "客户030", now=NOW)[0].id
    populated.add_tag(cid, "VIP")
    populated.log_visit(cid, "今天来店")
    card = queries.customer_card(populated, cid, now=NOW)
    assert card is not None
    assert card.profile["name"] == "客户030" and card.profile["store_code"] == "SH01"
    assert card.phones[0].number == "139****0030" and card.phones[0].masked
    assert queries.customer_card(populated, cid, unmask=True, now=NOW).phones[0].number == "+8613900000030"
    assert [t["tag"] for t in card.tags] == ["VIP"]
    assert card.value.tier == "high" and card.value.amount_12m == 6000 and card.value.online_amount == 6000
    assert card.orders[0].lines[0].product_name == "沙发"
    assert card.interactions[0].body == "今天来店" and card.interactions[0].pending
    assert card.interactions[0].user_name == "小李"
    assert card.opportunities[0].stage == "lead" and card.opportunities[0].stage_kind == "open"
    assert card.tasks and not card.complaints
    assert queries.customer_card(populated, str(uuid7())) is None


def test_today_tasks_grouped_by_kind_in_the_users_time_zone(populated):
    today = queries.today_tasks(populated, ME, tz="Asia/Shanghai", now=NOW)
    due = [t for group in today.values() for t in group]
    # End of today in Shanghai is 16:00 UTC: 12 hours after NOW.
    assert due and all(t.due_at < "2025-06-10T16:00:00" for t in due)
    assert set(today) == {"call", "follow_up"}
    assert any(t.overdue for t in due) and any(not t.overdue for t in due)
    everything = queries.today_tasks(populated, ME, tz="America/Los_Angeles", now=NOW)  # still the 9th there
    assert sum(map(len, everything.values())) < len(due)
    populated.complete_task(due[0].id)
    after = queries.today_tasks(populated, ME, tz="Asia/Shanghai", now=NOW)
    assert sum(map(len, after.values())) == len(due) - 1


# --- the engine, against an HTTP double -------------------------------------------------------------


class FakeServer:
    """A minimal stand-in for the sync endpoints (the process edge), recording requests."""

    def __init__(self) -> None:
        self.applied = 0
        self.requests: list[tuple[str, Any]] = []
        self.fail: list[int] = []  # status codes to answer next, in order
        self.drop_reply = 0  # handle the next N pushes but lose the reply
        self.tokens = {"good"}
        self.pages = [base_page("p1")]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") not in {f"Bearer {t}" for t in self.tokens}:
            return httpx.Response(401, json={"detail": "token expired"})
        body = json.loads(request.content)
        self.requests.append((request.url.path, body))
        if self.fail:
            code = self.fail.pop(0)
            return httpx.Response(code, json={"detail": f"status {code}", "field": "mutations"})
        if request.url.path == "/api/sync/push":
            results = []
            for mutation in body["mutations"]:
                if mutation["id"] > self.applied:
                    self.applied = mutation["id"]
                results.append({"id": mutation["id"], "status": "applied"})
            if self.drop_reply:
                self.drop_reply -= 1
                raise httpx.ReadError("connection reset", request=request)
            return httpx.Response(
                200, content=msgspec.json.encode({"results": results, "last_mutation_id": self.applied})
            )
        cursor = body["cursor"]
        index = 0 if cursor is None else int(cursor[1:])
        current = self.pages[index] if index < len(self.pages) else page()
        current = msgspec.structs.replace(
            current, cursor=f"p{index + 1}", has_more=index + 1 < len(self.pages), last_mutation_id=self.applied
        )
        return httpx.Response(200, content=msgspec.json.encode(current))


@pytest.fixture
def engine_parts(tmp_path):
    server = FakeServer()
    r = Replica(tmp_path / "e.sqlite3", clock_ms=lambda: NOW_MS)
    r.set_identity(ME)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0)

    tokens: list[bool] = []

    def token(refresh: bool) -> str:
        tokens.append(refresh)
        return "good" if refresh else "stale"

    engine = SyncEngine(
        r, "http://phone.test", token, httpx.MockTransport(server), sleep=sleep, random=lambda: 1.0, pull_limit=10
    )
    yield server, r, engine, sleeps, tokens
    r.close()


async def test_engine_first_sync_pages_refreshes_the_token_and_pushes(engine_parts):
    server, r, engine, _, tokens = engine_parts
    server.pages.append(page(rows("customers", customer_row(str(uuid7()), name="二页"))))
    seen: list[str] = []
    engine.on_change.append(lambda status: seen.append(status.state))
    status = await engine.sync()
    assert status.state == "synced" and status.last_synced_at
    assert tokens == [False, True]  # a 401, then one refresh
    assert r.cursor == "p2" and one(r, "SELECT count(*) FROM customers") == 2
    r.log_visit(CUSTOMER, "x")
    assert engine.status.state == "pending" and engine.status.pending == 1
    await engine.sync()
    assert r.pending_count() == 0 and server.applied == 1
    assert [p for p, _ in server.requests][-2:] == ["/api/sync/push", "/api/sync/pull"]
    assert "syncing" in seen and seen[-1] == "synced"
    await engine.aclose()


async def test_engine_retries_with_backoff_and_survives_a_lost_push_reply(engine_parts):
    server, r, engine, sleeps, _ = engine_parts
    await engine.sync()
    for _ in range(3):
        r.log_visit(CUSTOMER)
    server.fail = [503, 429, 500]
    server.drop_reply = 1
    status = await engine.sync()
    assert status.state == "synced" and r.pending_count() == 0
    assert sleeps == [0.5, 1.0, 2.0, 4.0]  # full jitter with random() = 1: base · 2^(n-1)
    pushes = [b for p, b in server.requests if p == "/api/sync/push"]
    assert [m["id"] for m in pushes[-1]["mutations"]] == [1, 2, 3]  # the same batch, sent again


async def test_engine_stops_on_a_client_error_and_keeps_the_outbox(engine_parts):
    server, r, engine, _, _ = engine_parts
    await engine.sync()
    r.log_visit(CUSTOMER)
    server.fail = [422]
    status = await engine.sync()
    assert status.state == "error" and "422" in status.last_error and r.pending_count() == 1
    server.fail = [503] * 10
    status = await engine.sync()
    assert status.state == "error" and r.pending_count() == 1  # gave up after max_attempts
    status = await engine.sync()
    assert status.state == "synced" and r.pending_count() == 0
    await engine.aclose()


async def test_engine_resets_when_the_server_asks(engine_parts):
    server, r, engine, _, _ = engine_parts
    await engine.sync()
    r.log_visit(CUSTOMER, "keep me")
    reset = proto.PullResponse(
        changes=[], cursor="p0", has_more=True, last_mutation_id=0, scopes_removed=[], reset_required=True
    )
    server.pages.append(reset)  # the page after p1
    original = server.pages

    def fresh_after_reset(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path == "/api/sync/pull" and body["cursor"] is None:
            server.pages = original[:1]
        return server(request)

    engine.client._transport = httpx.MockTransport(fresh_after_reset)
    status = await engine.sync()
    assert status.state == "synced" and r.cursor == "p1"
    assert one(r, "SELECT count(*) FROM customers") == 1
    assert server.applied == 1


async def test_engine_listens_for_pokes(engine_parts):
    server, r, engine, _, _ = engine_parts
    engine._token = "good"

    def events(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/sync/events":
            stream = b'event: poke\ndata: {"scope": "org", "version": 3}\n\n: keep-alive\n\n'
            return httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})
        return server(request)

    engine.client._transport = httpx.MockTransport(events)
    task = asyncio.create_task(engine.listen())
    for _ in range(200):
        await asyncio.sleep(0.01)
        if engine.rounds:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engine.rounds >= 1 and one(r, "SELECT count(*) FROM customers") == 1
    await engine.aclose()


def test_a_first_sync_page_replaces_whatever_the_replica_held_before(tmp_path):
    """A row the phone learnt before its first pull (a push answer, an acknowledged edit) may have
    been deleted since; the snapshot skips old tombstones, so the first page starts from empty."""
    r = Replica(tmp_path / "fresh.sqlite3", clock_ms=lambda: NOW_MS)
    r.set_identity(ME)
    tag = str(uuid7())
    stale = rows("customer_tags", row("customer_tags", id=tag, store_id=STORE, customer_id=CUSTOMER, tag="旧标签"))
    r.apply_push(proto.PushResponse(results=[], last_mutation_id=0))
    r.db.execute("BEGIN")
    r._write_rows(rows("customers", customer_row(CUSTOMER, name="张三")))  # as push answers would, before any pull
    r._write_rows(stale)
    r.db.execute("COMMIT")
    assert one(r, "SELECT count(*) FROM customer_tags") == 1
    visit = r.log_visit(CUSTOMER, "还没推送")  # pending: survives, re-applied on top
    r.apply_page(base_page(cursor="first"))
    assert one(r, "SELECT count(*) FROM customer_tags") == 0
    assert one(r, "SELECT count(*) FROM interactions WHERE id = ?", str(visit)) == 1
    # Later pages of the same sync keep what earlier ones brought.
    r.apply_page(page(rows("customer_tags", row("customer_tags", id=tag, store_id=STORE, customer_id=CUSTOMER,
                                                tag="新")), cursor="second"))  # fmt: skip
    r.apply_page(page(cursor="third"))
    assert one(r, "SELECT count(*) FROM customer_tags") == 1
    r.close()
