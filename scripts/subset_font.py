"""Build the phone app's bundled Chinese font: a subset of Noto Sans CJK SC, renamed "Floorwalker Sans SC".

Flutter web draws boxes for Chinese unless a CJK font is bundled (it would otherwise fetch one from
the internet, which an offline phone cannot). The full Noto collection is ~19 MB, so this keeps only:
ASCII and Latin-1, general punctuation, CJK symbols and punctuation, full-width forms, the symbols a
UI uses (arrows, check marks, bullets, currency), all of GB2312 (levels 1 and 2 plus its symbol rows),
and every non-ASCII character written in a *.py file under server/, mobile/ or shared/ (demo names,
UI catalogues), scanned at run time. Re-run after adding text outside GB2312:

    .venv/bin/python scripts/subset_font.py [--source PATH]

Needs fontTools (not in the server's dependency set; `pip install fonttools`). Source: Debian's
fonts-noto-cjk (SIL Open Font License 1.1); the licence travels in mobile/assets/fonts/OFL.txt.
The output is deterministic (the source's timestamps are kept), so a re-run without new
characters gives the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from fontTools import subset
    from fontTools.ttLib import TTCollection, TTFont
except ImportError:  # pragma: no cover - a developer tool
    sys.exit("fontTools is missing: .venv/bin/pip install fonttools")

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
SOURCE_FAMILY = "Noto Sans CJK SC"
OUTPUT = ROOT / "mobile" / "assets" / "fonts" / "NotoSansSC-Floorwalker.otf"
SCANNED_DIRS = ("server", "mobile", "shared")
SKIPPED_DIRS = {"__pycache__", "build", "dist", "site-packages", "node_modules"}

FAMILY = "Floorwalker Sans SC"
STYLE = "Regular"
POSTSCRIPT = "FloorwalkerSansSC-Regular"

VERTICAL_FEATURES = {"vert", "vrt2", "vkrn", "vpal", "vhal", "vjmo", "valt", "vkna", "vrtr"}

# Ranges kept whole (only code points the font actually maps survive).
RANGES = (
    (0x0020, 0x007E),  # printable ASCII
    (0x00A0, 0x00FF),  # Latin-1 supplement
    (0x2000, 0x206F),  # general punctuation (— – ‘ ’ “ ” … ‰ ※ …)
    (0x20A0, 0x20BF),  # currency symbols (€ …)
    (0x2100, 0x214F),  # letterlike symbols (℃ № ™ …)
    (0x2150, 0x218F),  # number forms (Ⅰ Ⅱ …)
    (0x2190, 0x21FF),  # arrows
    (0x2460, 0x24FF),  # enclosed alphanumerics (① ② …)
    (0x25A0, 0x25FF),  # geometric shapes (■ □ ● ○ ▲ ▼ ◆ …)
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0xFF00, 0xFFEF),  # half-width and full-width forms
)
UI_SYMBOLS = "·•…→←↑↓↔⇒✓✔✕✖✗✘×÷¥￥°℃★☆♀♂※§¶©®™€£±≤≥≠≈∞√"
# Text the app must render whatever the scan finds (checked after writing, and kept explicitly).
REQUIRED = (
    "客户卡片今日任务同步待上传离线导购跟进商机签约输单¥"
    "王芳李娜张伟刘洋陈静杨磊赵敏黄强周杰吴婷徐丽孙涛胡军朱红郭亮何欣林峰高洁罗斌郑霞梁超谢颖宋佳唐浩许琳韩冰"
    "冯雪邓勇曹阳彭飞曾敏肖雨田甜董宇袁媛潘龙于丹蒋涛蔡琴余晨杜鹏叶青程峰苏晴魏东吕萍丁宁任杰沈洁姚远卢敏姜山"
    "崔莹钟鸣谭静陆晨汪洋范冰金鑫石磊廖凡贾琳夏雨韦宁傅强方舟白雪邹平孟浩熊伟秦岚邱枫江涛尹航薛梅闫华段然雷鸣"
    "侯亮龙腾史诗陶然黎明贺新顾盼毛毛郝帅龚敏邵阳万里钱程严肃覃思武汉戴安莫言孔明向阳汤圆"
)


def gb2312_chars() -> set[str]:
    """Every character of GB2312: symbol rows 0xA1-0xA9 and hanzi rows 0xB0-0xF7 (both levels)."""
    chars = set()
    for row in (*range(0xA1, 0xAA), *range(0xB0, 0xF8)):
        for col in range(0xA1, 0xFF):
            try:
                chars.add(bytes((row, col)).decode("gb2312"))
            except UnicodeDecodeError:
                pass  # unassigned cells (e.g. D7FA-D7FE)
    return chars


def source_chars() -> set[str]:
    """Every non-ASCII character in the project's Python sources."""
    chars = set()
    for folder in SCANNED_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if any(part.startswith(".") or part in SKIPPED_DIRS for part in parts):
                continue
            chars |= {ch for ch in path.read_text(encoding="utf-8") if ord(ch) > 0x7F}
    return chars


def wanted_chars() -> tuple[set[str], set[str]]:
    fixed = {chr(cp) for low, high in RANGES for cp in range(low, high + 1)}
    fixed |= set(UI_SYMBOLS) | set(REQUIRED) | gb2312_chars()
    return fixed, source_chars()


def open_source_face(path: Path) -> TTFont:
    """The face whose family name is SOURCE_FAMILY, found by its name table (not by a guessed index)."""
    with path.open("rb") as file:
        is_collection = file.read(4) == b"ttcf"
    indexes = range(len(TTCollection(path, lazy=True).fonts)) if is_collection else [-1]
    for index in indexes:
        with TTFont(path, fontNumber=index, lazy=True) as probe:
            family = probe["name"].getDebugName(1)
        if family == SOURCE_FAMILY:
            font = TTFont(path, fontNumber=index, recalcTimestamp=False)
            print(f"source: {path} face #{index} ({font['name'].getDebugName(6)})")
            return font
    raise SystemExit(f"{path}: no face named {SOURCE_FAMILY!r}")


def keep_simplified_chinese_layout(font: TTFont) -> None:
    """Drop the JAN/KOR/ZHT/ZHH language systems, keeping the default one and ZHS (Simplified Chinese).

    Their 'locl' lookups swap in Japanese, Korean and Traditional glyph variants; keeping them would
    nearly double the glyph count (~14,000 instead of ~8,000; 2.9 MB instead of 1.6 MB) for forms a
    Simplified-Chinese app should not show anyway. Under a zh-CN locale (ZHS), or a locale without a
    language system of its own (en, ...), text shapes as with the full font; under ja, ko, zh-TW or zh-HK
    it keeps the Simplified forms instead of switching to that region's.
    """
    for tag in ("GSUB", "GPOS"):
        if tag not in font:
            continue
        for script in font[tag].table.ScriptList.ScriptRecord:
            records = [record for record in script.Script.LangSysRecord if record.LangSysTag == "ZHS "]
            script.Script.LangSysRecord = records
            script.Script.LangSysCount = len(records)


def rename(font: TTFont) -> None:
    """A modified OFL font gets its own name; "Noto" is Google's trademark."""
    name = font["name"]
    version = name.getDebugName(5) or ""
    source_version = version.split(";")[0].removeprefix("Version ").strip()
    records = {
        1: FAMILY,
        2: STYLE,
        3: f"{source_version};FLWK;{POSTSCRIPT}",
        4: FAMILY,
        5: f"Version {source_version}; Floorwalker subset of {SOURCE_FAMILY}",
        6: POSTSCRIPT,
        10: f"Subset of {SOURCE_FAMILY} {source_version} made for the Floorwalker app (scripts/subset_font.py).",
        16: FAMILY,
        17: STYLE,
    }
    name.names = [record for record in name.names if record.nameID not in records]
    for name_id, text in records.items():
        name.setName(text, name_id, 3, 1, 0x409)  # Windows, Unicode BMP, en-US
    if "CFF " in font:
        cff = font["CFF "].cff
        # The TTC shares one CFF table among its faces, so it still carries the JP face's name.
        old = cff.fontNames[0]
        cff.fontNames = [POSTSCRIPT]
        top = cff[POSTSCRIPT]
        for key, value in (("FullName", FAMILY), ("FamilyName", FAMILY), ("Weight", STYLE)):
            if hasattr(top, key):
                setattr(top, key, value)
        for fd in getattr(top, "FDArray", None) or ():
            if getattr(fd, "FontName", "").startswith(old):
                fd.FontName = POSTSCRIPT + fd.FontName[len(old) :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--source", type=Path, default=SOURCE, help="NotoSansCJK-Regular.ttc (or a Noto Sans CJK SC otf)"
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    fixed, scanned = wanted_chars()
    font = open_source_face(args.source)
    cmap = font.getBestCmap()

    missing_scanned = sorted(ch for ch in scanned if ord(ch) not in cmap)
    missing_symbols = [ch for ch in UI_SYMBOLS if ord(ch) not in cmap]
    missing_required = sorted(ch for ch in REQUIRED if ord(ch) not in cmap)
    if missing_required:
        raise SystemExit(f"the source font lacks required characters: {''.join(missing_required)}")
    unicodes = sorted(ord(ch) for ch in fixed | scanned if ord(ch) in cmap)
    extra = sorted(ch for ch in scanned - fixed if ord(ch) in cmap)

    options = subset.Options()
    options.hinting = False  # CFF hints matter little at phone pixel densities; saves size
    options.desubroutinize = False  # keep (subsetted) CFF subroutines: smaller file
    options.notdef_outline = True
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 7, 10, 13, 14, 16, 17]
    options.name_languages = [0x0409]
    options.name_legacy = False
    options.recalc_timestamp = False
    # Flutter has no vertical text layout: the vertical features and metrics are dead weight.
    options.layout_features = [tag for tag in options.layout_features if tag not in VERTICAL_FEATURES]
    options.drop_tables += ["DSIG", "vhea", "vmtx", "VORG"]
    keep_simplified_chinese_layout(font)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=unicodes)
    subsetter.subset(font)
    rename(font)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    subset.save_font(font, str(args.output), options)
    font.close()

    check = TTFont(args.output)
    out_cmap = check.getBestCmap()
    absent = [ch for ch in REQUIRED if ord(ch) not in out_cmap]
    assert not absent, f"missing from the output: {''.join(absent)}"
    absent = [cp for cp in unicodes if cp not in out_cmap]
    assert not absent, f"{len(absent)} requested code points missing from the output"
    assert check["name"].getDebugName(1) == FAMILY
    size = args.output.stat().st_size
    print(f"wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    print(f"  family {check['name'].getDebugName(1)!r}, {len(out_cmap)} characters, {check['maxp'].numGlyphs} glyphs")
    print(f"  {size:,} bytes ({size / 1024 / 1024:.2f} MiB)")
    print(f"  from the sources, outside the fixed set: {''.join(extra) or '-'}")
    if missing_symbols:
        # Noto Sans CJK has ✓ but not ✔ ✕ ✖ ✗ ✘: use ×, ✓ or a Material icon (bundled by Flutter) instead.
        print(f"  UI symbols the source font lacks (offline they draw as boxes): {' '.join(missing_symbols)}")
    if missing_scanned:
        shown = " ".join(f"U+{ord(ch):04X}" for ch in missing_scanned)
        print(f"  in the sources but not in the font (left to the platform's fallback): {shown}")
    check.close()


if __name__ == "__main__":
    main()
