"""A labelled synthetic set for identity resolution: people as the chain's channels record them.

``generate(records, seed)`` makes true people (Faker zh_CN names, mobiles of the demo's prefixes,
the demo chain's cities, districts, streets and compounds) and lets each appear as 1 to 4 records
across the sources (store POS, online shop, WeChat mini-program, call centre, a rep's Excel), each
source filling the fields it has, with the noise real records carry:

- phones: a second phone on some records, a changed number on later ones (people change numbers);
- names: a slip of one character (mostly an IME homophone, 王芳/王方, 李娜/李那; some a look-alike
  no table knows), a space inside (王 芳), a doubled character (王芳芳), a surname with a title
  (王女士) in the call centre's and the reps' files, no name at all from WeChat;
- addresses: with or without 省/市, the district missing or shortened (浦东), the rest written
  three ways (3号楼2单元1203室, 3栋2单元1203, 3-2-1203) or with the city left in it, and some
  people moved house;
- e-mails, birthdays, genders and channel identities only where the source has them; a birthday
  mistyped now and then; a second POS membership (registered twice);

and the hard negatives: family members sharing a phone and the home (spouses with another
surname, parents, children and siblings with the same one, siblings sharing a generation
character), the common names (张伟, 王芳, 李娜 …) by the dozen in each city, and people with the
same name and the same birthday in another city.

How often each kind of noise occurs is a :class:`Noise`; ``PROFILES`` are the two sets the bench
measures. The records come in a random order, each with its true person's id; the same seed gives
the same set. The generator keeps its own lists of slips, independent of the matcher's table of
confusable characters (they overlap as real IME slips and a hand-made table would; the look-alikes
are in no table).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import NamedTuple

from faker import Faker

from server.imports.matching import Person
from server.seed import (
    COMPOUND_PREFIXES,
    COMPOUND_SUFFIXES,
    EMAIL_DOMAINS,
    MOBILE_PREFIXES,
    STORES,
    WECHAT_ALPHABET,
    StoreSpec,
)
from shared.enums import IdentityKind

SOURCES = ("pos", "online_shop", "wechat", "call_centre", "excel")
SOURCE_WEIGHTS = (30, 20, 25, 10, 15)
RECORDS_PER_PERSON = ((1, 2, 3, 4), (35, 35, 20, 10))


@dataclasses.dataclass(frozen=True)
class Noise:
    """How often each kind of noise and look-alike occurs (shares of people or of records)."""

    second_phone: float = 0.2  # people with a second number
    second_phone_only: float = 0.1  # ... whose record gives only the second
    both_phones: float = 0.1  # ... whose record gives both
    changed_number: float = 0.05  # people who changed their number during the records' years
    new_number_later: float = 0.6  # ... whose later records give the new one
    wechat_no_phone: float = 0.03  # mini-program members who did not authorise their phone
    wechat_no_name: float = 0.1  # ... who left the name empty
    name_slip: float = 0.03  # records with one character wrong (4 in 5 an IME homophone), if a slip is known
    name_space: float = 0.03  # 王 芳
    name_doubled: float = 0.01  # 王芳芳 (names with a one-character given name)
    name_title: float = 0.03  # 王女士 (call centre and Excel records)
    moved: float = 0.06  # people who moved house (later records give the new home)
    birthday_mistyped: float = 0.01
    second_membership: float = 0.1  # POS records under a second member id (registered twice)
    family: float = 0.12  # people with a family member in the set (same home)
    family_phone: float = 0.75  # family members who give the family's one number
    common_name: float = 0.10  # people carrying one of the commonest names
    namesake_elsewhere: float = 0.015  # people with a namesake of the same birthday in another city


# The sets the bench measures: every kind of noise, and only the kinds the issue lists (no WeChat
# records without a name, no 王女士 for a name: beyond the list, and on a phone a family may
# share only a person can resolve them).
PROFILES = {
    "all noise": Noise(),
    "issue's list": Noise(wechat_no_name=0.0, name_title=0.0),
}

COMMON_NAMES = (
    ("张伟", "male"), ("王伟", "male"), ("王芳", "female"), ("李伟", "male"), ("李娜", "female"),
    ("张敏", "female"), ("李静", "female"), ("王静", "female"), ("刘伟", "male"), ("王秀英", "female"),
    ("张丽", "female"), ("李秀英", "female"), ("王丽", "female"), ("张静", "female"), ("李强", "male"),
    ("王敏", "female"), ("李敏", "female"), ("王磊", "male"), ("刘洋", "male"), ("王艳", "female"),
    ("王勇", "male"), ("李军", "male"), ("张勇", "male"), ("李杰", "male"), ("张杰", "male"),
    ("张磊", "male"), ("王强", "male"), ("李娟", "female"), ("王军", "male"), ("张艳", "female"),
)  # fmt: skip

# Slips a typist makes in names: the homophone the IME offered next to the right character, or
# (for handwritten forms keyed in later) a character that looks alike.
HOMOPHONE_SLIPS = {
    "芳": "方", "方": "芳", "娜": "那", "伟": "玮", "静": "婧", "丽": "莉", "莉": "丽", "敏": "民",
    "军": "君", "华": "桦", "明": "铭", "杰": "洁", "婷": "亭", "磊": "蕾", "英": "瑛", "玲": "琳",
    "红": "虹", "刚": "钢", "勇": "永", "萍": "平", "平": "萍", "梅": "玫", "霞": "侠", "燕": "艳",
    "艳": "燕", "涛": "韬", "斌": "彬", "辉": "晖", "峰": "锋", "洋": "阳", "帆": "凡", "鹏": "朋",
    "飞": "菲", "雪": "学", "慧": "惠", "宇": "雨", "欣": "新", "佳": "家", "怡": "仪", "秀": "琇",
    "兰": "岚", "桂": "贵", "珍": "真", "凤": "风", "云": "芸", "倩": "茜", "颖": "英", "琴": "芹",
    "晶": "京", "丹": "单", "建": "健", "国": "果", "强": "墙", "超": "潮", "浩": "皓", "凯": "恺",
    "俊": "骏", "旭": "煦", "宁": "凝", "龙": "隆", "林": "琳", "成": "诚", "亮": "靓", "波": "博",
    "鑫": "新", "欢": "环", "帅": "率", "张": "章", "王": "汪", "李": "黎", "刘": "柳", "陈": "程",
    "徐": "许", "杨": "阳", "周": "舟", "吴": "武", "胡": "湖", "何": "和", "淑": "叔", "荣": "容",
    "春": "纯", "志": "智", "晓": "小", "小": "晓", "玉": "钰", "娟": "鹃", "婉": "宛", "璐": "露",
}  # fmt: skip
LOOKALIKE_SLIPS = {
    "娟": "涓", "婷": "停", "倩": "情", "琳": "淋", "玲": "铃", "洁": "结", "晶": "品", "玉": "王",
    "王": "玉", "秀": "季", "兰": "当", "梅": "海", "萍": "苹", "丽": "雨", "芳": "劳", "军": "车",
    "刚": "冈", "勇": "男", "明": "朋", "杰": "术", "华": "毕", "伟": "传", "红": "江", "英": "荚",
}  # fmt: skip
TITLES = {"female": ("女士", "小姐"), "male": ("先生",)}


class Labelled(NamedTuple):
    person_id: str  # the true person
    source: str
    record: Person


@dataclasses.dataclass
class Home:
    province: str
    city_full: str
    city: str
    district: str
    street: str
    number: int
    compound: str
    building: int
    unit: int
    room: str


@dataclasses.dataclass
class Human:
    pid: str
    surname: str
    given: str
    gender: str
    birthday: str
    store_code: str
    home: Home
    phone: str
    second_phone: str = ""
    new_phone: str = ""  # the number the person changed to
    email: str = ""
    unionid: str = ""
    pos_member: str = ""
    shop_id: str = ""
    openid: str = ""
    moved_to: Home | None = None
    family_phone: str = ""  # a family member's phone this person's records give instead of their own
    records: int = 1


class Generator:
    def __init__(self, seed: int, noise: Noise) -> None:
        self.rng = random.Random(seed)
        self.noise = noise
        fake = Faker("zh_CN")
        fake.seed_instance(seed)
        # Faker is slow; pools drawn once keep its frequency weighting (as server.seed does).
        self.surnames = [fake.last_name() for _ in range(3000)]
        self.given = {
            "female": [fake.first_name_female() for _ in range(1500)],
            "male": [fake.first_name_male() for _ in range(1500)],
        }
        self.given_chars = {g: sorted({c for n in names for c in n}) for g, names in self.given.items()}
        self.email_names = [fake.user_name() for _ in range(500)]
        self.numbers: set[str] = set()
        self.people: list[Human] = []
        self.store_ids = {spec.code: f"store-{spec.code.lower()}" for spec in STORES}

    # ---- people ------------------------------------------------------------------------------------

    def mobile(self) -> str:
        while True:
            number = self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            if number not in self.numbers:
                self.numbers.add(number)
                return number

    def code(self, prefix: str, digits: int) -> str:
        return prefix + "".join(self.rng.choices("0123456789", k=digits))

    def wechat_id(self) -> str:
        return "o" + "".join(self.rng.choices(WECHAT_ALPHABET, k=27))

    def given_name(self, gender: str) -> str:
        rng = self.rng
        if rng.random() < 0.5:
            return rng.choice(self.given[gender])
        return "".join(rng.choices(self.given_chars[gender], k=2))

    def birthday(self) -> str:
        age = self.rng.randint(25, 45) if self.rng.random() < 0.8 else self.rng.randint(20, 70)
        day = dt.date(2025, 1, 1) - dt.timedelta(days=age * 365 + self.rng.randint(0, 364))
        return day.isoformat()

    def home(self, spec: StoreSpec) -> Home:
        rng = self.rng
        return Home(
            province=spec.province,
            city_full=spec.city_full,
            city=spec.city,
            district=spec.districts[0] if rng.random() < 0.5 else rng.choice(spec.districts),
            street=rng.choice(spec.streets),
            number=rng.randint(1, 399),
            compound=rng.choice(COMPOUND_PREFIXES) + rng.choice(COMPOUND_SUFFIXES),
            building=rng.randint(1, 30),
            unit=rng.randint(1, 6),
            room=f"{rng.randint(1, 33)}{rng.randint(1, 6):02d}",
        )

    def human(
        self, *, spec: StoreSpec | None = None, name: tuple[str, str, str] | None = None, birthday: str = ""
    ) -> Human:
        """A new person; ``name`` is (surname, given, gender)."""
        rng = self.rng
        spec = spec or rng.choices(STORES, weights=[s.weight for s in STORES])[0]
        if name is None:
            if rng.random() < self.noise.common_name:
                full, gender = rng.choice(COMMON_NAMES)
                name = (full[0], full[1:], gender)
            else:
                gender = rng.choice(("female", "male"))
                name = (rng.choice(self.surnames), self.given_name(gender), gender)
        surname, given, gender = name
        has_birthday = rng.random() < 0.75
        person = Human(
            pid=f"P{len(self.people):06d}",
            surname=surname,
            given=given,
            gender=gender,
            birthday=birthday or (self.birthday() if has_birthday else ""),
            store_code=spec.code,
            home=self.home(spec),
            phone=self.mobile(),
            records=rng.choices(*RECORDS_PER_PERSON)[0],
        )
        if rng.random() < self.noise.second_phone:
            person.second_phone = self.mobile()
        if rng.random() < self.noise.changed_number:
            person.new_phone = self.mobile()
        if rng.random() < 0.4:
            person.email = self.email()
        if rng.random() < 0.55:
            person.unionid = self.wechat_id()
        person.pos_member = self.code("POS", 10)
        person.shop_id = self.code("TM", 11)
        person.openid = self.wechat_id()
        if rng.random() < self.noise.moved:
            person.moved_to = self.home(spec)
        self.people.append(person)
        return person

    def email(self) -> str:
        rng = self.rng
        if rng.random() < 0.4:
            return f"{rng.randrange(10**8, 10**10)}@qq.com"
        return f"{rng.choice(self.email_names)}{rng.randrange(10, 10_000)}@{rng.choice(EMAIL_DOMAINS)}"

    def family_member(self, of: Human) -> Human:
        """Someone living with ``of``: a spouse (another surname) or a parent, child or sibling
        (the same surname; siblings of 3-character names often share the middle character)."""
        rng = self.rng
        spec = next(s for s in STORES if s.code == of.store_code)
        while True:
            if rng.random() < 0.5:
                gender = "female" if of.gender == "male" else "male"
                surname, given = rng.choice(self.surnames), self.given_name(gender)
            else:
                gender = rng.choice(("female", "male"))
                surname = of.surname
                if len(of.given) == 2 and rng.random() < 0.4:
                    given = of.given[0] + rng.choice(self.given_chars[gender])
                else:
                    given = self.given_name(gender)
            # Not the same name, nor one that sounds like it: families do not name so.
            sounds_alike = len(given) == len(of.given) and all(
                x == y or HOMOPHONE_SLIPS.get(x) == y or HOMOPHONE_SLIPS.get(y) == x
                for x, y in zip(given, of.given, strict=True)
            )
            if not sounds_alike:
                break
        member = self.human(spec=spec, name=(surname, given, gender))
        member.home = of.home
        member.records = rng.choices((1, 2, 3), weights=(55, 35, 10))[0]
        if rng.random() < self.noise.family_phone:  # the family's one number, given by both
            member.family_phone = of.phone
        return member

    # ---- records -----------------------------------------------------------------------------------

    def name(self, person: Human, source: str) -> str:
        rng, noise = self.rng, self.noise
        if source == "wechat" and rng.random() < noise.wechat_no_name:
            return ""
        surname, given = person.surname, person.given
        roll = rng.random()
        if roll < noise.name_slip:
            position = rng.randrange(len(surname) + len(given))
            full = surname + given
            slips = HOMOPHONE_SLIPS if rng.random() < 0.8 else LOOKALIKE_SLIPS
            wrong = slips.get(full[position])
            if wrong:
                full = full[:position] + wrong + full[position + 1 :]
            return full
        roll -= noise.name_slip
        if roll < noise.name_space:
            return f"{surname} {given}"
        roll -= noise.name_space
        if roll < noise.name_doubled and len(given) == 1:
            return surname + given + given
        roll -= noise.name_doubled
        if roll < noise.name_title and source in ("call_centre", "excel"):
            return surname + rng.choice(TITLES[person.gender])
        return surname + given

    def phones(self, person: Human, source: str, late: bool) -> tuple[str, ...]:
        rng, noise = self.rng, self.noise
        if source == "wechat" and rng.random() < noise.wechat_no_phone:
            return ()
        own = person.new_phone if person.new_phone and late and rng.random() < noise.new_number_later else person.phone
        if person.family_phone and rng.random() < 0.8:  # else their own number
            own = person.family_phone
        phones = [own]
        if person.second_phone:
            roll = rng.random()
            if roll < noise.second_phone_only:
                phones = [person.second_phone]
            elif roll < noise.second_phone_only + noise.both_phones:
                phones.append(person.second_phone)
        return tuple(phones)

    def address(self, person: Human, source: str, late: bool) -> dict[str, str]:
        rng = self.rng
        chance = {"online_shop": 0.95, "pos": 0.4, "excel": 0.5, "call_centre": 0.3, "wechat": 0.15}[source]
        if rng.random() >= chance:
            return {"city": person.home.city_full if rng.random() < 0.5 else ""}
        home = person.moved_to if person.moved_to and late and rng.random() < 0.7 else person.home
        district = home.district
        roll = rng.random()
        if roll < 0.12:
            district = ""
        elif roll < 0.2:
            district = district.removesuffix("新区").removesuffix("区")
        if source == "call_centre" and rng.random() < 0.5:
            rest = ""
        else:
            form = rng.choices(("full", "short", "medium", "prefixed"), weights=(50, 20, 20, 10))[0]
            rest = {
                "full": f"{home.street}{home.number}号{home.compound}{home.building}号楼{home.unit}单元{home.room}室",
                "short": f"{home.compound}{home.building}-{home.unit}-{home.room}",
                "medium": f"{home.street}{home.number}号{home.compound}{home.building}栋{home.unit}单元{home.room}",
                "prefixed": f"{home.city_full}{home.district}{home.street}{home.number}号{home.compound}"
                f"{home.building}号楼{home.unit}单元{home.room}室",
            }[form]
        return {
            "province": home.province if rng.random() < 0.6 else "",
            "city": home.city_full if rng.random() < 0.6 else home.city,
            "district": district,
            "address": rest,
        }

    def record(self, person: Human, source: str, index: int, number: int) -> Labelled:
        rng = self.rng
        late = index > 0
        chances = {  # birthday, gender, e-mail
            "pos": (0.5, 0.7, 0.15),
            "online_shop": (0.1, 0.2, 0.6),
            "wechat": (0.2, 0.6, 0.0),
            "call_centre": (0.1, 0.6, 0.2),
            "excel": (0.3, 0.5, 0.3),
        }[source]
        birthday = person.birthday if person.birthday and rng.random() < chances[0] else ""
        if birthday and rng.random() < self.noise.birthday_mistyped:
            day = dt.date.fromisoformat(birthday)
            birthday = (day + dt.timedelta(days=rng.choice((-1, 1, 10, 365)))).isoformat()
        identities: list[tuple[str, str]] = []
        if source == "pos":
            member = self.code("POS", 10) if rng.random() < self.noise.second_membership else person.pos_member
            identities.append((IdentityKind.POS_MEMBER.value, member))
        elif source == "online_shop":
            identities.append(("online_shop_id", person.shop_id))  # the import's spelling of the kind
        elif source == "wechat":
            identities.append((IdentityKind.WECHAT_OPENID.value, person.openid))
            if person.unionid:
                identities.append((IdentityKind.WECHAT_UNIONID.value, person.unionid))
        record = Person(
            id=f"R{number:07d}",
            name=self.name(person, source),
            phones=self.phones(person, source, late),
            emails=(person.email,) if person.email and rng.random() < chances[2] else (),
            identities=tuple(identities),
            birthday=birthday,
            gender=person.gender if rng.random() < chances[1] else "",
            store_id=self.store_ids[person.store_code] if source in ("pos", "excel") else "",
            **self.address(person, source, late),
        )
        return Labelled(person.pid, source, record)


def generate(records: int, seed: int = 1, noise: Noise = Noise()) -> list[Labelled]:
    """``records`` labelled records (in arrival order) of people made from ``seed``."""
    gen = Generator(seed, noise)
    rng = gen.rng
    planned = 0
    while planned < records:
        person = gen.human()
        planned += person.records
        if rng.random() < noise.family:
            planned += gen.family_member(person).records
        if rng.random() < noise.namesake_elsewhere and person.birthday:
            elsewhere = [s for s in STORES if s.city != person.home.city]
            namesake = gen.human(
                spec=rng.choice(elsewhere), name=(person.surname, person.given, person.gender), birthday=person.birthday
            )
            planned += namesake.records
    out: list[Labelled] = []
    for person in gen.people:
        for index in range(person.records):
            source = rng.choices(SOURCES, weights=SOURCE_WEIGHTS)[0]
            out.append(gen.record(person, source, index, len(out)))
    rng.shuffle(out)
    return out[:records]
