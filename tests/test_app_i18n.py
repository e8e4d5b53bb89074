"""The app's words: both catalogues complete and alike, every key the code asks for present (also
the ones built from enum values), every call giving the values its text needs, and the bundled
font able to draw every character of them."""

from __future__ import annotations

import ast
import re
import string
import typing
from pathlib import Path

import pytest

from mobile import desktop, engine, state
from mobile.i18n import CATALOGUES, DEFAULT_LOCALE, EN, LOCALES, ZH, pick_locale, t
from mobile.ui import screens
from shared import complaints as complaint_rules
from shared import imports as import_rules
from shared import kb
from shared import sync as proto
from shared.enums import (
    ComplaintCategory,
    ComplaintStatus,
    Group,
    Health,
    InteractionChannel,
    InteractionKind,
    OrderChannel,
    Role,
    TaskKind,
    ValueTier,
)

ROOT = Path(__file__).resolve().parents[1]
MOBILE = ROOT / "mobile"
FONT = MOBILE / "assets" / "fonts" / "NotoSansSC-Floorwalker.otf"


def sources() -> list[Path]:
    """The app's Python files (not the copy scripts/build_phone assembles under mobile/build)."""
    return sorted(p for p in MOBILE.rglob("*.py") if "build" not in p.relative_to(MOBILE).parts)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def literal(text: str) -> str:
    """The text without its {placeholders} (what the font draws besides the values)."""
    return "".join(part for part, _, _, _ in string.Formatter().parse(text))


# --- the catalogues -------------------------------------------------------------------------------------


def test_both_catalogues_have_the_same_keys():
    assert set(CATALOGUES) == set(LOCALES) and DEFAULT_LOCALE in LOCALES
    assert sorted(set(ZH) - set(EN)) == [], "keys only in Chinese"
    assert sorted(set(EN) - set(ZH)) == [], "keys only in English"


@pytest.mark.parametrize("key", sorted(ZH))
def test_both_texts_of_a_key_take_the_same_values(key):
    assert placeholders(ZH[key]) == placeholders(EN[key]), (ZH[key], EN[key])
    assert ZH[key].strip() and EN[key].strip()
    for text in (ZH[key], EN[key]):  # formats with its own values (no stray or unbalanced braces)
        text.format(**dict.fromkeys(placeholders(text), "x"))


HAN = re.compile(r"[\u4e00-\u9fff]")


def test_texts_are_translated():
    same = [k for k in ZH if ZH[k] == EN[k] and HAN.search(ZH[k]) and "/" not in ZH[k]]
    assert same == [], "Chinese text in the English catalogue"
    english_in_zh = [k for k in ZH if re.search(r"[A-Za-z]{3}", literal(ZH[k])) and not HAN.search(ZH[k])]
    assert english_in_zh == [], "English text in the Chinese catalogue"


def test_t_formats_and_falls_back_to_chinese():
    assert t("zh", "sync.pending", count=3) == "待上传 3"
    assert t("en", "sync.pending", count=3) == "Pending 3"
    assert t("fr", "nav.today") == ZH["nav.today"]
    with pytest.raises(KeyError):
        t("zh", "no.such.key")
    assert pick_locale(["en-US"]) == "en" and pick_locale("zh_CN") == "zh" and pick_locale(["de-DE"]) == "zh"
    assert pick_locale(None) == DEFAULT_LOCALE


# --- the keys the code uses -----------------------------------------------------------------------------

TR_CALL = re.compile(r"""\b(?:tr|t)\(\s*(?:[\w.]+\s*,\s*)?(["'])([^"'{}]+)\1\s*[,)]""")


def test_every_literal_key_the_code_asks_for_exists():
    """``state.tr("…")`` / ``self.tr("…")`` / ``t(locale, "…")`` with a literal key, found by a regex."""
    found: dict[str, list[str]] = {}
    for path in sources():
        for match in TR_CALL.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(match.group(2), []).append(path.name)
    assert len(found) > 100, "the regex no longer finds the calls"
    missing = {key: files for key, files in found.items() if key not in ZH}
    assert missing == {}


NAMESPACES = {key.split(".")[0] for key in ZH}


def _calls(tree: ast.AST) -> typing.Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("tr", "t"):
                yield node


def _key_arg(call: ast.Call) -> ast.expr | None:
    func = call.func
    is_t = isinstance(func, ast.Name) and func.id == "t"
    args = call.args[1:] if is_t else call.args
    return args[0] if args else None


def test_every_call_with_a_literal_key_gives_exactly_the_values_its_texts_need():
    """A missing value raises KeyError on the rep's phone; a text asked for without its values shows
    '{count}' to them."""
    checked = 0
    wrong = []
    for path in sources():
        for call in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            key = _key_arg(call)
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)) or key.value not in ZH:
                continue
            if any(k.arg is None for k in call.keywords):
                continue  # **values: not checkable here
            given = {k.arg for k in call.keywords}
            if given != placeholders(ZH[key.value]):
                wrong.append(f"{path.name}:{call.lineno} {key.value}: gives {sorted(given)}")
            checked += 1
    assert checked > 100 and wrong == []


def test_every_literal_that_looks_like_a_key_is_one():
    """Keys kept outside tr() calls (the filter chips' and the tabs' tables): any string constant
    in the app shaped like '<namespace>.<name>' with a catalogue namespace must be a key (sync
    mutation names, e.g. 'complaint.step', are names of their own: their texts are 'mut.<name>')."""
    bad = []
    for path in sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_fstrings = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in in_fstrings:
                value = node.value
                if re.fullmatch(r"[a-z_]+(\.[a-z_0-9]+)+", value) and value.split(".")[0] in NAMESPACES:
                    if (
                        value not in ZH
                        and value not in proto.MUTATION_ARGS
                        and not any(k.startswith(value + ".") for k in ZH)
                    ):
                        bad.append(f"{path.name}:{node.lineno} {value}")
    assert bad == []


def _engine_states() -> set[str]:
    return set(typing.get_args(engine.State))


# The keys built at run time from a value: prefix → every value that can reach it.
DYNAMIC: dict[str, set[str]] = {
    "group.": {k.value for k in TaskKind},
    "kind.": {k.value for k in InteractionKind},
    "channel.": {c.value for c in InteractionChannel} | {c.value for c in OrderChannel},
    "complaint.": {s.value for s in ComplaintStatus},
    "complaint.step.": set(complaint_rules.STEPS),  # the card's step buttons and late marks
    "kb.topic.": set(kb.TOPICS),  # the knowledge base's topic chips
    "category.": {c.value for c in ComplaintCategory},
    "role.": {r.value for r in Role},
    "card.tier.": {v.value for v in ValueTier},
    "segment.": {g.value for g in Group},  # the card's segment pill
    "health.": {h.value for h in Health},  # … and its health pill
    "filter.": set(state.FILTERS),
    "sync.": _engine_states() - {"pending"},  # the badge says 'synced' (or 'pending {count}') then
    "sync.reason.": {"offline", "error"},  # the sync page explains these two
    "action.due_": set(state.DUE_CHOICES),
    "mut.": set(proto.MUTATION_ARGS),
    "notice.": set(screens.PUSH_KINDS),  # the push opt-out chips
    "desk.status.": {"running", "done", "failed"},  # an import's state on the managers' desk
    "feedback.status.": set(desktop.FEEDBACK_STATUSES),  # feedback on the roll-out screen
    "report.period.": set(desktop.PERIODS),  # the reports' period chips
    "report.name.": set(desktop.TABLE_REPORTS),  # the report picker
    "report.export_": {"csv", "xlsx"},
    "rollout.status.": {"planned", "live"},  # a wave's status
    "import.kind.": set(import_rules.KINDS),  # the import screen: what the file holds
    "import.source.": set(import_rules.SOURCES),  # where it comes from
    "import.problem.": set(import_rules.PROBLEMS),  # what its mapping still lacks
    # why the phone refused an edit: the fields a rep's own actions can trip (others fall back to
    # the validation's sentence)
    "profile.": set(state.PROFILE_FIELDS),  # the card's details form labels its fields so
    "refused.": {"amount", "until", "lost_reason", "stage", "task_id", "number", "phone", "tag", "name"},
}


@pytest.mark.parametrize("prefix", sorted(DYNAMIC))
def test_every_value_that_can_reach_a_dynamic_key_has_its_text(prefix):
    values = DYNAMIC[prefix]
    assert values
    missing = sorted(v for v in values if prefix + v not in ZH)
    assert missing == [], f"no text for {[prefix + v for v in missing]}"


def test_the_engine_states_all_have_a_badge_text():
    assert _engine_states() == {"synced", "syncing", "pending", "offline", "error", "signed_out"}
    assert all(f"sync.{s}" in ZH for s in _engine_states())


KEY_PREFIX = re.compile(r"[a-z_]+(\.[a-z_0-9]+)*[._]")


def test_every_dynamic_key_prefix_in_the_code_is_covered_here():
    """A new f"prefix.{value}" key in the app must be added to DYNAMIC above (so its values are
    checked), not discovered as a KeyError on a phone. Found: f-strings and 'prefix.' + value
    whose text starts like a catalogue key, wherever they are (also kept in a variable first)."""
    prefixes: set[str] = set()
    for path in sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in _calls(tree):
            key = _key_arg(call)
            if isinstance(key, ast.JoinedStr):
                assert isinstance(key.values[0], ast.Constant), f"{path.name}:{call.lineno}: a key starts with text"
        for node in ast.walk(tree):
            head = None
            if isinstance(node, ast.JoinedStr) and isinstance(node.values[0], ast.Constant):
                head = node.values[0].value
            elif isinstance(node, ast.BinOp) and isinstance(node.left, ast.Constant):
                head = node.left.value  # 'group.' + kind
            if isinstance(head, str) and KEY_PREFIX.fullmatch(head) and head.split(".")[0] in NAMESPACES:
                prefixes.add(head)
    assert {"group.", "kind.", "sync."} <= prefixes, "the scan no longer finds the dynamic keys"
    assert sorted(prefixes - set(DYNAMIC)) == []


# --- the font ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def glyphs() -> set[str]:
    from fontTools.ttLib import TTFont

    font = TTFont(FONT, lazy=True)
    try:
        return {chr(code) for code in font.getBestCmap()}
    finally:
        font.close()


def test_the_font_draws_every_character_of_the_chinese_catalogue(glyphs):
    missing = {ch: k for k, text in ZH.items() for ch in literal(text) if ch not in glyphs}
    assert missing == {}, f"characters without a glyph (key where seen): {missing}"


def test_the_font_draws_every_character_of_the_english_catalogue(glyphs):
    missing = {ch: k for k, text in EN.items() for ch in literal(text) if ch not in glyphs}
    assert missing == {}, f"characters without a glyph (key where seen): {missing}"


def test_the_font_draws_every_character_written_in_the_screens(glyphs):
    """Literals in the UI code itself ('、' joining names, '×' in order lines, '¥', '中文')."""
    missing: dict[str, str] = {}
    for path in sorted((MOBILE / "ui").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                for ch in node.value:
                    if ch not in glyphs and ch.isprintable() and not ch.isspace():
                        missing[ch] = f"{path.name}:{node.lineno}"
    assert missing == {}
