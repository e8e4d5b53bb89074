"""Identity resolution (server.imports.matching): the classic cases decided as a person would, the
blocking keys the database indexes, and precision and recall on the labelled synthetic set."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.identity import run
from bench.identity_data import PROFILES, generate
from server.imports.matching import MERGE_AT, REVIEW_AT, Person, blocking_keys, name_kind, resolve, score

PHONE = "13812345678"
HOME = {"province": "北京市", "city": "北京市", "district": "朝阳区", "address": "建国路88号阳光花园3号楼2单元1203室"}


def person(ident: str, name: str, **fields) -> Person:
    return Person(id=ident, name=name, **fields)


def codes(match) -> list[str]:
    return [r.partition(":")[0] for r in match.reasons]


def changed(p: Person, **fields) -> Person:
    return msgspec.structs.replace(p, **fields)


# --- the classic cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("other", ["王芳", "王 芳", "王方", "汪芳", "王芳芳"])
def test_a_shared_phone_and_the_same_or_a_slipped_name_merge(other):
    match = score(person("a", "王芳", phones=(PHONE,)), person("b", other, phones=(PHONE,)))
    assert match.decision == "merge", match
    assert match.score >= MERGE_AT
    assert "same_phone" in match.reasons


def test_the_reasons_name_the_evidence_in_english_codes_and_in_chinese():
    match = score(person("a", "李娜", phones=(PHONE,), **HOME), person("b", "李那", phones=(PHONE,), **HOME))
    assert codes(match) == ["same_phone", "name_confusable", "same_district", "address_similar"]
    assert match.reasons[1] == "name_confusable:0.50"  # rapidfuzz's ratio of the two names
    assert match.reasons_zh == ("手机号相同", "姓名有一个同音/形近字之差（0.50）", "同一区县", "详细地址相近（1.00）")


def test_a_spouse_or_a_child_on_the_family_phone_is_distinct_a_sibling_with_one_character_apart_reviewed():
    mother = person("a", "王芳", phones=(PHONE,), **HOME)
    assert score(mother, person("b", "李强", phones=(PHONE,), **HOME)).decision == "distinct"
    assert score(mother, person("c", "王伟", phones=(PHONE,), **HOME)).decision == "distinct"
    brother = score(person("d", "王建国", phones=(PHONE,), **HOME), person("e", "王建军", phones=(PHONE,), **HOME))
    assert brother.decision == "review"
    assert "name_one_char" in codes(brother)


@pytest.mark.parametrize("kind", ["wechat_unionid", "pos_member", "online_shop", "wechat_openid"])
def test_a_shared_channel_identity_merges_without_anything_else(kind):
    match = score(person("a", "", identities=((kind, "X1"),)), person("b", "", identities=((kind, "X1"),)))
    assert match.decision == "merge"
    assert match.reasons == (f"same_{kind}",)


def test_the_imports_spelling_of_identity_kinds_means_the_same_kind():
    a = person("a", "张伟", identities=(("pos_member_id", "POS1"), ("online_shop_id", "TM1")))
    b = person("b", "张伟", identities=(("pos_member", "POS1"), ("online_shop", "TM1")))
    assert codes(score(a, b))[:2] == ["same_online_shop", "same_pos_member"]
    assert blocking_keys(a) == blocking_keys(b)
    with pytest.raises(ValueError, match="unknown identity kind 'qq'"):
        score(a, person("c", "张伟", identities=(("qq", "1"),)))


def test_a_shared_identity_with_a_clashing_name_goes_to_a_person_not_away():
    match = score(
        person("a", "王芳", identities=(("wechat_unionid", "U1"),)),
        person("b", "刘强", identities=(("wechat_unionid", "U1"),)),
    )
    assert match.decision == "review"
    assert match.score == REVIEW_AT
    assert codes(match)[-1] == "identifier_conflict"


def test_different_openids_say_nothing_different_unionids_do():
    a = person("a", "张伟", phones=(PHONE,), identities=(("wechat_openid", "o1"),))
    b = person("b", "张伟", phones=(PHONE,), identities=(("wechat_openid", "o2"),))
    assert score(a, b).decision == "merge"
    c = person("c", "张伟", phones=(PHONE,), identities=(("wechat_unionid", "u1"),))
    d = person("d", "张伟", phones=(PHONE,), identities=(("wechat_unionid", "u2"),))
    match = score(c, d)
    assert match.decision == "review"
    assert "unionid_differs" in codes(match)


def test_a_shared_email_and_a_similar_name_merge():
    assert score(person("a", "陈静", emails=("cj@163.com",)), person("b", "陈婧", emails=("cj@163.com",))).decision == (
        "merge"
    )
    assert score(person("a", "陈静", emails=("cj@163.com",)), person("b", "陈明", emails=("cj@163.com",))).decision == (
        "distinct"
    )


def test_the_same_common_name_in_the_same_city_is_never_merged():
    a = person("a", "张伟", phones=("13900000001",), city="北京市")
    b = person("b", "张伟", phones=("13900000002",), city="北京")
    assert score(a, b).decision == "distinct"
    same_district = score(
        person("a", "张伟", city="北京市", district="朝阳区"), person("b", "张伟", city="北京市", district="朝阳区")
    )
    assert same_district.decision == "distinct"


def test_a_name_and_an_address_without_an_identifier_are_reviewed_and_merged_only_with_the_birthday():
    a = person("a", "刘洋", phones=("13900000001",), **HOME)
    b = person("b", "刘洋", phones=("13900000002",), **{**HOME, "address": "阳光花园3-2-1203", "city": "北京"})
    match = score(a, b)
    assert match.decision == "review"
    assert codes(match)[-1] == "no_shared_identifier"
    born = "1988-03-05"
    assert score(changed(a, birthday=born), changed(b, birthday=born)).decision == "merge"
    assert score(changed(a, birthday=born), changed(b, birthday="1988-03-06")).decision == "distinct"


def test_the_same_name_and_birthday_in_another_city_is_not_merged():
    a = person("a", "王芳", phones=("13900000001",), city="上海市", district="浦东新区", birthday="1990-01-02")
    b = person("b", "王芳", phones=("13900000002",), city="杭州市", district="西湖区", birthday="1990-01-02")
    match = score(a, b)
    assert match.decision != "merge"
    assert "different_city" in codes(match)


def test_a_conflicting_birthday_or_gender_blocks_a_merge():
    a = person("a", "王芳", phones=(PHONE,), birthday="1985-04-01", gender="female")
    birthday = score(a, person("b", "王芳", phones=(PHONE,), birthday="1979-11-30"))
    assert birthday.decision == "review"  # a shared phone and the same name: a person looks
    assert codes(birthday)[-2:] == ["birthday_conflict", "contact_conflict"]
    gender = score(a, person("c", "王芳", phones=(PHONE,), gender="male"))
    assert gender.decision != "merge"
    assert "gender_conflict" in codes(gender)


def test_a_missing_name_or_a_title_on_a_shared_phone_is_for_a_person():
    owner = person("a", "王芳", phones=(PHONE,), gender="female", **HOME)
    nameless = score(owner, person("b", "", phones=(PHONE,), **HOME))
    assert nameless.decision == "review"
    assert "names_unconfirmed" in codes(nameless)
    assert score(owner, person("c", "王女士", phones=(PHONE,))).decision == "review"
    assert score(owner, person("d", "王先生", phones=(PHONE,))).decision == "distinct"  # the title's gender
    assert score(owner, person("e", "", phones=(PHONE,), birthday="")).decision == "review"


def test_a_missing_name_with_the_same_birthday_on_a_shared_phone_merges():
    a = person("a", "王芳", phones=(PHONE,), birthday="1985-04-01")
    assert score(a, person("b", "", phones=(PHONE,), birthday="1985-04-01")).decision == "merge"


@pytest.mark.parametrize(
    ("a", "b", "kind"),
    [
        ("王芳", "王芳", "same"),
        ("王芳", "王方", "confusable"),
        ("张伟", "章伟", "confusable"),
        ("王芳", "王芳芳", "doubled"),
        ("王芳", "王小芳", "extra_char"),
        ("王建国", "王建军", "one_char"),
        ("王芳", "王伟", "given_differs"),
        ("王芳", "李芳", "differs"),
        ("王女士", "王芳", "title_only"),
        ("王女士", "李芳", "differs"),
        ("欧阳娜", "欧阳那", "confusable"),
        ("欧阳娜", "欧娜", "differs"),
        ("anna li", "li anna", "confusable"),
    ],
)
def test_name_kinds(a, b, kind):
    assert name_kind(a, b)[0] == kind
    assert name_kind(b, a)[0] == kind


# --- blocking -----------------------------------------------------------------------------------------


def test_blocking_keys_are_phones_emails_identities_and_the_name_in_its_city():
    p = Person(
        id="a",
        name="王 芳",
        phones=("13812345678", "13900000001"),
        emails=("wf@qq.com",),
        identities=(("wechat_unionid", "U1"), ("pos_member_id", "POS9")),
        city="北京市",
    )
    assert blocking_keys(p) == {
        "phone:13812345678",
        "phone:13900000001",
        "email:wf@qq.com",
        "id:wechat_unionid:U1",
        "id:pos_member:POS9",
        "name:王芳|北京",  # confusable characters folded: 王方 and 汪芳 share it
    }


def test_name_keys_fold_slips_and_city_spellings_and_three_character_names_get_a_second_key():
    def names(**fields) -> set[str]:
        return {k for k in blocking_keys(Person(id="x", **fields)) if k.startswith("name")}

    assert names(name="王芳", city="北京市") == names(name="汪方", city="北京") == {"name:王芳|北京"}
    assert names(name="王芳", province="北京市") == {"name:王芳|北京"}  # a municipality is its own city
    assert names(name="王芳") == {"name:王芳|"}
    assert names(name="王健国", city="杭州市") == {"name:王建国|杭州", "name2:王*国|杭州"}
    assert names(name="王见国", city="杭州市") & names(name="王建国", city="杭州市") == {"name2:王*国|杭州"}
    assert names(name="王女士", city="杭州市") == set()  # half the city would share it


def test_resolve_returns_the_best_merge_target_and_the_review_band_best_first():
    record = person("r", "王芳", phones=(PHONE,), **HOME)
    exact = person("a", "王芳", phones=(PHONE,), **HOME)
    slip = person("b", "王方", phones=(PHONE,))
    nameless = person("c", "", phones=(PHONE,))
    family = person("d", "李强", phones=(PHONE,), **HOME)
    target, match, others = resolve(record, [slip, nameless, exact, family, record])
    assert target is exact
    assert match is not None and match.decision == "merge"
    assert [(p.id, m.decision) for p, m in others] == [("b", "merge"), ("c", "review")]
    assert resolve(record, [nameless, family]) == (None, None, [(nameless, score(record, nameless))])
    assert resolve(record, []) == (None, None, [])


# --- properties ---------------------------------------------------------------------------------------

names = st.sampled_from(["", "王芳", "王 芳", "王方", "王芳芳", "王伟", "李娜", "王女士", "欧阳娜", "欧阳", "anna li"])
people = st.builds(
    Person,
    id=st.uuids().map(str),
    name=names,
    phones=st.lists(st.sampled_from(["13800000001", "13800000002"]), max_size=2, unique=True).map(tuple),
    emails=st.lists(st.sampled_from(["a@qq.com", "b@qq.com"]), max_size=1).map(tuple),
    identities=st.lists(
        st.tuples(
            st.sampled_from(["wechat_unionid", "wechat_openid", "pos_member", "pos_member_id"]),
            st.sampled_from(["1", "2"]),
        ),
        max_size=2,
    ).map(tuple),
    city=st.sampled_from(["", "北京市", "北京", "上海市"]),
    district=st.sampled_from(["", "朝阳区", "朝阳", "海淀区"]),
    address=st.sampled_from(["", "建国路88号阳光花园3号楼2单元1203室", "阳光花园3-2-1203", "学院路1号"]),
    birthday=st.sampled_from(["", "1990-01-02", "1991-05-06"]),
    gender=st.sampled_from(["", "female", "male", "other"]),
)


@settings(max_examples=300, deadline=None)
@given(people, people)
def test_a_score_is_symmetric_bounded_and_its_decision_follows_the_thresholds(a, b):
    match = score(a, b)
    assert match == score(b, a)
    assert 0.0 <= match.score <= 1.0
    expected = "merge" if match.score >= MERGE_AT else "review" if match.score >= REVIEW_AT else "distinct"
    assert match.decision == expected
    assert len(match.reasons_zh) == len(match.reasons)


# --- the synthetic set -------------------------------------------------------------------------------


def test_the_synthetic_set_is_deterministic_and_holds_its_hard_negatives():
    first = generate(2000, seed=3)
    assert first == generate(2000, seed=3)
    assert first != generate(2000, seed=4)
    owners: dict[str, set[str]] = {}
    for item in first:
        for phone in item.record.phones:
            owners.setdefault(phone, set()).add(item.person_id)
    assert sum(len(ids) > 1 for ids in owners.values()) >= 20  # families on one phone
    namesakes: dict[tuple[str, str], set[str]] = {}
    born_alike: dict[tuple[str, str], set[str]] = {}
    for item in first:
        record = item.record
        if record.name and record.city:
            namesakes.setdefault((record.name, record.city.removesuffix("市")), set()).add(item.person_id)
        if record.name and record.birthday:
            born_alike.setdefault((record.name, record.birthday), set()).add(item.person_id)
    assert sum(len(ids) > 1 for ids in namesakes.values()) >= 15  # different people, one name, one city
    assert sum(len(ids) > 1 for ids in born_alike.values()) >= 1  # ... and the same birthday (another city)


@pytest.mark.parametrize(("profile", "recall"), [("issue's list", 0.9), ("all noise", 0.87)])
def test_automatic_merging_keeps_its_precision_and_recall_on_the_synthetic_set(profile, recall):
    # The goals: precision ≥ 0.98 and recall ≥ 0.9. With the noise the issue lists the
    # set gives 0.93-0.95 recall (seeds 1-6); with WeChat records without a name and 王女士 for a
    # name too, 0.88-0.91, those records waiting for a person (python -m bench.identity).
    outcome = run(generate(2000, seed=1, noise=PROFILES[profile]))
    assert outcome.auto.precision >= 0.98
    assert outcome.auto.recall >= recall
