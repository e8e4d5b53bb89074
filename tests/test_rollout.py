"""The roll-out: feature switches per store reach the worker (rule sweeps), the push plan and the
store's phones; who may switch what; waves; the adoption figures against the raw rows; the app's
daily activity counted from real pushes and pulls.

The behaviour tests run on the pilot stores BJ-CY and SH-PD at a clock far in the future (so the
sweep finds only this module's browsing) and remove what they made; every switch is put back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict

import pytest

from server import db
from server.analytics.filters import CHAIN_TZ, Filters, local_midnight
from server.auth.tables import User
from server.catalog.tables import Category
from server.customers.tables import Customer
from server.interactions.tables import Interaction
from server.notifications import dispatch
from server.notifications import service as notifications
from server.notifications.tables import PushSend
from server.rollout import activity
from server.rollout.service import adoption, feature_row_id
from server.rollout.tables import ActivityDay, Feedback, StoreFeature, Wave, WaveStore
from server.rules.service import DEFAULTS, sweep
from server.rules.tables import Rule, RuleStore
from server.stores.tables import Store
from server.sync.service import current_version, store_scope
from server.tasks.tables import Task
from shared import sync as proto
from shared.features import BEHAVIOUR_RULES, FEATURES, RULE_CODES
from shared.ids import uuid7
from tests.test_notifications import caller, make, states
from tests.test_notifications import world as notifications_world  # noqa: F401 — the fixture
from tests.test_rules import World, sh
from tests.test_rules import world as rules_world  # noqa: F401 — the fixture test_notifications' world wraps

FAR = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1000)  # nothing else browses then
MIN = dt.timedelta(minutes=1)


def test_the_catalogue_lists_every_rule_and_each_feature_once():
    assert RULE_CODES == tuple(spec.code for spec in DEFAULTS)
    assert set(BEHAVIOUR_RULES) <= set(RULE_CODES)
    codes = [f.code for f in FEATURES]
    assert len(codes) == len(set(codes))
    assert {"quick_actions", "behaviour_triggers", "push", "feedback"} <= set(codes)
    assert {f"rule.{c}" for c in RULE_CODES} <= set(codes)
    assert all(f.label_zh and f.label_en and f.description_zh and f.description_en for f in FEATURES)


# --- helpers ----------------------------------------------------------------------------------------


async def _switch(client, headers, store: str, feature: str, enabled: bool) -> dict:
    reply = await client.put(f"/api/rollout/features/{store}/{feature}", json={"enabled": enabled}, headers=headers)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["feature"] == feature and body["enabled"] is enabled and body["source"] == "store"
    return body


class Browsing:
    """Customers of this module in the demo stores, each browsing a sofa for ten minutes."""

    def __init__(self, stores: dict[str, uuid.UUID]) -> None:
        self.stores = stores
        self.customers: list[uuid.UUID] = []

    async def customer_browsing(self, code: str, at: dt.datetime) -> uuid.UUID:
        owner = await User.select(User.id).where(User.username == f"rep.{code.lower().replace('-', '')}").first()
        sofa = await Category.select(Category.id).where(Category.code == "sofa").first()
        customer = uuid7()
        self.customers.append(customer)
        await Customer.insert(
            Customer(id=customer, version=0, store_id=self.stores[code], owner_id=owner["id"], name="推广测试顾客")
        )
        await Interaction.insert(
            Interaction(
                id=uuid7(),
                version=0,
                store_id=self.stores[code],
                customer_id=customer,
                kind="browse",
                channel="online",
                occurred_at=at,
                duration_seconds=600,
                category_id=sofa["id"],
                body="推广测试",
            )
        )
        return customer

    async def sweep(self, now: dt.datetime) -> None:
        await sweep(now, codes=["browse_interest"], stores=[self.stores["BJ-CY"], self.stores["SH-PD"]])

    async def tasked(self, customer: uuid.UUID) -> bool:
        return await Task.count().where(Task.customer_id == customer) > 0

    async def remove(self) -> None:
        if self.customers:
            await Task.delete().where(Task.customer_id.is_in(self.customers))
            await Interaction.delete().where(Interaction.customer_id.is_in(self.customers))
            await Customer.delete().where(Customer.id.is_in(self.customers))


@pytest.fixture
async def browsing(stores):
    made = Browsing(stores)
    try:
        yield made
    finally:
        await made.remove()


# --- the worker ---------------------------------------------------------------------------------------


async def test_behaviour_triggers_off_stops_the_behaviour_rules_for_that_store_only(client, login, stores, browsing):
    admin = await login("admin")
    at = FAR
    await _switch(client, admin, "SH-PD", "behaviour_triggers", False)
    try:
        beijing = await browsing.customer_browsing("BJ-CY", at - 10 * MIN)
        shanghai = await browsing.customer_browsing("SH-PD", at - 10 * MIN)
        await browsing.sweep(at)
        assert await browsing.tasked(beijing)
        assert not await browsing.tasked(shanghai)
        listed = (await client.get("/api/rollout/features?store=SH-PD", headers=admin)).json()
        state = next(f for f in listed if f["feature"] == "behaviour_triggers")
        assert (state["enabled"], state["source"], state["kind"]) == (False, "store", "app")
    finally:
        await _switch(client, admin, "SH-PD", "behaviour_triggers", True)
    await browsing.sweep(at + MIN)  # on again: the browse still waiting makes its task now
    assert await browsing.tasked(shanghai)


async def test_a_rule_feature_is_the_rules_own_store_switch(client, login, stores, browsing):
    admin = await login("admin")
    at = FAR + dt.timedelta(hours=2)
    rule = await Rule.select(Rule.id).where(Rule.code == "browse_interest").first()
    try:
        await _switch(client, admin, "SH-PD", "rule.browse_interest", False)
        own = await RuleStore.select().where(
            (RuleStore.rule_id == rule["id"]) & (RuleStore.store_id == stores["SH-PD"])
        )
        assert [r["enabled"] for r in own] == [False]  # one source of truth: the rules screen shows it too
        rules = (await client.get("/api/rules", headers=admin)).json()
        switches = next(r for r in rules if r["code"] == "browse_interest")["stores"]
        assert {"store_id": str(stores["SH-PD"]), "enabled": False, "params": {}} in switches

        beijing = await browsing.customer_browsing("BJ-CY", at - 10 * MIN)
        shanghai = await browsing.customer_browsing("SH-PD", at - 10 * MIN)
        await browsing.sweep(at)
        assert await browsing.tasked(beijing) and not await browsing.tasked(shanghai)
        await _switch(client, admin, "SH-PD", "rule.browse_interest", True)
        await browsing.sweep(at + MIN)
        assert await browsing.tasked(shanghai)
    finally:
        await RuleStore.delete().where((RuleStore.rule_id == rule["id"]) & (RuleStore.store_id == stores["SH-PD"]))


# --- phones -----------------------------------------------------------------------------------------------


async def _pull(client, headers, device, cursor):
    rows: dict[str, dict] = {}
    while True:
        reply = await client.post(
            "/api/sync/pull",
            json={"client_id": str(device), "schema_version": proto.SCHEMA_VERSION, "cursor": cursor, "limit": 5000},
            headers=headers,
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert not body["reset_required"], body
        for page in body["changes"]:
            if page["table"] == "store_features":
                for row in page["rows"]:
                    item = dict(zip(page["columns"], row, strict=True))
                    rows[item["id"]] = item
        cursor = body["cursor"]
        if not body["has_more"]:
            return rows, cursor


async def test_a_switch_reaches_the_stores_phones_and_no_other_store(client, login, stores):
    admin, shpd, bjcy = await login("admin"), await login("rep.shpd"), await login("rep.bjcy")
    device_sh, device_bj = uuid7(), uuid7()
    _, cursor_sh = await _pull(client, shpd, device_sh, None)
    _, cursor_bj = await _pull(client, bjcy, device_bj, None)
    before = await current_version(store_scope(stores["SH-PD"]))
    await _switch(client, admin, "SH-PD", "push", False)
    try:
        assert await current_version(store_scope(stores["SH-PD"])) == before + 1  # in the store's change order
        seen, cursor_sh = await _pull(client, shpd, device_sh, cursor_sh)
        row = seen[str(feature_row_id(stores["SH-PD"], "push"))]
        assert (row["store_id"], row["feature"], row["enabled"], row["deleted"]) == (
            str(stores["SH-PD"]),
            "push",
            False,
            False,
        )
        other, _ = await _pull(client, bjcy, device_bj, cursor_bj)
        assert all(r["store_id"] != str(stores["SH-PD"]) for r in other.values())
        first_sync, _ = await _pull(client, bjcy, uuid7(), None)  # a fresh phone of BJ-CY: not SH-PD's either
        assert all(r["store_id"] == str(stores["BJ-CY"]) for r in first_sync.values())
    finally:
        await _switch(client, admin, "SH-PD", "push", True)
    seen, _ = await _pull(client, shpd, device_sh, cursor_sh)
    assert seen[str(feature_row_id(stores["SH-PD"], "push"))]["enabled"] is True


# --- push ---------------------------------------------------------------------------------------------------


async def test_push_off_keeps_the_message_but_sends_nothing(client, login, notifications_world: World):  # noqa: F811
    admin = await login("admin")
    quiet, loud = await notifications_world.shop(), await notifications_world.shop()
    devices = []
    try:
        for shop in (quiet, loud):
            async with db.transaction():
                devices.append(
                    await notifications.subscribe(
                        caller=caller(shop, shop.rep),
                        channel="fcm",
                        address=f"rollout-{uuid.uuid4().hex}",
                        label="测试手机",
                    )
                )
        await _switch(client, admin, str(quiet.id), "push", False)
        noon = sh(24, 12, 0)  # not in quiet hours
        held = await make(quiet.rep, "reminder", noon)
        told = await make(loud.rep, "reminder", noon)
        alarm = await make(quiet.rep, "complaint_sla", noon, critical=True)
        plan = await notifications.plan_pushes(noon)
        assert plan.off == 2 and plan.pushed >= 1
        assert await states(held + alarm) == ["off", "off"]  # the records stay in the message centre
        assert await states(told) == ["sent"]
        assert await PushSend.count().where(PushSend.notification_id.is_in(held + alarm)) == 0
        await _switch(client, admin, str(quiet.id), "push", True)
        later = await make(quiet.rep, "reminder", noon + MIN)
        await notifications.plan_pushes(noon + MIN)
        assert await states(later) == ["sent"]
    finally:
        for ident in devices:
            await dispatch.remove_subscription(ident, "test over", dt.datetime.now(dt.UTC))


# --- who may switch ---------------------------------------------------------------------------------------


async def test_who_reads_and_who_switches(client, login, stores):
    admin, region = await login("admin"), await login("region.north")
    manager, rep = await login("manager.bjcy"), await login("rep.bjcy")
    put = "/api/rollout/features/{}/quick_actions"

    before = await StoreFeature.select().order_by(StoreFeature.id)
    refused = await client.put(put.format("BJ-CY"), json={"enabled": False}, headers=manager)
    assert refused.status_code == 403 and "regional" in refused.text
    assert (await client.put(put.format("BJ-CY"), json={"enabled": False}, headers=rep)).status_code == 403
    assert (await client.put(put.format("SH-PD"), json={"enabled": False}, headers=region)).status_code == 404
    assert (await client.get("/api/rollout/features?store=SH-PD", headers=region)).status_code == 404
    assert await StoreFeature.select().order_by(StoreFeature.id) == before

    await _switch(client, region, "BJ-CY", "quick_actions", False)
    try:
        own = (await client.get("/api/rollout/features", headers=rep)).json()  # a rep: their own store
        assert {f["store_code"] for f in own} == {"BJ-CY"}
        assert next(f for f in own if f["feature"] == "quick_actions")["enabled"] is False
        assert {f["feature"] for f in own} == {f.code for f in FEATURES}
        assert (await client.get(f"/api/rollout/features?store={stores['BJ-CY']}", headers=manager)).status_code == 200
        assert (await client.get("/api/rollout/features?store=SH-PD", headers=rep)).status_code == 404
        assert (await client.get("/api/rollout/features?store=NOPE", headers=admin)).status_code == 404
    finally:
        await _switch(client, region, "BJ-CY", "quick_actions", True)

    # a regional manager switches a rule for a store of the region (the rule's own switch)
    rule = await Rule.select(Rule.id).where(Rule.code == "no_follow_up").first()
    try:
        body = await _switch(client, region, "BJ-CY", "rule.no_follow_up", False)
        assert body["kind"] == "rule"
    finally:
        await RuleStore.delete().where((RuleStore.rule_id == rule["id"]) & (RuleStore.store_id == stores["BJ-CY"]))


@pytest.mark.parametrize(
    ("who", "path", "body", "status", "says"),
    [
        ("admin", "/api/rollout/features/BJ-CY/teleport", {"enabled": False}, 404, "feature teleport not found"),
        ("admin", "/api/rollout/features/BJ-CY/push", {"enabled": False, "colour": "red"}, 400, "colour"),
        ("admin", "/api/rollout/features/BJ-CY/push", {"enabled": "no"}, 400, "enabled"),
        ("admin", "/api/rollout/features/BJ-CY/push", {}, 400, "enabled"),
        ("region.north", "/api/rollout/features/HZ-XH/push", {"enabled": False}, 404, "store HZ-XH not found"),
    ],
)
async def test_bad_switches_are_refused_and_change_nothing(client, login, who, path, body, status, says):
    before = await StoreFeature.select().order_by(StoreFeature.id)
    reply = await client.put(path, json=body, headers=await login(who))
    assert reply.status_code == status, reply.text
    assert says in reply.text
    assert await StoreFeature.select().order_by(StoreFeature.id) == before


async def test_head_office_names_the_store(client, login):
    reply = await client.get("/api/rollout/features", headers=await login("admin"))
    assert reply.status_code == 422 and "store" in reply.text


# --- waves --------------------------------------------------------------------------------------------------


async def test_waves_planned_and_live_moving_a_store_and_switching_a_wave(client, login, stores):
    admin, region = await login("admin"), await login("region.north")
    waves = (await client.get("/api/rollout/waves", headers=admin)).json()
    by_code = {w["code"]: w for w in waves}
    assert [w["code"] for w in waves][:3] == ["W1", "W2", "W3"]
    assert by_code["W1"]["status"] == "live" and by_code["W2"]["status"] == "planned"
    assert {s["code"] for s in by_code["W1"]["stores"]} == {"BJ-CY", "SH-PD"}
    assert {s["code"] for s in by_code["W2"]["stores"]} == {"BJ-HD", "TJ-HP"}
    w3 = [s["code"] for s in by_code["W3"]["stores"]]
    assert "NJ-XW" in w3
    mine = {
        w["code"]: [s["code"] for s in w["stores"]]
        for w in (await client.get("/api/rollout/waves", headers=region)).json()
    }
    assert mine["W1"] == ["BJ-CY"] and mine["W3"] == []  # a regional manager sees the region's stores

    refused = await client.post(
        "/api/rollout/waves", json={"code": "T1", "name": "测试", "starts_on": "2027-03-01"}, headers=region
    )
    assert refused.status_code == 403
    unknown = await client.post(
        "/api/rollout/waves",
        json={"code": "T1", "name": "测试", "starts_on": "2027-03-01", "stores": ["XX-1"]},
        headers=admin,
    )
    assert unknown.status_code == 422 and "XX-1" in unknown.text
    made = await client.post(
        "/api/rollout/waves",
        json={"code": "T1", "name": "测试批次", "starts_on": "2027-03-01", "stores": ["NJ-XW"], "notes": "临时"},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    test_wave = made.json()
    try:
        assert [s["code"] for s in test_wave["stores"]] == ["NJ-XW"] and test_wave["status"] == "planned"
        duplicate = await client.post(
            "/api/rollout/waves", json={"code": "T1", "name": "又一个", "starts_on": "2027-03-01"}, headers=admin
        )
        assert duplicate.status_code == 409
        after = {w["code"]: w for w in (await client.get("/api/rollout/waves", headers=admin)).json()}
        assert "NJ-XW" not in [s["code"] for s in after["W3"]["stores"]]  # moved, not in two waves

        moved = await client.patch(
            f"/api/rollout/waves/{test_wave['id']}",
            json={"stores": ["NJ-XW", "HZ-XH"], "starts_on": "2026-01-01"},
            headers=admin,
        )
        assert moved.status_code == 200, moved.text
        assert [s["code"] for s in moved.json()["stores"]] == ["HZ-XH", "NJ-XW"] and moved.json()["status"] == "live"
        nothing = await client.patch(f"/api/rollout/waves/{test_wave['id']}", json={}, headers=admin)
        assert nothing.status_code == 422

        switched = await client.post(
            f"/api/rollout/waves/{test_wave['id']}/features",
            json={"feature": "quick_actions", "enabled": False},
            headers=admin,
        )
        assert switched.status_code == 200, switched.text
        assert switched.json() == {
            "wave": "T1",
            "feature": "quick_actions",
            "enabled": False,
            "stores": ["HZ-XH", "NJ-XW"],
        }
        for code in ("HZ-XH", "NJ-XW"):
            rows = await StoreFeature.select().where(
                (StoreFeature.store_id == stores[code]) & (StoreFeature.feature == "quick_actions")
            )
            assert [r["enabled"] for r in rows] == [False]
        regional = await client.post(
            f"/api/rollout/waves/{test_wave['id']}/features",
            json={"feature": "quick_actions", "enabled": True},
            headers=region,
        )
        assert regional.status_code == 403
        again = await client.post(
            f"/api/rollout/waves/{test_wave['id']}/features",
            json={"feature": "quick_actions", "enabled": True},
            headers=admin,
        )
        assert again.status_code == 200
        missing = await client.patch(f"/api/rollout/waves/{uuid7()}", json={"name": "x"}, headers=admin)
        assert missing.status_code == 404
    finally:
        back = await client.patch(f"/api/rollout/waves/{by_code['W3']['id']}", json={"stores": w3}, headers=admin)
        assert back.status_code == 200
        await WaveStore.delete().where(WaveStore.wave_id == test_wave["id"])
        await Wave.delete().where(Wave.id == test_wave["id"])


# --- adoption -----------------------------------------------------------------------------------------------


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


async def _expected(start: dt.date, end: dt.date, now: dt.datetime) -> dict[str, tuple]:
    """The figures per store code, worked out here from the raw rows."""
    since, until = local_midnight(start), local_midnight(end + dt.timedelta(days=1))
    last = min(end, now.astimezone(CHAIN_TZ).date())
    days = (last - start).days + 1
    store_rows = await Store.select().where(Store.deleted.eq(False) & Store.active.eq(True))
    code = {r["id"]: r["code"] for r in store_rows}
    pilot = {r["code"]: r["pilot"] for r in store_rows}
    reps = {
        r["id"]: r["store_id"]
        for r in await User.select().where((User.role == "rep") & User.active.eq(True) & User.deleted.eq(False))
    }
    n_reps: dict[str, int] = defaultdict(int)
    for store_id in reps.values():
        n_reps[code.get(store_id)] += 1
    rep_days: dict[str, int] = defaultdict(int)
    rejected: dict[str, int] = defaultdict(int)
    for a in await ActivityDay.select():
        if start <= a["day"] <= last:
            if a["user_id"] in reps:
                rep_days[code.get(reps[a["user_id"]])] += 1
            rejected[code.get(a["store_id"])] += a["rejected"]
    customers = {r["id"]: r["store_id"] for r in await Customer.select().where(Customer.deleted.eq(False))}
    base: dict[str, int] = defaultdict(int)
    for store_id in customers.values():
        base[code.get(store_id)] += 1
    touched = {
        i["customer_id"]
        for i in await Interaction.select(Interaction.customer_id, Interaction.user_id, Interaction.occurred_at).where(
            Interaction.deleted.eq(False) & Interaction.user_id.is_not_null()
        )
        if since <= _aware(i["occurred_at"]) < until
    }
    due: dict[str, int] = defaultdict(int)
    on_time: dict[str, int] = defaultdict(int)
    for t in await Task.select().where(Task.deleted.eq(False)):
        if (
            t["status"] == "done"
            and t["customer_id"]
            and t["completed_at"]
            and since <= _aware(t["completed_at"]) < until
        ):
            touched.add(t["customer_id"])
        if t["status"] != "cancelled" and since <= _aware(t["due_at"]) < min(until, now):
            due[code.get(t["store_id"])] += 1
            if t["status"] == "done" and t["completed_at"] and _aware(t["completed_at"]) <= _aware(t["due_at"]):
                on_time[code.get(t["store_id"])] += 1
    hit: dict[str, int] = defaultdict(int)
    for c in touched:
        if c in customers:
            hit[code.get(customers[c])] += 1
    sent: dict[str, int] = defaultdict(int)
    for f in await Feedback.select(Feedback.store_id, Feedback.created_at):
        if since <= _aware(f["created_at"]) < until:
            sent[code.get(f["store_id"])] += 1

    def pct(part: int, whole: int) -> float | None:
        return None if whole == 0 else round(100 * part / whole, 1)

    out = {}
    groups = {True: [0] * 9, False: [0] * 9}
    for c in code.values():
        figures = (n_reps[c], rep_days[c], n_reps[c] * days, hit[c], base[c], on_time[c], due[c], rejected[c], sent[c])
        out[c] = (
            n_reps[c],
            pct(rep_days[c], n_reps[c] * days),
            pct(hit[c], base[c]),
            pct(on_time[c], due[c]),
            rejected[c],
            sent[c],
        )
        groups[pilot[c]] = [a + b for a, b in zip(groups[pilot[c]], figures, strict=True)]
    for is_pilot, label in ((True, "试点门店 pilot stores"), (False, "其他门店 other stores")):
        r, active, possible, h, b, ok, d, rej, s = groups[is_pilot]
        out[label] = (r, pct(active, possible), pct(h, b), pct(ok, d), rej, s)
    return out


async def test_adoption_matches_the_raw_rows_and_compares_pilots_with_the_rest(client, login):
    await activity.flush()
    now = dt.datetime.now(dt.UTC)
    end = now.astimezone(CHAIN_TZ).date()
    start = end - dt.timedelta(days=29)
    table = await adoption(Filters(start=start, end=end, store_ids=None), now)
    expected = await _expected(start, end, now)
    keys = [c.key for c in table.columns]
    assert keys == ["code", "name", "wave", "pilot", "reps", "active_reps", "cards_touched", "tasks_on_time",
                    "sync_rejections", "feedback"]  # fmt: skip
    got = {(row[0] or row[1]): tuple(row[4:]) for row in table.rows}
    assert got == expected
    assert [row[1] for row in table.rows[-2:]] == ["试点门店 pilot stores", "其他门店 other stores"]
    pilots = {row[0]: row for row in table.rows if row[0] in ("BJ-CY", "SH-PD")}
    assert {row[2] for row in pilots.values()} == {"W1 试点"}
    assert pilots["BJ-CY"][5] > 0 and expected["试点门店 pilot stores"][1] > (expected["其他门店 other stores"][1] or 0)
    assert [row[0] for row in table.rows[:2]] == ["BJ-CY", "SH-PD"]  # wave order
    assert len(table.drill) == len(table.rows)

    # Over HTTP, scoped: a regional manager's stores only; a rep has no reports.
    reply = await client.get(f"/api/rollout/adoption?from={start}&to={end}", headers=await login("region.north"))
    assert reply.status_code == 200, reply.text
    assert {row[0] for row in reply.json()["rows"] if row[0]} == {"BJ-CY", "BJ-HD", "TJ-HP"}
    assert (await client.get("/api/rollout/adoption", headers=await login("rep.bjcy"))).status_code == 403
    assert (await client.get("/api/rollout/adoption?from=2026-13-01", headers=await login("admin"))).status_code == 422


# --- activity -----------------------------------------------------------------------------------------------


async def _today_row(user_id: uuid.UUID) -> tuple[int, int, int]:
    day = dt.datetime.now(dt.UTC).astimezone(CHAIN_TZ).date()
    row = await ActivityDay.select().where((ActivityDay.user_id == user_id) & (ActivityDay.day == day)).first()
    return (row["pulls"], row["pushes"], row["rejected"]) if row else (0, 0, 0)


async def test_a_reps_pulls_and_pushes_are_counted_per_day(client, login, stores):
    rep = await login("rep2.bjcy")
    user = await login.user("rep2.bjcy")
    user_id = uuid.UUID(user["id"])
    await activity.flush()
    pulls, pushes, rejected = await _today_row(user_id)
    device = uuid7()
    reply = await client.post(
        "/api/sync/pull",
        json={"client_id": str(device), "schema_version": proto.SCHEMA_VERSION, "cursor": None, "limit": 10},
        headers=rep,
    )
    assert reply.status_code == 200
    await activity.flush()
    assert await _today_row(user_id) == (pulls + 1, pushes, rejected)

    customer = await Customer.select(Customer.id).where(Customer.store_id == stores["BJ-CY"]).first()
    hlc = proto.hlc_format(int(dt.datetime.now(dt.UTC).timestamp() * 1000), 0, "t")
    mutations = [
        {
            "id": 1,
            "name": "interaction.log",
            "hlc": hlc,
            "args": {"id": str(uuid7()), "customer_id": str(customer["id"]), "kind": "note", "body": "推广计数"},
        },
        {"id": 2, "name": "task.complete", "hlc": hlc, "args": {"task_id": str(uuid7())}},  # no such task: rejected
    ]
    body = {"client_id": str(device), "schema_version": proto.SCHEMA_VERSION, "mutations": mutations}
    pushed = await client.post("/api/sync/push", json=body, headers=rep)
    assert [r["status"] for r in pushed.json()["results"]] == ["applied", "rejected"]
    assert await _today_row(user_id) == (pulls + 1, pushes + 1, rejected + 1)  # written with the push
    again = await client.post("/api/sync/push", json=body, headers=rep)  # a replay: one more push, no new rejection
    assert again.status_code == 200
    assert await _today_row(user_id) == (pulls + 1, pushes + 2, rejected + 1)
    row = (
        await ActivityDay.select()
        .where(ActivityDay.user_id == user_id)
        .order_by(ActivityDay.day, ascending=False)
        .first()
    )
    assert row["store_id"] == stores["BJ-CY"] and _aware(row["first_at"]) <= _aware(row["last_at"])
