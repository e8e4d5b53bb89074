"""Identity resolution (server.imports.matching): the classic cases decided as a person would, the
blocking keys the database indexes, and precision and recall on the labelled synthetic set."""

from __future__ import annotations

import re
from unittest import mock

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.identity import run
from bench.identity_data import PROFILES, generate
from server.imports import cleaning, matching
from server.imports.matching import (
    MERGE_AT,
    REVIEW_AT,
    Person,
    blocking_keys,
    may_match,
    name_kind,
    resolve,
    score,
    search_keys,
)

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


def test_the_spellings_of_a_name_are_every_name_that_folds_like_it():
    assert set(matching.spellings("王方")) == {"王芳", "王方", "王舫", "汪芳", "汪方", "汪舫"}
    assert matching.spellings("Li Na") == ("Li Na",) and matching.spellings("赵四") == ("赵四",)
    for name in ("王方", "陈静怡", "张伟", "欧阳娜娜"):
        spelt = matching.spellings(name)
        assert name in spelt and len(set(spelt)) == len(spelt)
        assert {matching._fold(s) for s in spelt} == {matching._fold(name)}
    # Past 512 spellings, those one character away (still including the name itself).
    many = matching.spellings("宇宇宇宇")
    assert len(many) == 1 + 4 * 6 and all(sum(a != b for a, b in zip(s, "宇宇宇宇", strict=True)) <= 1 for s in many)


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


# --- the shortcuts of bulk resolution: may_match, search_keys, the quick phone path ---------------------
#
# The import prunes work three ways, each claimed to change no decision: matching.may_match (a pair
# it turns down is never scored: it must be one score() calls distinct), matching.search_keys (the
# blocking keys left out cannot bring a pair above distinct) and cleaning.clean_phone's quick path
# for plain CN mobiles (the same answer as the long path). Each is checked against the full
# computation on generated pairs and inputs, and may_match/search_keys on the synthetic set too.

# Names in families that blocking brings together: the same name written apart, a confusable
# character, a doubled or an extra character, a sibling's, a title; compound surnames; Latin names.
NAME_FAMILIES = (
    ("王芳", "王 芳", "王方", "汪芳", "王芳芳", "王小芳", "王伟", "王女士", "王先生", "汪女士"),
    ("王建国", "王健国", "王见国", "王建军", "王国", "王小国"),
    ("李娜", "李那", "李娜娜", "李小娜", "李女士", "黎娜"),
    ("欧阳芳", "欧阳方", "欧阳芳芳", "欧阳小芳", "欧阳娜", "欧阳女士", "欧芳"),
    ("张伟", "章伟", "张伟伟", "张小伟", "张先生"),
    ("Anna Li", "anna li", "li anna", "Anne Lee", "anna  li"),
)
PAIR_NAMES = ("", *(name for family in NAME_FAMILIES for name in family))
# One home written five ways (all alike to the scorer, token_set_ratio being what it is), other homes.
ADDRESS_FORMS = ("", HOME["address"], "阳光花园3-2-1203", "3栋2单元1203", "北京市朝阳区建国路88号", "建国路88号",
                 "学院路1号", "世纪大道100号1203室")  # fmt: skip
PAIR_FIELDS = {
    "name": st.sampled_from(PAIR_NAMES),  # the second record's often from the first's family: person_pairs
    "phones": st.lists(st.sampled_from(["13800000001", "13800000002", "13900000003"]), max_size=2, unique=True).map(
        tuple
    ),
    "emails": st.lists(st.sampled_from(["a@qq.com", "b@163.com"]), max_size=1).map(tuple),
    "identities": st.lists(
        st.tuples(
            st.sampled_from(
                ["wechat_unionid", "wechat_openid", "pos_member", "pos_member_id", "online_shop", "online_shop_id"]
            ),
            st.sampled_from(["1", "2"]),
        ),
        max_size=2,
        unique=True,
    ).map(tuple),
    "province": st.sampled_from(["", "北京市", "上海市", "浙江省"]),
    "city": st.sampled_from(["", "北京市", "北京", "上海市", "杭州市"]),
    "district": st.sampled_from(["", "朝阳区", "朝阳", "海淀区", "浦东新区"]),
    "address": st.sampled_from(ADDRESS_FORMS),
    "birthday": st.sampled_from(["", "1990-01-02", "1991-05-06"]),
    "gender": st.sampled_from(["", "female", "male", "other"]),
}


@st.composite
def person_pairs(draw) -> tuple[Person, Person]:
    """Two records, the second taking each field from the first or afresh (so that pairs share
    names, places and keys often, as the candidates a blocking key brings do)."""
    a = Person(id="a", **{field: draw(values) for field, values in PAIR_FIELDS.items()})
    fields = {field: draw(st.one_of(st.just(getattr(a, field)), values)) for field, values in PAIR_FIELDS.items()}
    family = next((f for f in NAME_FAMILIES if a.name in f), ())
    if family and draw(st.booleans()):
        fields["name"] = draw(st.sampled_from(family))  # a name of the same family: the close cases
    return a, Person(id="b", **fields)


def _strong_keys(keys: set[str]) -> set[str]:
    return {k for k in keys if not k.startswith(("name:", "name2:"))}


def _check_may_match(a: Person, b: Person) -> bool:
    """may_match(a, b) False ⇒ score says distinct (both ways round); whether it turned the pair down."""
    turned_down = False
    for x, y in ((a, b), (b, a)):
        if not may_match(x, y):
            turned_down = True
            match = score(x, y)
            assert match.decision == "distinct", (x, y, match)
    return turned_down


def _check_search_keys(a: Person, b: Person) -> bool:
    """A pair sharing a blocking key but no search key scores distinct (and shares no phone, e-mail
    or identity); whether the pair was one of those."""
    shared = blocking_keys(a) & blocking_keys(b)
    if not shared or search_keys(a) & search_keys(b):
        return False
    assert not _strong_keys(shared), (a, b, shared)
    match = score(a, b)
    assert match.decision == "distinct", (a, b, shared, match)
    return True


@settings(max_examples=1500, deadline=None, database=None)
@given(person_pairs())
def test_may_match_turns_down_only_pairs_that_score_distinct(pair):
    a, b = pair
    _check_may_match(a, b)
    # resolve() (which skips the pairs may_match turns down) decides as scoring every pair would.
    full = score(a, b)
    target, match, others = resolve(a, [b])
    if full.decision == "merge":
        assert (target, match, others) == (b, full, [])
    elif full.decision == "review":
        assert (target, match, others) == (None, None, [(b, full)])
    else:
        assert (target, match, others) == (None, None, [])


@settings(max_examples=1500, deadline=None, database=None)
@given(person_pairs())
def test_a_pair_only_the_pruned_name_keys_would_find_scores_distinct(pair):
    a, b = pair
    assert search_keys(a) <= blocking_keys(a)
    assert _strong_keys(search_keys(a)) == _strong_keys(blocking_keys(a))  # phones, e-mails, identities all kept
    _check_search_keys(a, b)


DISTRICT_ONLY = {"city": "北京市", "district": "朝阳区"}
SETTINGS_OF_PAIRS = {
    "places": (
        (HOME, HOME),
        (HOME, {"city": "北京", "district": "朝阳", "address": "阳光花园3-2-1203"}),  # the same home written apart
        (HOME, DISTRICT_ONLY),
        (DISTRICT_ONLY, DISTRICT_ONLY),
        ({}, {}),
        (HOME, {}),
        (DISTRICT_ONLY, {}),
        (HOME, {"city": "上海市", "district": "浦东新区", "address": "世纪大道100号1203室"}),
    ),
    "birthdays": (("1990-01-02", "1990-01-02"), ("1990-01-02", "1991-05-06"), ("1990-01-02", ""), ("", "")),
}


def test_may_match_and_search_keys_hold_for_every_two_names_in_every_setting():
    """Exhaustively over the name families (every ordered pair of names), the places and the
    birthdays, without a shared phone, e-mail or identity (with one, may_match never turns a pair
    down and search_keys keeps the key): the close cases a random draw may miss."""
    turned_down = pruned = 0
    for name_a in PAIR_NAMES:
        for name_b in PAIR_NAMES:
            for place_a, place_b in SETTINGS_OF_PAIRS["places"]:
                for born_a, born_b in SETTINGS_OF_PAIRS["birthdays"]:
                    a = person("a", name_a, phones=("13900000001",), birthday=born_a, **place_a)
                    b = person("b", name_b, phones=("13900000002",), birthday=born_b, **place_b)
                    turned_down += _check_may_match(a, b)
                    pruned += _check_search_keys(a, b)
    assert turned_down > 10_000 and pruned > 100, (turned_down, pruned)


def test_a_compound_surname_with_a_doubled_given_name_is_found_by_search_keys():
    a = person("a", "欧阳芳", phones=("13900000001",), **HOME)
    b = person("b", "欧阳芳芳", phones=("13900000002",), **HOME)
    assert blocking_keys(a) & blocking_keys(b) == {"name2:欧洋*芳|北京"}
    assert score(a, b).decision == "review"
    assert search_keys(a) & search_keys(b)  # a compound surname keeps its second name key


@pytest.mark.parametrize(("profile", "seed"), [("all noise", 1), ("issue's list", 2), ("all noise", 5)])
def test_may_match_and_search_keys_hold_on_every_candidate_pair_of_the_synthetic_set(profile, seed):
    records = [item.record for item in generate(2000, seed=seed, noise=PROFILES[profile])]
    by_key: dict[str, list[int]] = {}
    for n, record in enumerate(records):
        for key in blocking_keys(record):
            by_key.setdefault(key, []).append(n)
    pairs = {(i, j) for ids in by_key.values() for i in ids for j in ids if i < j}
    turned_down = pruned = 0
    for i, j in sorted(pairs):
        turned_down += _check_may_match(records[i], records[j])
        pruned += _check_search_keys(records[i], records[j])
    # The checks bite: many pairs are turned down by may_match, some are pruned by search_keys.
    assert len(pairs) > 1000 and turned_down > 100 and pruned > 10, (len(pairs), turned_down, pruned)


NEVER = re.compile(r"(?!)")
_FULL_WIDTH = str.maketrans("0123456789+", "０１２３４５６７８９＋")
QUICK_TEST_NUMBERS = ("13800138000", "13912345678", "13888888888", "13800000000", "19876543210", "18600000000")


@st.composite
def plain_mobiles(draw) -> str:
    """An 11-digit number starting with 1 (any second and third digit: valid prefixes and not)
    or a test number, written as people do: grouped 3-4-4 or not, spaces or dashes, +86, 0086 or
    86 in front (or something like them that is not), spaces around; now and then a digit too
    few or too many, or full-width digits."""
    number = draw(
        st.one_of(
            st.builds(lambda p, rest: "1" + p + rest, st.text("0123456789", min_size=2, max_size=2),
                      st.text("0123456789", min_size=8, max_size=8)),
            st.sampled_from(QUICK_TEST_NUMBERS),
        )
    )  # fmt: skip
    if draw(st.integers(0, 9)) == 0:
        number = draw(st.sampled_from([number[:-1], number + draw(st.sampled_from("0123456789"))]))
    sep = draw(st.sampled_from(["", " ", "-", "  ", " -"]))
    if draw(st.booleans()):
        number = sep.join((number[:3], number[3:7], number[7:]))
    country = draw(
        st.sampled_from(["", "+86", "+86 ", "+86-", "0086", "0086 ", "0086-", "86", "86 ", "86-",
                         "+ 86 ", "+", "+8", "8", "6", "0", "00", "086", "+852 ", "+1 ", "(+86)"])
    )  # fmt: skip
    written = country + number
    if draw(st.integers(0, 9)) == 0:  # full-width digits from some place on (０-９ are \d, not [0-9])
        at = draw(st.integers(0, len(written)))
        written = written[:at] + written[at:].translate(_FULL_WIDTH)
    before, after = draw(st.sampled_from(["", " ", "  ", "\t", "\u3000"])), draw(st.sampled_from(["", " ", "  "]))
    return before + written + after


def _phone_outcome(value: str) -> tuple[str, ...]:
    try:
        return cleaning.clean_phone(value)
    except cleaning.Rejected as exc:
        return ("rejected", exc.field, exc.reason)


@settings(max_examples=2000, deadline=None, database=None)
@given(plain_mobiles())
def test_the_quick_path_for_plain_mobiles_answers_as_the_long_path(written):
    quick = _phone_outcome(written)
    with mock.patch.object(cleaning, "_QUICK_MOBILE", NEVER):
        slow = _phone_outcome(written)
    assert quick == slow, written


@pytest.mark.parametrize(
    "written",
    ["13912345670", "139 1234 5670", "139-1234-5670", " +86 13912345670", "+86-139 1234 5670", "0086 13912345670",
     "8613912345670", "86 139 1234 5670  "],
)  # fmt: skip
def test_the_quick_path_takes_the_plain_forms(written):
    assert cleaning._QUICK_MOBILE.fullmatch(written)  # the comparison above is not vacuous
    assert cleaning.clean_phone(written) == ("+8613912345670", "13912345670", "mobile")
