"""The rules an admin edits through the API: who may change what, and bad input answered with a
clear 4xx that changes nothing."""

from __future__ import annotations

import pytest

from server.rules.tables import Rule, RuleStore


async def _snapshot():
    return (
        sorted(
            (r["code"], r["enabled"], str(r["params"]), r["title_zh"], r["cooldown_hours"]) for r in await Rule.select()
        ),
        sorted((str(r["rule_id"]), str(r["store_id"]), r["enabled"]) for r in await RuleStore.select()),
    )


async def test_everyone_reads_the_rules_with_their_stores_switches(client, login):
    rules = (await client.get("/api/rules", headers=await login("manager.bjcy"))).json()
    codes = {r["code"] for r in rules}
    assert {"stage_idle", "stage_escalation", "no_follow_up", "complaint_callback", "browse_interest"} <= codes
    browse = next(r for r in rules if r["code"] == "browse_interest")
    assert browse["params"]["minutes"] == 5 and browse["cooldown_hours"] == 72
    assert "{customer}" in browse["title_zh"] and browse["title_en"]


async def test_an_admin_changes_a_rule_for_the_chain_and_a_manager_switches_it_for_a_store(client, login, stores):
    admin = await login("admin")
    changed = await client.patch(
        "/api/rules/browse_interest", json={"params": {"minutes": 8}, "cooldown_hours": 48}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["params"]["minutes"] == 8 and changed.json()["cooldown_hours"] == 48

    manager = await login("manager.bjcy")
    switched = await client.put(
        f"/api/rules/browse_interest/stores/{stores['BJ-CY']}", json={"enabled": False}, headers=manager
    )
    assert switched.status_code == 200, switched.text
    assert [(s["store_id"], s["enabled"]) for s in switched.json()["stores"]] == [(str(stores["BJ-CY"]), False)]
    # the manager of BJ-CY does not see SH-PD's switches, and cannot set them
    other = await client.put(
        f"/api/rules/browse_interest/stores/{stores['SH-PD']}", json={"enabled": False}, headers=manager
    )
    assert other.status_code == 404

    back = await client.delete(f"/api/rules/browse_interest/stores/{stores['BJ-CY']}", headers=manager)
    assert back.status_code == 200 and back.json()["stores"] == []
    restored = await client.patch(
        "/api/rules/browse_interest", json={"params": {"minutes": 5}, "cooldown_hours": 72}, headers=admin
    )
    assert restored.status_code == 200


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "status", "says"),
    [
        ("manager.bjcy", "patch", "/api/rules/stage_idle", {"enabled": False}, 403, "admin"),
        ("rep.bjcy", "put", "/api/rules/stage_idle/stores/{BJ-CY}", {"enabled": False}, 403, "rep"),
        ("admin", "patch", "/api/rules/no_such_rule", {"enabled": False}, 404, "no_such_rule"),
        ("admin", "patch", "/api/rules/stage_idle", {}, 422, "nothing to change"),
        ("admin", "patch", "/api/rules/browse_interest", {"params": {"minutes": 0}}, 422, "minutes"),
        ("admin", "patch", "/api/rules/browse_interest", {"params": {"minutes": "5"}}, 422, "minutes"),
        ("admin", "patch", "/api/rules/browse_interest", {"params": {"speed": 3}}, 422, "speed"),
        ("admin", "patch", "/api/rules/stage_idle", {"params": {"idle_days": {"proposal": 0}}}, 422, "idle_days"),
        ("admin", "patch", "/api/rules/no_follow_up", {"title_zh": "跟进 {nobody}"}, 422, "nobody"),
        ("admin", "patch", "/api/rules/no_follow_up", {"title_zh": ""}, 400, "title_zh"),
        ("admin", "patch", "/api/rules/no_follow_up", {"cooldown_hours": -1}, 400, "cooldown_hours"),
        ("admin", "patch", "/api/rules/no_follow_up", {"owner": "x"}, 400, "owner"),
        ("admin", "put", "/api/rules/stage_idle/stores/{BJ-CY}", {"enabled": "yes"}, 400, "enabled"),
    ],
)
async def test_bad_rule_changes_are_refused_and_change_nothing(
    client, login, stores, who, method, path, body, status, says
):
    before = await _snapshot()
    headers = await login(who)
    url = path.replace("{BJ-CY}", str(stores["BJ-CY"]))
    response = await getattr(client, method)(url, json=body, headers=headers)
    assert response.status_code == status, response.text
    assert says in response.text
    assert await _snapshot() == before
