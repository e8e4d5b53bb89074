"""Feedback from the app over HTTP: sent with a screenshot, listed per role's scope newest first,
answered by head office and regional managers, the screenshot fetched back byte for byte; bad input
answered with a 4xx naming the problem and nothing stored."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from server.rollout.tables import Feedback, StoreFeature
from shared.rollout import MAX_SCREENSHOT_BYTES


def png(width: int = 2, height: int = 2, padding: int = 0) -> bytes:
    """A real PNG (IHDR, IDAT, IEND), optionally with a text chunk of ``padding`` bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = b"".join(b"\x00" + b"\xcc\x22\x22" * width for _ in range(height))
    extra = chunk(b"tEXt", b"Comment\x00" + b"x" * padding) if padding else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"


async def _send(client, headers, **body):
    return await client.post(
        "/api/feedback", json={"screen": "/customers", "app_version": "1.0", **body}, headers=headers
    )


async def test_sent_with_a_screenshot_then_fetched_back(client, login, stores):
    rep = await login("rep.bjcy")
    image = png()
    reply = await _send(
        client, rep, text="  快捷按钮希望能拖动排序  ", screenshot_base64=base64.b64encode(image).decode()
    )
    assert reply.status_code == 201, reply.text
    item = reply.json()
    assert item["text"] == "快捷按钮希望能拖动排序" and item["status"] == "new" and item["has_screenshot"]
    assert (item["store_code"], item["screen"], item["app_version"]) == ("BJ-CY", "/customers", "1.0")
    assert item["user_name"] == "李娜" and item["reply"] == ""

    shot = await client.get(f"/api/feedback/{item['id']}/screenshot", headers=rep)
    assert shot.status_code == 200 and shot.headers["content-type"] == "image/png" and shot.content == image
    manager = await client.get(f"/api/feedback/{item['id']}/screenshot", headers=await login("manager.bjcy"))
    assert manager.status_code == 200 and manager.content == image
    # another rep of the store does not see it; nor does another region's manager
    assert (
        await client.get(f"/api/feedback/{item['id']}/screenshot", headers=await login("rep2.bjcy"))
    ).status_code == 404
    assert (
        await client.get(f"/api/feedback/{item['id']}/screenshot", headers=await login("region.east"))
    ).status_code == 404

    jpeg = await _send(
        client, await login("rep.shpd"), text="客户卡片加载慢", screenshot_base64=base64.b64encode(JPEG).decode()
    )
    assert jpeg.status_code == 201, jpeg.text
    back = await client.get(f"/api/feedback/{jpeg.json()['id']}/screenshot", headers=await login("admin"))
    assert back.headers["content-type"] == "image/jpeg" and back.content == JPEG

    plain = await _send(client, rep, text="没有截图的反馈")
    assert plain.status_code == 201 and not plain.json()["has_screenshot"]
    none = await client.get(f"/api/feedback/{plain.json()['id']}/screenshot", headers=rep)
    assert none.status_code == 404 and "no screenshot" in none.text


async def _all(client, headers, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        reply = await client.get("/api/feedback", params=query, headers=headers)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_each_role_lists_its_scope_newest_first(client, login):
    mine = await _send(client, await login("rep2.bjcy"), text="列表测试：按门店筛选")
    assert mine.status_code == 201
    admin = await _all(client, await login("admin"))
    assert [i["id"] for i in admin] == sorted((i["id"] for i in admin), reverse=True)  # UUIDv7: newest first
    assert {i["store_code"] for i in admin} >= {"BJ-CY", "SH-PD"}
    assert admin[0]["id"] == mine.json()["id"]
    assert len(admin) == await Feedback.count()

    region = await _all(client, await login("region.north"))
    assert {i["store_code"] for i in region} == {"BJ-CY"}
    manager = await _all(client, await login("manager.bjcy"))
    assert {i["id"] for i in manager} == {i["id"] for i in region if i["store_code"] == "BJ-CY"}
    rep = await _all(client, await login("rep2.bjcy"))
    assert rep and {i["user_name"] for i in rep} == {"张伟"}  # a rep: their own items only
    assert {i["id"] for i in rep} < {i["id"] for i in manager}

    new = await _all(client, await login("admin"), status="new", store="SH-PD")
    assert new and all(i["status"] == "new" and i["store_code"] == "SH-PD" for i in new)
    assert (await client.get("/api/feedback?store=SH-PD", headers=await login("region.north"))).status_code == 404
    assert (await client.get("/api/feedback?status=lost", headers=await login("admin"))).status_code == 400
    assert (await client.get("/api/feedback?cursor=garbage", headers=await login("admin"))).status_code in (400, 422)


async def test_head_office_and_the_region_answer(client, login):
    item = (await _send(client, await login("rep.bjcy"), text="希望能批量导出客户")).json()
    other = (await _send(client, await login("rep.shpd"), text="希望能批量打标签")).json()
    path = f"/api/feedback/{item['id']}"
    for who in ("rep.bjcy", "manager.bjcy"):
        refused = await client.patch(path, json={"status": "planned"}, headers=await login(who))
        assert refused.status_code == 403
    assert (
        await client.patch(f"/api/feedback/{other['id']}", json={"status": "done"}, headers=await login("region.north"))
    ).status_code == 404

    answered = await client.patch(
        path, json={"status": "planned", "reply": "已排入下个版本"}, headers=await login("region.north")
    )
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert (body["status"], body["reply"], body["updated_by_name"]) == ("planned", "已排入下个版本", "赵建国")
    seen = await _all(client, await login("rep.bjcy"))
    assert next(i for i in seen if i["id"] == item["id"])["reply"] == "已排入下个版本"  # the rep reads the answer

    done = await client.patch(f"/api/feedback/{other['id']}", json={"status": "done"}, headers=await login("admin"))
    assert done.status_code == 200 and done.json()["status"] == "done"
    for bad, says in (({}, "nothing to change"), ({"status": "maybe"}, "status"), ({"text": "x"}, "text")):
        reply = await client.patch(path, json=bad, headers=await login("admin"))
        assert 400 <= reply.status_code < 500 and says in reply.text


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("who", "body", "status", "says"),
    [
        ("admin", {"text": "总部的反馈"}, 422, "feedback comes from a store"),
        ("rep.bjcy", {"text": "   "}, 422, "text is required"),
        ("rep.bjcy", {"text": "字" * 2001}, 422, "at most 2000"),
        ("rep.bjcy", {"text": "x", "screen": "/" * 101}, 422, "screen"),
        ("rep.bjcy", {"text": "x", "app_version": "9" * 41}, 422, "app_version"),
        ("rep.bjcy", {"text": "x", "rating": 5}, 400, "rating"),
        ("rep.bjcy", {"text": "x", "screenshot_base64": "不是base64"}, 422, "base64"),
        ("rep.bjcy", {"text": "x", "screenshot_base64": _b64(b"GIF89a" + b"\x00" * 40)}, 422, "PNG or JPEG"),
        ("rep.bjcy", {"text": "x", "screenshot_base64": _b64(b"%PDF-1.7 not an image")}, 422, "PNG or JPEG"),
        ("rep.bjcy", {"text": "x", "screenshot_base64": _b64(png(padding=MAX_SCREENSHOT_BYTES))}, 413, "2 MB"),
        ("rep.bjcy", {"screen": "/"}, 400, "text"),
    ],
)
async def test_refused_feedback_stores_nothing(client, login, who, body, status, says):
    before = await Feedback.count()
    reply = await client.post("/api/feedback", json=body, headers=await login(who))
    assert reply.status_code == status, reply.text
    assert says in reply.text
    assert await Feedback.count() == before


async def test_a_body_far_over_the_limit_is_cut_off(client, login):
    before = await Feedback.count()
    huge = "A" * (3 * MAX_SCREENSHOT_BYTES)
    reply = await client.post(
        "/api/feedback", json={"text": "x", "screenshot_base64": huge}, headers=await login("rep.bjcy")
    )
    assert reply.status_code == 413
    assert await Feedback.count() == before


async def test_switched_off_for_the_store_feedback_is_refused(client, login, stores):
    admin, rep = await login("admin"), await login("rep.shpd")
    off = await client.put("/api/rollout/features/SH-PD/feedback", json={"enabled": False}, headers=admin)
    assert off.status_code == 200
    try:
        before = await Feedback.count()
        refused = await _send(client, rep, text="关了还能发吗")
        assert refused.status_code == 403 and "switched off" in refused.text
        assert await Feedback.count() == before
    finally:
        await client.put("/api/rollout/features/SH-PD/feedback", json={"enabled": True}, headers=admin)
    assert (await _send(client, rep, text="又开了")).status_code == 201
    assert await StoreFeature.count().where(StoreFeature.store_id == stores["SH-PD"]) >= 1
