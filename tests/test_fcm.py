"""The FCM adapter against the loopback stand-in over real HTTP: the message FCM receives, the access
token's life (one fetch shared, renewed before expiry, refreshed once after a 401), how every kind of
answer is classified, and the service-account checks. The stand-in's own strictness is tested too,
so a format the adapter gets wrong cannot pass unnoticed."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time

import httpx
import jwt
import pytest

from server.notifications.fcm import FcmSender
from server.notifications.push import FcmTarget, PushMessage
from tests.fcm_standin import FCM_SCOPE, JWT_BEARER_GRANT, FcmStandin, new_private_key_pem

PHONE = FcmTarget(token="fcm-registration-token-of-a-reps-phone")
REMINDER = PushMessage(
    notification_id="0190f1c2-reminder",
    kind="task_due",
    title="跟进提醒：王女士",
    body="今天 15:00 回访，确认婚纱尺寸",
    link="/customers/42",
    ttl_seconds=3600,
)
COMPLAINT = PushMessage(
    notification_id="0190f1c2-complaint",
    kind="complaint_sla",
    title="投诉即将超时",
    body="李先生的投诉 2 小时内未处理",
    link="/customers/7",
    critical=True,
)


class Clock:
    """Time the test moves by hand; the adapter and the stand-in both read it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def standin(clock):
    with FcmStandin(clock=clock) as standin:
        yield standin


@pytest.fixture
async def sender(standin, clock):
    async with FcmSender(standin.project_id, standin.service_account(), endpoint=standin.url, clock=clock) as sender:
        yield sender


# ---- what FCM receives


async def test_the_message_arrives_in_fcm_v1_format(sender, standin):
    reminder = await sender.send(PHONE, REMINDER)
    complaint = await sender.send(PHONE, COMPLAINT)

    assert reminder.outcome == complaint.outcome == "sent"
    assert reminder.status == 200
    assert reminder.detail.startswith(f"projects/{standin.project_id}/messages/")
    assert reminder.detail != complaint.detail
    assert standin.messages == [
        {
            "token": PHONE.token,
            "notification": {"title": "跟进提醒：王女士", "body": "今天 15:00 回访，确认婚纱尺寸"},
            "data": {
                "notification_id": "0190f1c2-reminder",
                "kind": "task_due",
                "link": "/customers/42",
                "critical": "0",
            },
            "android": {
                "priority": "NORMAL",
                "ttl": "3600s",
                "collapse_key": "0190f1c2-reminder",
                "notification": {"tag": "0190f1c2-reminder", "channel_id": "reminders"},
            },
        },
        {
            "token": PHONE.token,
            "notification": {"title": "投诉即将超时", "body": "李先生的投诉 2 小时内未处理"},
            "data": {
                "notification_id": "0190f1c2-complaint",
                "kind": "complaint_sla",
                "link": "/customers/7",
                "critical": "1",
            },
            "android": {
                "priority": "HIGH",
                "ttl": "86400s",
                "collapse_key": "0190f1c2-complaint",
                "notification": {"tag": "0190f1c2-complaint", "channel_id": "critical"},
            },
        },
    ]


# ---- the access token


async def test_concurrent_sends_share_one_token_until_shortly_before_it_expires(sender, standin, clock):
    deliveries = await asyncio.gather(*(sender.send(PHONE, REMINDER) for _ in range(5)))
    await sender.send(PHONE, COMPLAINT)
    assert {d.outcome for d in deliveries} == {"sent"}
    assert standin.token_fetches == 1

    clock.advance(3600 - 60 - 1)  # the token is renewed 60 s before its expires_in
    assert (await sender.send(PHONE, REMINDER)).outcome == "sent"
    assert standin.token_fetches == 1

    clock.advance(2)
    assert (await sender.send(PHONE, REMINDER)).outcome == "sent"
    assert standin.token_fetches == 2
    assert len(standin.messages) == 8


async def test_a_revoked_token_is_refreshed_once_and_the_send_goes_through(sender, standin):
    await sender.send(PHONE, REMINDER)
    standin.revoke_tokens()

    delivery = await sender.send(PHONE, COMPLAINT)

    assert delivery.outcome == "sent"
    assert standin.token_fetches == 2
    assert standin.send_attempts == 3  # the first send, the refused one, the resend
    assert [m["data"]["kind"] for m in standin.messages] == ["task_due", "complaint_sla"]


async def test_a_second_401_is_not_refreshed_again(sender, standin):
    standin.fail_next_sends(401, count=2)

    delivery = await sender.send(PHONE, REMINDER)

    assert (delivery.outcome, delivery.status) == ("failed", 401)
    assert "UNAUTHENTICATED" in delivery.detail
    assert standin.token_fetches == 2
    assert standin.send_attempts == 2


async def test_credentials_signed_by_another_key_fail_at_the_token_endpoint(standin, clock):
    credentials = standin.service_account() | {"private_key": new_private_key_pem()}
    async with FcmSender(standin.project_id, credentials, endpoint=standin.url, clock=clock) as sender:
        delivery = await sender.send(PHONE, REMINDER)

    assert (delivery.outcome, delivery.status) == ("failed", 400)
    assert "invalid_grant" in delivery.detail
    assert "Invalid JWT Signature" in delivery.detail
    assert standin.send_attempts == 0


async def test_a_token_endpoint_outage_is_retried_later(sender, standin):
    standin.fail_next_token_fetches(503, retry_after=30)

    outage = await sender.send(PHONE, REMINDER)
    after = await sender.send(PHONE, REMINDER)

    assert (outage.outcome, outage.status, outage.retry_after) == ("retry", 503, 30.0)
    assert outage.detail.startswith("token endpoint 503")
    assert after.outcome == "sent"
    assert standin.send_attempts == 1


async def test_an_unreachable_token_endpoint_is_retried_later(standin):
    credentials = standin.service_account() | {"token_uri": f"http://127.0.0.1:{closed_port()}/token"}
    async with FcmSender(standin.project_id, credentials, endpoint=standin.url) as sender:
        delivery = await sender.send(PHONE, REMINDER)

    assert (delivery.outcome, delivery.status) == ("retry", None)
    assert "token endpoint unreachable" in delivery.detail


# ---- how answers are classified


@pytest.mark.parametrize(
    ("status", "retry_after", "expected_retry_after"),
    [(500, None, None), (503, 5, 5.0), (429, 60, 60.0), (502, None, None)],
)
async def test_transient_errors_are_retried_by_the_dispatcher_not_the_adapter(
    sender, standin, status, retry_after, expected_retry_after
):
    standin.fail_next_sends(status, retry_after=retry_after)

    delivery = await sender.send(PHONE, REMINDER)

    assert (delivery.outcome, delivery.status, delivery.retry_after) == ("retry", status, expected_retry_after)
    assert standin.send_attempts == 1
    assert standin.messages == []
    assert (await sender.send(PHONE, REMINDER)).outcome == "sent"


@pytest.mark.parametrize(
    ("status", "detail"),
    [
        (400, "400 INVALID_ARGUMENT: Request contains an invalid argument."),
        (403, "403 PERMISSION_DENIED: SenderId mismatch"),
    ],
)
async def test_permanent_errors_fail_with_fcms_reason(sender, standin, status, detail):
    standin.fail_next_sends(status)

    delivery = await sender.send(PHONE, REMINDER)

    assert (delivery.outcome, delivery.status, delivery.detail) == ("failed", status, detail)
    assert standin.send_attempts == 1


async def test_an_unregistered_app_instance_is_gone(sender, standin):
    standin.unregister(PHONE.token)

    delivery = await sender.send(PHONE, REMINDER)
    other_phone = await sender.send(FcmTarget(token="another-phone"), REMINDER)

    assert (delivery.outcome, delivery.status) == ("gone", 404)
    assert delivery.detail == "404 NOT_FOUND: Requested entity was not found."
    assert other_phone.outcome == "sent"


async def test_a_wrong_project_is_a_failure_not_a_dead_token(standin):
    """FCM answers a mistyped project with a bare 404: that must not remove the phone's token."""
    async with FcmSender("no-such-project", standin.service_account(), endpoint=standin.url) as sender:
        delivery = await sender.send(PHONE, REMINDER)

    assert (delivery.outcome, delivery.status) == ("failed", 404)


async def test_an_unreachable_fcm_is_retried_later(standin):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    async with FcmSender(standin.project_id, standin.service_account(), endpoint=endpoint) as sender:
        delivery = await sender.send(PHONE, REMINDER)

    assert (delivery.outcome, delivery.status) == ("retry", None)
    assert "ConnectError" in delivery.detail
    assert standin.token_fetches == 1


async def test_a_send_that_times_out_is_retried_later(standin):
    standin.stall_next_sends(5)
    async with FcmSender(standin.project_id, standin.service_account(), endpoint=standin.url, timeout=0.3) as sender:
        delivery = await sender.send(PHONE, REMINDER)

    assert (delivery.outcome, delivery.status) == ("retry", None)
    assert "ReadTimeout" in delivery.detail


# ---- the stand-in is as strict as FCM


def malformed(change):
    body = {
        "message": {
            "token": PHONE.token,
            "notification": {"title": "标题", "body": "正文"},
            "data": {"notification_id": "n1", "kind": "task_due", "link": "", "critical": "0"},
            "android": {"priority": "NORMAL", "ttl": "3600s", "collapse_key": "n1", "notification": {"tag": "n1"}},
        }
    }
    change(body["message"])
    return body


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda m: m["data"].update(critical=1), 'message.data["critical"].value'),
        (lambda m: m["data"].update(critical=True), 'message.data["critical"].value'),
        (lambda m: m["notification"].update(title=None), "message.notification.title"),
        (lambda m: m["android"].update(priority="URGENT"), "message.android.priority"),
        (lambda m: m["android"].update(priority="high"), "message.android.priority"),
        (lambda m: m["android"].update(ttl="3600"), "message.android.ttl"),
        (lambda m: m["android"].update(ttl=3600), "message.android.ttl"),
        (lambda m: m["android"].update(ttl="1.0000000001s"), "message.android.ttl"),
        (lambda m: m.update(priority="HIGH"), "message"),
        (lambda m: m["android"]["notification"].update(channel=1), "message.android.notification"),
        (lambda m: m.update(token=""), "message.token"),
        (lambda m: m.pop("token"), "message"),
        (lambda m: m["data"].update({"from": "x"}), "message.data"),
    ],
)
async def test_the_standin_rejects_what_fcm_rejects(standin, change, field):
    url = f"{standin.url}/v1/projects/{standin.project_id}/messages:send"
    headers = {"Authorization": f"Bearer {standin.issue_token()}"}
    async with httpx.AsyncClient() as client:
        well_formed = await client.post(url, json=malformed(lambda m: None), headers=headers)
        answer = await client.post(url, json=malformed(change), headers=headers)

    assert well_formed.status_code == 200
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["details"][0]["fieldViolations"][0]["field"] == field
    assert len(standin.messages) == 1


async def test_the_standin_rejects_unknown_top_level_fields_and_missing_credentials(standin):
    url = f"{standin.url}/v1/projects/{standin.project_id}/messages:send"
    async with httpx.AsyncClient() as client:
        extra = await client.post(
            url,
            json=malformed(lambda m: None) | {"validate": True},
            headers={"Authorization": f"Bearer {standin.issue_token()}"},
        )
        no_token = await client.post(url, json=malformed(lambda m: None))
        made_up_token = await client.post(
            url, json=malformed(lambda m: None), headers={"Authorization": "Bearer ya29.made-up"}
        )

    assert (extra.status_code, extra.json()["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert 'Unknown name "validate"' in extra.json()["error"]["message"]
    assert (no_token.status_code, no_token.json()["error"]["status"]) == (401, "UNAUTHENTICATED")
    assert made_up_token.status_code == 401


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"aud": "https://oauth2.googleapis.com/token"}, "invalid_grant"),
        ({"scope": "https://www.googleapis.com/auth/cloud-platform"}, "invalid_scope"),
        ({"iat": -7200, "exp": -3600}, "invalid_grant"),  # expired
        ({"exp": 7200}, "invalid_grant"),  # longer than an hour
        ({"iss": "someone@else.iam.gserviceaccount.com"}, "invalid_grant"),
    ],
)
async def test_the_standin_token_endpoint_checks_the_signed_grant(standin, clock, claims, error):
    account = standin.service_account()
    now = int(clock())
    good = {"iss": account["client_email"], "scope": FCM_SCOPE, "aud": account["token_uri"], "iat": now}
    good["exp"] = now + 3600
    bad = good | {k: now + v if k in ("iat", "exp") else v for k, v in claims.items()}

    async with httpx.AsyncClient() as client:
        answers = [
            await client.post(
                account["token_uri"],
                data={"grant_type": JWT_BEARER_GRANT, "assertion": jwt.encode(c, account["private_key"], "RS256")},
            )
            for c in (good, bad)
        ]
        wrong_grant = await client.post(account["token_uri"], data={"grant_type": "client_credentials"})

    assert answers[0].status_code == 200
    assert answers[0].json()["expires_in"] == 3600
    assert (answers[1].status_code, answers[1].json()["error"]) == (400, error)
    assert (wrong_grant.status_code, wrong_grant.json()["error"]) == (400, "unsupported_grant_type")
    assert standin.token_fetches == 3


async def test_the_standin_stops_promptly_and_frees_its_port():
    standin = FcmStandin().start()
    port = standin.port
    standin.stall_next_sends(30)
    async with FcmSender(standin.project_id, standin.service_account(), endpoint=standin.url, timeout=0.2) as sender:
        assert (await sender.send(PHONE, REMINDER)).outcome == "retry"

    started = time.monotonic()
    standin.stop()

    assert time.monotonic() - started < 5
    with socket.socket() as s:  # as any server would bind it: the port has no listener left
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


# ---- service-account credentials


async def test_from_file_takes_the_project_from_the_file_or_the_caller(standin, tmp_path):
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(standin.service_account()), encoding="utf-8")

    async with FcmSender.from_file(path, endpoint=standin.url) as sender:
        assert sender.project_id == standin.project_id
        assert (await sender.send(PHONE, REMINDER)).outcome == "sent"

    async with FcmSender.from_file(str(path), project_id="another-project", endpoint=standin.url) as other:
        assert other.project_id == "another-project"


def test_from_file_without_any_project_id_says_so(standin, tmp_path):
    path = tmp_path / "no-project.json"
    credentials = standin.service_account()
    del credentials["project_id"]
    path.write_text(json.dumps(credentials), encoding="utf-8")

    with pytest.raises(ValueError, match=re.escape(f"{path}: no FCM project id")):
        FcmSender.from_file(path)


def test_from_file_names_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "google-services.xml"
    path.write_text("<resources/>", encoding="utf-8")

    with pytest.raises(ValueError, match=re.escape(f"{path}: not a service-account JSON file")):
        FcmSender.from_file(path, project_id="p")


def test_from_file_without_a_file_says_what_is_needed():
    with pytest.raises(ValueError, match="FCM needs a service-account JSON file"):
        FcmSender.from_file("", project_id="floorwalker-prod")


@pytest.mark.parametrize("key", ["client_email", "private_key", "token_uri"])
def test_missing_credentials_name_the_key(standin, key):
    credentials = standin.service_account()
    del credentials[key]

    with pytest.raises(ValueError, match=f"lack '{key}'"):
        FcmSender(standin.project_id, credentials)


def test_a_private_key_that_is_not_pem_is_refused(standin):
    credentials = standin.service_account() | {"private_key": "not a key"}

    with pytest.raises(ValueError, match="'private_key' is not an unencrypted PEM private key"):
        FcmSender(standin.project_id, credentials)
