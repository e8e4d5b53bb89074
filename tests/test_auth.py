"""Login, token lifetimes, refresh rotation, logout, deactivation and login throttling."""

from __future__ import annotations

import jwt
import pytest

from server.auth.tables import LoginAttempt, User

PASSWORD = "floorwalker"


async def _login(client, username, password=PASSWORD):
    return await client.post("/api/auth/login", json={"username": username, "password": password})


@pytest.fixture(autouse=True)
async def _clear_attempts(demo):
    await LoginAttempt.delete(force=True)
    yield
    await LoginAttempt.delete(force=True)


async def test_login_returns_short_access_token_refresh_token_and_user(client):
    response = await _login(client, "rep.bjcy")
    assert response.status_code == 200, response.text
    body = response.json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] <= 15 * 60
    assert body["expires_in"] <= 15 * 60
    assert body["refresh_token"] and body["refresh_token"] != body["access_token"]
    assert body["user"]["username"] == "rep.bjcy"
    assert body["user"]["role"] == "rep"
    assert len(body["user"]["store_ids"]) == 1
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "rep.bjcy"
    stored = await User.select(User.password_hash).where(User.username == "rep.bjcy").first()
    assert stored["password_hash"].startswith("$argon2id$")


@pytest.mark.parametrize(("username", "password"), [("rep.bjcy", "wrong"), ("nobody", PASSWORD)])
async def test_wrong_credentials_answer_401_without_saying_which(client, username, password):
    response = await _login(client, username, password)
    assert response.status_code == 401
    assert response.json()["detail"] == "wrong username or password"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer not.a.jwt"}],
)
async def test_requests_without_a_valid_token_answer_401(client, headers):
    response = await client.get("/api/customers", headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"]


async def test_token_signed_with_another_key_is_refused(client):
    forged = jwt.encode({"sub": "x", "sid": "y", "typ": "access", "iat": 1, "exp": 4102444800}, "k" * 40)
    response = await client.get("/api/customers", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_refresh_rotates_and_reuse_of_a_rotated_token_revokes_the_family(client):
    first = (await _login(client, "rep2.bjcy")).json()
    second = await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    headers = {"Authorization": f"Bearer {second['access_token']}"}
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200

    replay = await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert "revoked" in replay.json()["detail"]
    # The stolen-token case: the whole session is now dead, the newer tokens included.
    again = await client.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert again.status_code == 401
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401


async def test_logout_ends_the_session_at_once(client):
    tokens = (await _login(client, "rep.shpd")).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.get("/api/customers", headers=headers)).status_code == 200
    out = await client.post("/api/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert out.status_code == 204
    assert (await client.get("/api/customers", headers=headers)).status_code == 401
    refused = await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refused.status_code == 401


async def test_deactivated_user_is_refused_on_the_next_request(client, login):
    tokens = (await _login(client, "rep2.bjcy")).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    manager = await login("manager.bjcy")
    user_id = tokens["user"]["id"]
    try:
        response = await client.post(f"/api/users/{user_id}/deactivate", headers=manager)
        assert response.status_code == 200, response.text
        assert (await client.get("/api/customers", headers=headers)).status_code == 401
        refreshed = await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 401
        assert (await _login(client, "rep2.bjcy")).status_code == 401
    finally:
        assert (await client.post(f"/api/users/{user_id}/activate", headers=manager)).status_code == 200
        login.cache.pop("rep2.bjcy", None)  # its cached session was cut off with the others
    assert (await _login(client, "rep2.bjcy")).status_code == 200


async def test_a_manager_cannot_deactivate_staff_of_another_store_or_a_peer(client, login):
    shpd = await login.user("rep.shpd")
    manager = await login("manager.bjcy")
    assert (await client.post(f"/api/users/{shpd['id']}/deactivate", headers=manager)).status_code == 404
    region = await login.user("region.north")
    assert (await client.post(f"/api/users/{region['id']}/deactivate", headers=manager)).status_code == 404
    rep = await login("rep.bjcy")
    rep2 = await login.user("rep2.bjcy")
    assert (await client.post(f"/api/users/{rep2['id']}/deactivate", headers=rep)).status_code == 404
    assert await User.select(User.active).where(User.username == "rep.shpd").first() == {"active": True}


async def test_login_is_throttled_per_account(client, settings):
    for _ in range(settings.login_max_failures_per_account):
        assert (await _login(client, "manager.bjcy", "wrong")).status_code == 401
    blocked = await _login(client, "manager.bjcy")  # even the right password waits now
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "too many failed logins" in blocked.json()["detail"]
    # Another account from the same address is not affected by this account's lock.
    assert (await _login(client, "rep.bjcy")).status_code == 200


async def test_login_is_throttled_per_address(client, settings):
    for i in range(settings.login_max_failures_per_address):
        assert (await _login(client, f"ghost{i}", "wrong")).status_code == 401
    blocked = await _login(client, "rep.bjcy")
    assert blocked.status_code == 429
    assert "address" in blocked.json()["detail"]
