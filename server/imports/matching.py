"""Identity resolution: whether two cleaned customer records are one person, how sure, and why.

Pure functions over :class:`Person` (a record already cleaned: phones as national digits, e-mails
lower-cased, names NFKC-normalised and trimmed, the address split into province / city / district /
rest). The database side finds candidates by :func:`blocking_keys` and merges; this module scores.

**Points.** Each piece of evidence adds points, roughly the log-odds it lends to "one person";
``score = 1 / (1 + exp(-(points - BIAS)))``, so 4 points score 0.5.

==========================================  ======  ==============================================
evidence                                    points  why
==========================================  ======  ==============================================
a shared channel identity: WeChat unionid,     +10  issued to one person. An openid is per app:
POS member id, online shop id, WeChat               a shared one is as strong, different ones say
openid (same kind and value)                        nothing. Different POS ids say nothing either
                                                    (registering twice is what we look for)
both have unionids, none shared                 -3  one unionid per person across the brand's apps
a shared phone / a shared e-mail            +4 / +4  families share them, carriers re-issue numbers:
                                                    the name has to agree
the same name (spaces ignored: 王芳 = 王 芳)       +3
one confusable character apart (王芳/王方,     +2.5  the pinyin IME offers homophones side by side;
李娜/李那, 张/章; the table below)                    the name key folds them too
the last character doubled (王芳/王芳芳)        +2.5  the pet name 芳芳, or a doubled keystroke
one character more (王芳/王小芳)               +0.5  a slip, or someone else: unsure
one other character apart in a given name       -3  a slip or a sibling (王建国/王建军): unsure
of 2+ characters
the same surname, another given name            -6  a family member on the family's phone
another surname                                 -8  a spouse, a parent in law
a surname and a title only (王女士)                0  as reps and call centres write; the title
                                                    gives the gender
the same district                             +0.5
the rest of the address similar             +2.5  rapidfuzz token_set_ratio over street, numbers
(≥ ADDRESS_SIMILAR_AT; ≥ ADDRESS_NEAR_AT: +1)       and compound, unit words dropped: 3号楼2单元
                                                    1203室 = 3栋2单元1203 = 3-2-1203
different cities                                -1  people move, but seldom between two records
the same birthday                               +4  two people of an age share one ~1 in 15,000
different birthdays / genders (female/male)  -6 / -6  entered from a form: nearly always two people
==========================================  ======  ==============================================

**Decision**: ``merge`` at ``score ≥ MERGE_AT``, ``review`` (a person decides, in the app) from
``REVIEW_AT``, else ``distinct``; then caps and floors, each named in the reasons:

- ``no_shared_identifier``: without a shared channel identity, phone or e-mail, a pair merges only
  when the names agree (same, confusable or doubled), the district is the same, the rest of the
  address similar AND the birthday the same; else the score stops just below ``MERGE_AT``. Common
  names (张伟, 王芳) share cities and districts by the thousand;
- ``names_unconfirmed``: a shared phone or e-mail merges only when the names agree (or, a name
  missing, the birthday is the same): families share a phone and a home, so a missing name, a
  title (王女士) or one character more does not tell them apart;
- ``identifier_conflict`` / ``contact_conflict``: a shared channel identity, or a shared phone or
  e-mail with agreeing names, never scores below ``REVIEW_AT``: a conflicting birthday or name next
  to an exact identifier is for a person to look at, not to drop.

``MERGE_AT`` and ``REVIEW_AT`` were tuned on the labelled synthetic set of ``bench/identity_data.py``
(``python -m bench.identity``). ``MERGE_AT`` = 5.7 points lies between 5.5 (a shared phone and a
confusable name in another city: review) and 6 (a shared phone and the same name in another city:
merge); on the set every value from 0.51 to 0.88 decides alike, the caps deciding the close cases,
at a precision of 1.00. ``REVIEW_AT`` = 4 points: a shared phone with a missing name is reviewed, the
same name in the same district is not.

Identity kinds are :class:`shared.enums.IdentityKind` values; the import's field names
``pos_member_id`` and ``online_shop_id`` mean the same kinds (an unknown kind is a ValueError).
"""

from __future__ import annotations

import functools
import math
import re
from typing import Literal

import msgspec
from rapidfuzz import fuzz

from shared.enums import IdentityKind

Decision = Literal["merge", "review", "distinct"]

BIAS = 4.0  # the points at which the score is 0.5
MERGE_AT = 0.85  # ≈ 5.7 points: a shared phone and the same (or a confusable) name, 6.5 and up
REVIEW_AT = 0.5  # 4 points: a shared phone and a missing name
NAMES_AGREE = frozenset(("same", "confusable", "doubled"))  # name kinds that can carry an automatic merge
ADDRESS_SIMILAR_AT = 0.9  # token_set_ratio of the rest of the address counted as "the same address"
ADDRESS_NEAR_AT = 0.75

STRONG_POINTS = 10.0
UNIONID_DIFFERS_POINTS = -3.0
PHONE_POINTS = 4.0
EMAIL_POINTS = 4.0
NAME_POINTS = {
    "same": 3.0,
    "confusable": 2.5,
    "doubled": 2.5,
    "extra_char": 0.5,
    "one_char": -3.0,
    "given_differs": -6.0,
    "differs": -8.0,
    "title_only": 0.0,
}
DISTRICT_POINTS = 0.5
ADDRESS_SIMILAR_POINTS = 2.5
ADDRESS_NEAR_POINTS = 1.0
CITY_DIFFERS_POINTS = -1.0
BIRTHDAY_POINTS = 4.0
BIRTHDAY_CONFLICT_POINTS = -6.0
GENDER_CONFLICT_POINTS = -6.0

_KINDS = {
    "pos_member_id": IdentityKind.POS_MEMBER,
    "online_shop_id": IdentityKind.ONLINE_SHOP,
    **{k.value: k for k in IdentityKind},
}

# Characters typed for one another in names: homophones the pinyin IME offers side by side (tones
# ignored, as the IME ignores them), and 陈/程 (chen/cheng merge in southern speech). A character
# belongs to one group; the group's first character stands for it in the name key.
_CONFUSABLE_GROUPS = (
    "芳方舫", "娜那纳", "伟玮炜维薇卫", "静婧靖晶菁", "丽莉俐利立", "敏民旻", "军君俊骏峻珺", "华桦",
    "明铭鸣", "杰洁婕捷", "婷亭庭霆", "磊蕾雷", "英瑛颖莹盈", "玲伶灵", "林琳霖", "红虹宏鸿洪", "刚钢",
    "勇涌永咏", "萍平苹", "梅玫美", "霞侠", "燕艳雁妍彦", "涛韬", "斌彬滨", "辉晖慧惠卉", "峰锋丰枫凤风",
    "洋阳扬杨", "帆凡", "鹏朋", "飞菲非", "雪学", "宇羽雨语玉瑜钰", "欣新馨心鑫", "佳家嘉", "怡宜仪艺毅",
    "秀琇", "兰岚", "倩茜", "琴芹", "丹单", "建健剑", "浩皓昊", "凯恺", "旭煦", "晓小筱", "春纯", "淑舒",
    "珍真贞", "荣蓉容融", "云芸韵", "志智芝", "张章", "王汪", "陈程", "徐许", "刘柳", "周舟", "吴武",
    "黄皇", "胡湖", "萧肖",
)  # fmt: skip
_FOLD = {c: group[0] for group in _CONFUSABLE_GROUPS for c in group}
_COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 令狐 慕容 司徒 尉迟 公孙 夏侯 轩辕 端木 长孙 宇文 西门 南宫 独孤 申屠".split()
)
_TITLES = ("先生", "女士", "小姐", "老师", "阿姨", "师傅")
_TITLE_GENDER = {"先生": "male", "女士": "female", "小姐": "female", "阿姨": "female"}
_MUNICIPALITIES = frozenset(("北京", "上海", "天津", "重庆"))
_PLACE_SUFFIX = re.compile(r"(特别行政区|维吾尔自治区|壮族自治区|回族自治区|自治区|自治州|新区|省|市|区|县|盟|旗)$")
_UNIT_WORDS = re.compile(r"号楼|单元|[号楼栋幢座室层#\-—－/]")
_TOKENS = re.compile(r"\d+|[^\d\s]+")
_SPACES = re.compile(r"\s+")


class Person(msgspec.Struct, frozen=True):
    """One cleaned customer record (an import row, or a customer we have)."""

    id: str
    name: str = ""
    phones: tuple[str, ...] = ()  # national significant digits
    emails: tuple[str, ...] = ()  # lower-cased
    identities: tuple[tuple[str, str], ...] = ()  # (kind, value): IdentityKind values or the import's field names
    province: str = ""
    city: str = ""
    district: str = ""
    address: str = ""  # the rest after province, city and district
    birthday: str = ""  # ISO date or ""
    gender: str = ""  # "female" | "male" | "" (anything else counts as unknown)
    store_id: str = ""


class Match(msgspec.Struct, frozen=True):
    """How sure that two records are one person: the score (0..1), what follows from it, and why
    (``reasons``: codes such as ``same_phone``, ``name_confusable:0.50`` (rapidfuzz's ratio of the
    names), ``address_similar:0.93``; ``reasons_zh``: the same reasons, in order, in Chinese as the
    app shows them)."""

    score: float
    decision: Decision
    reasons: tuple[str, ...]

    @property
    def reasons_zh(self) -> tuple[str, ...]:
        # Worked out when asked: an import scores many pairs and shows few.
        return tuple(_zh(r) for r in self.reasons)


# --- names and places --------------------------------------------------------------------------------


# The helpers below are pure functions of short texts that recur across records (an import scores
# the same names, cities and addresses again and again): cached.
_CACHE = 1 << 18


@functools.lru_cache(maxsize=_CACHE)
def _compact(name: str) -> str:
    """王 芳 → 王芳; Latin names lower-cased with single spaces."""
    if any("a" <= c <= "z" or "A" <= c <= "Z" for c in name):
        return _SPACES.sub(" ", name).strip().lower()
    return _SPACES.sub("", name)


@functools.lru_cache(maxsize=_CACHE)
def _fold(name: str) -> str:
    """Each confusable character replaced by its group's first: 王芳 and 汪方 fold alike."""
    return "".join(_FOLD.get(c, c) for c in name)


_GROUP_OF = {c: group for group in _CONFUSABLE_GROUPS for c in group}
_SPELLINGS_AT_MOST = 512  # a name of four characters from the biggest groups has 7⁴ = 2,401


@functools.lru_cache(maxsize=_CACHE)
def spellings(name: str) -> tuple[str, ...]:
    """Every name that folds like ``name`` (王方 → 王芳, 王方, 王舫, 汪芳, 汪方, 汪舫): what a customer
    in the database must be called for ``name``'s name key to find it — the database is asked by
    the exact name (its index). Beyond ``_SPELLINGS_AT_MOST`` spellings (4 characters each from a
    big group), those with one character changed."""
    groups = [_GROUP_OF.get(c, c) for c in name]
    if math.prod(len(g) for g in groups) <= _SPELLINGS_AT_MOST:
        out = [""]
        for group in groups:
            out = [head + c for head in out for c in group]
        return tuple(out)
    return (name, *(name[:i] + c + name[i + 1 :] for i, g in enumerate(groups) for c in g if c != name[i]))


def _surname_length(name: str) -> int:
    return 2 if name[:2] in _COMPOUND_SURNAMES and len(name) > 2 else 1


@functools.lru_cache(maxsize=_CACHE)
def _title(name: str) -> str:
    """'先生' for 王先生 (a surname and a title, as reps and call centres write), else ''."""
    for title in _TITLES:
        if name.endswith(title) and 1 <= len(name) - len(title) <= 2:
            return title
    return ""


def _is_latin(name: str) -> bool:
    return any("a" <= c <= "z" for c in name)


@functools.lru_cache(maxsize=_CACHE)
def name_kind(a: str, b: str) -> tuple[str, float]:
    """How two compact names relate (a key of NAME_POINTS) and rapidfuzz's ratio (0..1)."""
    ratio = fuzz.ratio(a, b) / 100
    if a == b:
        return "same", ratio
    if (len(a), a) > (len(b), b):  # the same answer either way round
        a, b = b, a
    if _is_latin(a) or _is_latin(b):
        similar = fuzz.token_sort_ratio(a, b) / 100
        return ("confusable" if similar >= 0.85 else "differs"), ratio
    title_a, title_b = _title(a), _title(b)
    if title_a or title_b:
        surname_a = a[: len(a) - len(title_a)] if title_a else a[: _surname_length(a)]
        surname_b = b[: len(b) - len(title_b)] if title_b else b[: _surname_length(b)]
        return ("title_only" if _fold(surname_a) == _fold(surname_b) else "differs"), ratio
    surname = _surname_length(b)
    if len(a) == len(b):
        differ = [i for i in range(len(a)) if a[i] != b[i]]
        if len(differ) == 1:
            i = differ[0]
            if _FOLD.get(a[i], a[i]) == _FOLD.get(b[i], b[i]):
                return "confusable", ratio
            if i < surname:
                return "differs", ratio
            return ("one_char" if len(a) - surname >= 2 else "given_differs"), ratio
        if _fold(a) == _fold(b):
            return "confusable", ratio
        if _fold(a[:surname]) != _fold(b[:surname]):
            return "differs", ratio
        return "given_differs", ratio
    short, long = a, b
    if len(long) - len(short) == 1 and short[:surname] == long[:surname]:
        if long == short + short[-1] and len(short) - surname == 1:
            return "doubled", ratio  # 王芳芳: the pet name 芳芳, or the IME's doubled character
        if any(long[:i] + long[i + 1 :] == short for i in range(surname, len(long))):
            return "extra_char", ratio
    if _fold(a[:surname]) != _fold(b[:surname]):
        return "differs", ratio
    return "given_differs", ratio


@functools.lru_cache(maxsize=_CACHE)
def _place(text: str) -> str:
    """北京市 → 北京, 浦东新区 → 浦东: how sources differ in writing the same place."""
    text = text.strip()
    stripped = _PLACE_SUFFIX.sub("", text)
    return stripped if len(stripped) >= 2 else text


def _city(p: Person) -> str:
    city = _place(p.city)
    if city:
        return city
    province = _place(p.province)
    return province if province in _MUNICIPALITIES else ""


def _address_text(p: Person) -> str:
    return _rest_of_address(p.address, p.province, p.city, p.district)


@functools.lru_cache(maxsize=_CACHE)
def _rest_of_address(address: str, province: str, city: str, district: str) -> str:
    """The rest of the address as tokens (street, numbers, compound), without the unit words that
    sources write differently (3号楼2单元1203室 = 3栋2单元1203 = 3-2-1203) and without the
    province, city or district a source may have left in it."""
    rest = _SPACES.sub("", address)
    for place in (province, city, district):
        for form in (place, _place(place)):
            if form and rest.startswith(form):
                rest = rest[len(form) :]
    return " ".join(_TOKENS.findall(_UNIT_WORDS.sub(" ", rest)))


def _identities(p: Person) -> frozenset[tuple[IdentityKind, str]]:
    if not p.identities:
        return frozenset()
    try:
        return _identity_set(p.identities)
    except KeyError as exc:
        raise ValueError(f"record {p.id}: unknown identity kind {exc.args[0]!r} (one of {', '.join(_KINDS)})") from None


@functools.lru_cache(maxsize=_CACHE)
def _identity_set(identities: tuple[tuple[str, str], ...]) -> frozenset[tuple[IdentityKind, str]]:
    return frozenset((_KINDS[kind], value) for kind, value in identities if value)


def identity_key(kind: str, value: str) -> str:
    """The blocking key of one channel identity (``kind`` an IdentityKind value or an import field name)."""
    return f"id:{_KINDS[kind]}:{value}"


# --- blocking ----------------------------------------------------------------------------------------


def blocking_keys(p: Person) -> set[str]:
    """The keys under which candidates for ``p`` are looked up (and ``p`` is indexed):

    - ``phone:<digits>`` for each phone, ``email:<address>`` for each e-mail;
    - ``id:<kind>:<value>`` for each channel identity (kind as IdentityKind's value);
    - ``name:<name>|<city>``: the name without spaces, confusable characters folded (so 王芳 and
      王方 share a key without pinyin), and the city without 市 (北京市 = 北京; "" if unknown);
    - ``name2:<surname>*<last character>|<city>`` for names of 3+ characters (folded): the key a
      slip in a middle character (王建国/王健国 are folded alike, 王建国/王见国 are not) still finds.

    A surname with a title (王女士) gets no name key: it would match half the city.
    """
    keys = {f"phone:{d}" for d in p.phones if d}
    keys |= {f"email:{e}" for e in p.emails if e}
    keys |= {f"id:{kind}:{value}" for kind, value in _identities(p)}
    if p.name:
        keys.update(_name_keys(p.name, _city(p)))
    return keys


def search_keys(p: Person) -> set[str]:
    """The :func:`blocking_keys` worth indexing and looking up when records are resolved in bulk:
    all but the name keys that cannot bring a candidate above ``distinct``.

    Found by a name key alone (no shared identity, phone or e-mail), a pair scores at most the
    name's 3 points, +0.5 for the district, +2.5 for a similar address and +4 for the same
    birthday; the review band starts at 4 points. So a name key matters only to records with an
    address or a birthday, and the second name key (``name2:``, whose pairs are no closer than one
    character more, +0.5 — but for a compound surname with a doubled given name, 欧阳芳 / 欧阳芳芳,
    +2.5, so those keep it) only to records with a birthday — on both sides of the pair, so the
    pruned keys are neither indexed nor looked up. (A test checks the argument against
    :func:`score`.)"""
    keys = blocking_keys(p)
    if p.birthday:
        return keys
    if not p.address:
        return {k for k in keys if not k.startswith(("name:", "name2:"))}
    if _surname_length(_compact(p.name)) == 2:
        return keys  # 欧阳芳 / 欧阳芳芳 ("doubled", +2.5) share only the second key
    return {k for k in keys if not k.startswith("name2:")}


@functools.lru_cache(maxsize=_CACHE)
def _name_keys(name: str, city: str) -> tuple[str, ...]:
    name = _compact(name)
    if not name or _title(name):
        return ()
    folded = _fold(name)
    if len(name) >= 3 and not _is_latin(name):
        return f"name:{folded}|{city}", f"name2:{folded[: _surname_length(name)]}*{folded[-1]}|{city}"
    return (f"name:{folded}|{city}",)


# --- scoring -----------------------------------------------------------------------------------------

_ZH = {
    "same_wechat_unionid": "微信 unionid 相同",
    "same_wechat_openid": "微信 openid 相同",
    "same_pos_member": "POS 会员号相同",
    "same_online_shop": "网店账号相同",
    "unionid_differs": "微信 unionid 不同",
    "same_phone": "手机号相同",
    "same_email": "邮箱相同",
    "name_same": "姓名相同",
    "name_confusable": "姓名有一个同音/形近字之差（{}）",
    "name_doubled": "名字叠字（{}）",
    "name_extra_char": "姓名多一个字（{}）",
    "name_one_char": "名字有一个字不同（{}）",
    "name_given_differs": "同姓不同名（{}）",
    "name_differs": "姓名不同（{}）",
    "name_title_only": "只有姓氏和称呼（{}）",
    "same_district": "同一区县",
    "address_similar": "详细地址相近（{}）",
    "address_near": "详细地址部分相同（{}）",
    "different_city": "城市不同",
    "same_birthday": "生日相同",
    "birthday_conflict": "生日不同",
    "gender_conflict": "性别不同",
    "no_shared_identifier": "没有共同的手机号、邮箱或渠道账号，需人工确认",
    "names_unconfirmed": "姓名未能确认是同一人（家人常共用手机号），需人工确认",
    "identifier_conflict": "渠道账号相同但信息有冲突，需人工确认",
    "contact_conflict": "手机号或邮箱和姓名相同但信息有冲突，需人工确认",
}


def _zh(code: str) -> str:
    key, _, value = code.partition(":")
    return _ZH[key].format(value)


def _sigmoid(points: float) -> float:
    return 1 / (1 + math.exp(-(points - BIAS)))


def score(a: Person, b: Person) -> Match:
    """How sure that ``a`` and ``b`` are one person (the rules: the module's docstring)."""
    points = 0.0
    reasons: list[str] = []

    ids_a, ids_b = _identities(a), _identities(b)
    shared_ids = sorted({kind for kind, _ in ids_a & ids_b})
    if shared_ids:
        points += STRONG_POINTS
        reasons += [f"same_{kind}" for kind in shared_ids]
    unionids_a = {v for k, v in ids_a if k == IdentityKind.WECHAT_UNIONID}
    unionids_b = {v for k, v in ids_b if k == IdentityKind.WECHAT_UNIONID}
    if unionids_a and unionids_b and not unionids_a & unionids_b:
        points += UNIONID_DIFFERS_POINTS
        reasons.append("unionid_differs")
    shared_phone = bool(set(a.phones) & set(b.phones) - {""})
    if shared_phone:
        points += PHONE_POINTS
        reasons.append("same_phone")
    shared_email = bool(set(a.emails) & set(b.emails) - {""})
    if shared_email:
        points += EMAIL_POINTS
        reasons.append("same_email")

    kind = ""
    name_a, name_b = _compact(a.name), _compact(b.name)
    if name_a and name_b:
        kind, ratio = name_kind(name_a, name_b)
        points += NAME_POINTS[kind]
        reasons.append("name_same" if kind == "same" else f"name_{kind}:{ratio:.2f}")

    city_a, city_b = _city(a), _city(b)
    same_district = address_similar = False
    if city_a and city_b and city_a != city_b:
        points += CITY_DIFFERS_POINTS
        reasons.append("different_city")
    else:
        district_a, district_b = _place(a.district), _place(b.district)
        same_district = bool(district_a) and district_a == district_b
        if same_district:
            points += DISTRICT_POINTS
            reasons.append("same_district")
        rest_a, rest_b = _address_text(a), _address_text(b)
        if rest_a and rest_b:
            similarity = fuzz.token_set_ratio(rest_a, rest_b) / 100
            if similarity >= ADDRESS_SIMILAR_AT:
                address_similar = True
                points += ADDRESS_SIMILAR_POINTS
                reasons.append(f"address_similar:{similarity:.2f}")
            elif similarity >= ADDRESS_NEAR_AT:
                points += ADDRESS_NEAR_POINTS
                reasons.append(f"address_near:{similarity:.2f}")

    same_birthday = False
    if a.birthday and b.birthday:
        same_birthday = a.birthday == b.birthday
        points += BIRTHDAY_POINTS if same_birthday else BIRTHDAY_CONFLICT_POINTS
        reasons.append("same_birthday" if same_birthday else "birthday_conflict")
    gender_a = _TITLE_GENDER.get(_title(name_a), a.gender) if name_a else a.gender
    gender_b = _TITLE_GENDER.get(_title(name_b), b.gender) if name_b else b.gender
    if {gender_a, gender_b} == {"female", "male"}:
        points += GENDER_CONFLICT_POINTS
        reasons.append("gender_conflict")

    value = round(_sigmoid(points), 4)
    names_agree = kind in NAMES_AGREE
    shared_contact = shared_phone or shared_email
    if value >= MERGE_AT and not shared_ids:
        cap = ""
        if not shared_contact:
            if not (names_agree and same_district and address_similar and same_birthday):
                cap = "no_shared_identifier"
        elif not names_agree and not (kind == "" and same_birthday):
            cap = "names_unconfirmed"
        if cap:
            value = round(MERGE_AT - 0.0001, 4)
            reasons.append(cap)
    if value < REVIEW_AT and (shared_ids or (shared_contact and names_agree)):
        value = REVIEW_AT
        reasons.append("identifier_conflict" if shared_ids else "contact_conflict")
    decision: Decision = "merge" if value >= MERGE_AT else "review" if value >= REVIEW_AT else "distinct"
    return Match(value, decision, tuple(reasons))


_MOST_NAME_POINTS = max(NAME_POINTS.values())


def may_match(a: Person, b: Person) -> bool:
    """False only when :func:`score` would surely call the pair ``distinct``: an upper bound on the
    points, for the many candidates a name key brings (张伟 in 北京). With a shared channel
    identity, phone or e-mail the pair is always scored in full; without, the points can only come
    from the name, the district, the address and the birthday (each counted here at most as score
    counts it; the penalties left out), and the caps and floors of :func:`score` never lift such a
    pair to ``review``. (Tests check this against :func:`score`.)"""
    if a.identities and b.identities and _identities(a) & _identities(b):
        return True
    if (a.phones and b.phones and not set(a.phones).isdisjoint(b.phones)) or (
        a.emails and b.emails and not set(a.emails).isdisjoint(b.emails)
    ):
        return True
    name_a, name_b = _compact(a.name), _compact(b.name)
    points = NAME_POINTS[name_kind(name_a, name_b)[0]] if name_a and name_b else 0.0
    if a.district and b.district and _place(a.district) == _place(b.district):
        points += DISTRICT_POINTS
    if a.birthday and a.birthday == b.birthday:
        points += BIRTHDAY_POINTS
    if a.address and b.address:
        if round(_sigmoid(points + ADDRESS_SIMILAR_POINTS), 4) < REVIEW_AT:
            return False  # not even with a similar address
        # The address as score compares it (same-name namesakes with an address are common, and
        # most live elsewhere): only the points it can bring, never more.
        rest_a, rest_b = _address_text(a), _address_text(b)
        if rest_a and rest_b:
            similarity = fuzz.token_set_ratio(rest_a, rest_b) / 100
            if similarity >= ADDRESS_SIMILAR_AT:
                points += ADDRESS_SIMILAR_POINTS
            elif similarity >= ADDRESS_NEAR_AT:
                points += ADDRESS_NEAR_POINTS
    return round(_sigmoid(points), 4) >= REVIEW_AT


def resolve(record: Person, candidates: list[Person]) -> tuple[Person | None, Match | None, list[tuple[Person, Match]]]:
    """Score ``record`` against its candidates: the best automatic-merge target and its match (None,
    None when no candidate reaches MERGE_AT; of equal scores the first), and every other candidate at
    or above REVIEW_AT with its match, best first. Among those, one at merge level means the record
    shows two customers we have to be one person (the import merges it into the target too); the
    rest are for a person to decide."""
    scored = [(c, score(record, c)) for c in candidates if c.id != record.id and may_match(record, c)]
    best = None
    for n, (_, match) in enumerate(scored):
        if match.decision == "merge" and (best is None or match.score > scored[best][1].score):
            best = n
    others = [pair for n, pair in enumerate(scored) if n != best and pair[1].decision != "distinct"]
    others.sort(key=lambda pair: -pair[1].score)
    if best is None:
        return None, None, others
    return scored[best][0], scored[best][1], others
