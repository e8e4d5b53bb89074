"""The Web Push adapter against a loopback push service that checks VAPID and decrypts like a browser."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
import uuid
from collections.abc import Iterator
from email.utils import formatdate

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid

from server.notifications.push import PushMessage, WebPushTarget
from server.notifications.webpush import WebPushSender, generate_vapid_key
from tests.webpush_receiver import PushReceiver, make_subscription

SUBJECT = "mailto:ops@floorwalker.example"


@pytest.fixture
def receiver() -> Iterator[PushReceiver]:
    with PushReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def sender() -> WebPushSender:
    return WebPushSender(generate_vapid_key(), SUBJECT)


def message(**overrides) -> PushMessage:
    fields = {
        "notification_id": str(uuid.uuid4()),
        "kind": "task_assigned",
        "title": "新任务：回访王芳",
        "body": "王芳上周买了羊绒大衣，请今天下班前致电回访。",
        "link": "/customers/42",
        "ttl_seconds": 3600,
    }
    return PushMessage(**{**fields, **overrides})


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(("critical", "urgency"), [(False, "normal"), (True, "high")])
async def test_the_browser_decrypts_exactly_what_was_sent(receiver, sender, critical, urgency):
    target, _ = make_subscription(receiver)
    sent = message(critical=critical)

    delivery = await sender.send(target, sent)

    assert (delivery.outcome, delivery.status) == ("sent", 201)
    [arrived] = receiver.received
    assert arrived.subscription_id == target.endpoint.rsplit("/", 1)[1]
    assert arrived.payload == {
        "id": sent.notification_id,
        "kind": "task_assigned",
        "title": "新任务：回访王芳",
        "body": "王芳上周买了羊绒大衣，请今天下班前致电回访。",
        "link": "/customers/42",
        "critical": critical,
    }
    assert arrived.headers["urgency"] == urgency
    assert arrived.headers["ttl"] == "3600"
    assert arrived.headers["content-encoding"] == "aes128gcm"
    assert arrived.headers["topic"] == sent.notification_id.replace("-", "")


async def test_a_resend_carries_the_same_topic_so_it_replaces_the_first(receiver, sender):
    target, _ = make_subscription(receiver)
    first = message()

    await sender.send(target, first)
    await sender.send(target, message(notification_id=first.notification_id, title="再次提醒"))

    topics = [arrived.headers["topic"] for arrived in receiver.received]
    assert topics == [first.notification_id.replace("-", "")] * 2
    assert len(topics[0]) == 32


async def test_a_subscription_made_for_another_application_server_key_refuses_with_403(sender):
    other = WebPushSender(generate_vapid_key(), SUBJECT)
    with PushReceiver(application_server_key=sender.public_key) as receiver:
        target, _ = make_subscription(receiver)

        refused = await other.send(target, message())
        accepted = await sender.send(target, message())

    assert (refused.outcome, refused.status) == ("failed", 403)
    assert "application server key" in refused.detail
    assert accepted.outcome == "sent"
    assert len(receiver.received) == 1


async def test_the_receiver_refuses_a_token_not_signed_by_the_key_it_names(receiver):
    """Keeps the end-to-end tests honest: the stand-in really verifies the ES256 signature."""
    target, _ = make_subscription(receiver)
    signer, named = Vapid(), Vapid()
    signer.generate_keys()
    named.generate_keys()
    token = signer.sign({"sub": SUBJECT, "aud": receiver.origin})["Authorization"].split("t=")[1].split(",")[0]
    named_key = named.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    forged = f"vapid t={token}, k={base64.urlsafe_b64encode(named_key).rstrip(b'=').decode()}"

    async with httpx.AsyncClient() as client:
        answer = await client.post(
            target.endpoint,
            content=b"\0" * 100,
            headers={"Authorization": forged, "TTL": "60", "Content-Encoding": "aes128gcm"},
        )

    assert answer.status_code == 401
    assert "signature" in answer.text.lower()
    assert receiver.received == []


async def test_an_expired_subscription_is_gone(receiver, sender):
    target, _ = make_subscription(receiver)
    receiver.expire(target.endpoint)

    delivery = await sender.send(target, message())

    assert (delivery.outcome, delivery.status) == ("gone", 410)


async def test_an_unknown_subscription_is_gone(receiver, sender):
    target, _ = make_subscription(receiver)
    unknown = WebPushTarget(endpoint=f"{receiver.origin}/push/never-registered", p256dh=target.p256dh, auth=target.auth)

    delivery = await sender.send(unknown, message())

    assert (delivery.outcome, delivery.status) == ("gone", 404)


@pytest.mark.parametrize(
    ("status", "retry_after", "outcome", "seconds"),
    [
        (500, None, "retry", None),
        (503, "7", "retry", 7.0),
        (429, "120", "retry", 120.0),
        (400, None, "failed", None),
        (401, None, "failed", None),
        (413, None, "failed", None),
    ],
)
async def test_the_push_service_answer_decides_the_outcome(receiver, sender, status, retry_after, outcome, seconds):
    target, _ = make_subscription(receiver)
    receiver.answer_next(status, retry_after=retry_after)

    delivery = await sender.send(target, message())
    after = await sender.send(target, message())

    assert (delivery.outcome, delivery.status, delivery.retry_after) == (outcome, status, seconds)
    assert delivery.detail.startswith(str(status))
    assert "scripted" in delivery.detail  # the service's own words reach the send log
    assert after.outcome == "sent"  # only the scripted answer was bad
    assert len(receiver.received) == 1


async def test_retry_after_as_an_http_date_becomes_seconds(receiver, sender):
    target, _ = make_subscription(receiver)
    receiver.answer_next(503, retry_after=formatdate(time.time() + 30, usegmt=True))

    delivery = await sender.send(target, message())

    assert delivery.outcome == "retry"
    assert delivery.retry_after is not None and 25 <= delivery.retry_after <= 30


async def test_a_payload_too_big_for_push_services_fails_for_good(receiver, sender):
    target, _ = make_subscription(receiver)

    delivery = await sender.send(target, message(body="长" * 1500))  # 4.5 kB of UTF-8

    assert (delivery.outcome, delivery.status) == ("failed", 413)
    assert receiver.received == []


async def test_a_stopped_push_service_means_retry_later(sender):
    receiver = PushReceiver().start()
    target, _ = make_subscription(receiver)
    receiver.stop()

    delivery = await sender.send(target, message())

    assert (delivery.outcome, delivery.status) == ("retry", None)
    assert "connect" in delivery.detail.lower()


async def test_an_unused_port_means_retry_later(receiver, sender):
    target, _ = make_subscription(receiver)
    nowhere = WebPushTarget(endpoint=f"http://127.0.0.1:{unused_port()}/push/x", p256dh=target.p256dh, auth=target.auth)

    delivery = await sender.send(nowhere, message())

    assert (delivery.outcome, delivery.status) == ("retry", None)


async def test_a_push_service_that_never_answers_times_out_into_retry(receiver):
    target, _ = make_subscription(receiver)
    impatient = WebPushSender(generate_vapid_key(), SUBJECT, timeout=0.3)
    with socket.socket() as silent:  # accepts connections (kernel backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        stalled = WebPushTarget(
            endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}/push/x", p256dh=target.p256dh, auth=target.auth
        )

        started = time.monotonic()
        delivery = await impatient.send(stalled, message())

    assert (delivery.outcome, delivery.status) == ("retry", None)
    assert "0.3s" in delivery.detail
    assert time.monotonic() - started < 2


async def test_a_subscription_with_broken_keys_fails_without_a_request(receiver, sender):
    target, _ = make_subscription(receiver)
    broken = WebPushTarget(endpoint=target.endpoint, p256dh=target.p256dh[:40], auth=target.auth)

    delivery = await sender.send(broken, message())

    assert (delivery.outcome, delivery.status) == ("failed", None)
    assert "p256dh" in delivery.detail
    assert receiver.received == []


async def test_concurrent_sends_overlap_instead_of_queueing(receiver, sender):
    targets = [make_subscription(receiver)[0] for _ in range(5)]
    receiver.latency = 0.5  # each answer takes half a second
    messages = [message() for _ in targets]

    started = time.monotonic()
    deliveries = await asyncio.gather(*(sender.send(t, m) for t, m in zip(targets, messages, strict=True)))
    elapsed = time.monotonic() - started

    assert [d.outcome for d in deliveries] == ["sent"] * 5
    arrived = await receiver.arrived(5)
    assert {a.payload["id"] for a in arrived} == {m.notification_id for m in messages}
    assert elapsed < 1.5, f"5 sends took {elapsed:.2f}s: they ran one after another (2.5s)"


async def test_pem_and_raw_forms_of_a_key_are_the_same_application_server(receiver):
    pem = generate_vapid_key()
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    raw = base64.urlsafe_b64encode(key.private_numbers().private_value.to_bytes(32, "big")).rstrip(b"=").decode()

    from_pem, from_raw = WebPushSender(pem, SUBJECT), WebPushSender(raw, "https://floorwalker.example/contact")

    assert from_pem.public_key == from_raw.public_key
    point = base64.urlsafe_b64decode(from_pem.public_key + "=")
    assert len(point) == 65 and point[0] == 4
    receiver.application_server_key = from_pem.public_key
    target, _ = make_subscription(receiver)
    assert (await from_raw.send(target, message())).outcome == "sent"


@pytest.mark.parametrize(
    "subject", ["ops@floorwalker.example", "mailto:", "mailto:ops", "http://floorwalker.example", "https://", ""]
)
def test_a_subject_that_is_not_a_mailto_or_https_uri_is_refused(subject):
    with pytest.raises(ValueError, match="VAPID subject"):
        WebPushSender(generate_vapid_key(), subject)


@pytest.mark.parametrize(
    "private_key", ["", "not a key", "AAAA", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"]
)
def test_a_private_key_that_does_not_load_is_refused(private_key):
    with pytest.raises(ValueError, match="VAPID private key"):
        WebPushSender(private_key, SUBJECT)
