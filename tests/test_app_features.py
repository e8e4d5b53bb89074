"""Per-store feature switches reach the phone: head office switches quick actions and push off for
SH-PD; after its next sync rep.shpd's card has no quick-action buttons and the Sync page no push
settings, while rep.bjcy's app (another store) keeps both; switched back on, they return."""

from __future__ import annotations

from mobile.mutators import fetch_one
from mobile.ui.card import CardScreen
from mobile.ui.screens import SyncScreen
from mobile.ui.shell import Shell
from tests.flet_tree import find, has, render
from tests.test_app_state import no_device_left, sign_in


async def _switch(client, login, store: str, feature: str, enabled: bool) -> None:
    answer = await client.put(
        f"/api/rollout/features/{store}/{feature}", json={"enabled": enabled}, headers=await login("admin")
    )
    assert answer.status_code == 200, answer.text


async def test_a_feature_switched_off_for_a_store_disappears_from_its_reps_app(live_server, tmp_path, client, login):
    shpd = (await sign_in(live_server.url, tmp_path / "shpd", "rep.shpd")).state
    bjcy = (await sign_in(live_server.url, tmp_path / "bjcy", "rep.bjcy")).state
    try:
        for state in (shpd, bjcy):
            await state.sync_now()
        shanghai = fetch_one(shpd.replica.db, "SELECT id FROM customers ORDER BY name LIMIT 1")["id"]
        beijing = fetch_one(bjcy.replica.db, "SELECT id FROM customers ORDER BY name LIMIT 1")["id"]
        assert has(render(lambda: Shell(shpd, CardScreen(shpd, shanghai))), key="qa-visit")
        assert has(render(lambda: Shell(shpd, SyncScreen(shpd))), key="prefs-quiet")

        await _switch(client, login, "SH-PD", "quick_actions", False)
        await _switch(client, login, "SH-PD", "push", False)
        try:
            assert has(render(lambda: Shell(shpd, CardScreen(shpd, shanghai))), key="qa-visit")  # not synced yet
            await shpd.sync_now()
            await bjcy.sync_now()
            assert not shpd.feature_on("quick_actions") and not shpd.feature_on("push")
            assert not has(render(lambda: Shell(shpd, CardScreen(shpd, shanghai))), key="qa-visit")
            assert not has(render(lambda: Shell(shpd, SyncScreen(shpd))), key="prefs-quiet")
            # Beijing is not touched: its phone holds no Shanghai switch and shows everything.
            assert bjcy.feature_on("quick_actions") and bjcy.feature_on("push")
            assert has(render(lambda: Shell(bjcy, CardScreen(bjcy, beijing))), key="qa-visit")
            assert find(render(lambda: Shell(bjcy, SyncScreen(bjcy))), key="prefs-quiet") is not None
        finally:
            await _switch(client, login, "SH-PD", "quick_actions", True)
            await _switch(client, login, "SH-PD", "push", True)
        await shpd.sync_now()
        assert shpd.feature_on("quick_actions")
        assert has(render(lambda: Shell(shpd, CardScreen(shpd, shanghai))), key="qa-visit")
    finally:
        await shpd.close()
        await bjcy.close()
        no_device_left(tmp_path)
