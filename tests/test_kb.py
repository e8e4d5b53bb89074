"""The knowledge base (REQUIREMENTS §9): searchable in Chinese — terms as written, or most of their
two-character pieces (退货政策 finds 七天无理由退换货政策), titles first — over HTTP and on the
phone from its synced copy; head office's edits reach the phone with the next pull; reps may not
edit; bad input refused with its reason."""

from __future__ import annotations

import uuid

import pytest

from mobile.ui.screens import KbScreen
from server.kb.content import ARTICLES
from shared import kb
from tests.flet_tree import change, click, find, has, render, select, text
from tests.test_app_views import rep, rep_phone  # noqa: F401 — the fixtures

DEMO = [
    kb.Article(str(i), code, topic, title, en, body, tags)
    for i, (code, topic, title, en, tags, body) in enumerate(ARTICLES)
]


def codes(query: str, **kw) -> list[str]:
    return [a.code for a in kb.search(DEMO, query, **kw)]


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("退货", "return-7-days"),  # a tag
        ("退货政策", "return-7-days"),  # by pieces: 货政, 政策 of 退换货政策
        ("床垫", "mattress-care"),
        ("质保", "warranty"),
        ("送货 延误", "delivery-delay"),  # two terms, both found
        ("Warranty", "warranty"),  # the English title, any case
        ("投诉，回访", "complaint-process"),  # Chinese punctuation splits terms
    ],
)
def test_a_search_puts_the_article_asked_for_first(query, first):
    assert codes(query)[0] == first


def test_every_term_must_be_found_and_titles_weigh_most():
    sofas = codes("沙发 保养")
    assert set(sofas[:2]) == {"leather-sofa-care", "fabric-sofa-care"}
    assert codes("沙发 火箭") == []  # one term nowhere: no match
    assert codes("质") == codes("质保")[:0] + codes("质")  # one character: as written only
    assert "warranty" in codes("质")


def test_topics_and_the_empty_query():
    everything = codes("")
    assert len(everything) == len(DEMO) and everything[0] in {a.code for a in DEMO if a.topic == "policy"}
    assert set(codes("", topic="care")) == {a.code for a in DEMO if a.topic == "care"}
    assert codes("沙发", topic="policy") == ["return-7-days"]  # its body names sofas
    assert codes("床垫", topic="policy") == []


async def test_search_and_read_over_http(client, login):
    headers = await login("rep.shpd")
    answer = await client.get("/api/kb", params={"q": "退换货"}, headers=headers)
    assert answer.status_code == 200
    first = answer.json()[0]
    assert first["code"] == "return-7-days" and "7天内" in first["body"] and "退货" in first["tags"]
    one = await client.get(f"/api/kb/{first['id']}", headers=headers)
    assert one.status_code == 200 and one.json() == first
    bad = await client.get("/api/kb", params={"topic": "recipes"}, headers=headers)
    assert bad.status_code == 422 and "topic must be one of policy, care" in bad.text
    missing = await client.get(f"/api/kb/{uuid.uuid4()}", headers=headers)
    assert missing.status_code == 404


async def test_only_head_office_edits_and_the_phone_gets_it(client, login, rep):  # noqa: F811
    code = f"test-{uuid.uuid4().hex[:8]}"
    body = {"code": code, "topic": "care", "title": "藤编椅保养", "body": "避免暴晒，用软刷除尘。"}
    body["tags"] = ["藤编", "椅子"]
    refused = await client.post("/api/kb", json=body, headers=await login("manager.bjcy"))
    assert refused.status_code == 403
    made = await client.post("/api/kb", json=body, headers=await login("admin"))
    assert made.status_code == 201, made.text
    article = made.json()
    try:
        again = await client.post("/api/kb", json=body, headers=await login("admin"))
        assert again.status_code == 409 and "exists already" in again.text
        for bad, words in (
            ({**body, "code": "Sofa Care!"}, "code must be"),
            ({**body, "code": "x-" + code, "topic": "gossip"}, "topic must be one of"),
            ({**body, "code": "y-" + code, "tags": ["a,b"]}, "must not contain a comma"),
        ):
            answer = await client.post("/api/kb", json=bad, headers=await login("admin"))
            assert answer.status_code == 422 and words in answer.text, answer.text

        # the phone's next pull brings it; the search runs on the phone's copy
        state = rep.state
        await state.sync_now()
        state.kb_search("藤编")
        assert [a.code for a in state.kb_hits()] == [code]
        patched = await client.patch(
            f"/api/kb/{article['id']}", json={"body": "避免暴晒；每月用湿布擦拭一次。"}, headers=await login("admin")
        )
        assert patched.status_code == 200 and patched.json()["body"] == "避免暴晒；每月用湿布擦拭一次。"
        await state.sync_now()
        state.kb_search("湿布")
        assert [a.code for a in state.kb_hits()] == [code]
    finally:
        gone = await client.patch(f"/api/kb/{article['id']}", json={"deleted": True}, headers=await login("admin"))
        assert gone.status_code == 200
    await rep.state.sync_now()
    rep.state.kb_search("藤编")
    assert rep.state.kb_hits() == []
    assert (await client.get("/api/kb", params={"q": "藤编"}, headers=await login("admin"))).json() == []


async def test_the_knowledge_base_screen_searches_and_opens_an_article(rep):  # noqa: F811
    state = rep.state
    state.kb_search("")
    tree = render(KbScreen, state)
    assert has(tree, key="kb-return-7-days") and has(tree, key="kb-mattress-care")
    await change(find(tree, key="kb-search"), "床垫")
    tree = render(KbScreen, state)
    assert has(tree, key="kb-mattress-care") and not has(tree, key="kb-return-7-days")
    assert not has(tree, key="kb-body-mattress-care")
    await click(find(tree, key="kb-mattress-care"))
    tree = render(KbScreen, state)
    assert "每2周调转一次头尾" in text(find(tree, key="kb-body-mattress-care"))
    await change(find(tree, key="kb-search"), "")
    await select(find(render(KbScreen, state), key="kb-topic-warranty"))
    tree = render(KbScreen, state)
    assert has(tree, key="kb-warranty") and not has(tree, key="kb-mattress-care")
    state.kb_choose_topic("warranty")  # again: the filter is off
    await change(find(render(KbScreen, state), key="kb-search"), "火箭发射")
    assert "没有找到相关内容" in text(render(KbScreen, state))
