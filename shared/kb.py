"""The knowledge base's search (REQUIREMENTS §9: return policy, product care, searchable in
Chinese), one function for the server and the phone's offline copy.

Chinese has no spaces between words, so a query is matched as it is written: each term (split on
spaces and punctuation) must be found in the article's title, tags or body — as a substring, or,
for a term of three characters or more, by most of its two-character pieces (退货政策 finds
"退换货政策"). Titles weigh most, then tags, then the body; ties go by title. Latin letters match
without regard to case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

TOPICS = ("policy", "care", "delivery", "warranty", "service")
_SPLIT = re.compile(r"[\s,，。、；;：:？?！!（）()\"'“”‘’/|]+")
TITLE, TAGS, BODY = 10.0, 5.0, 1.0
MIN_SHARE = 0.6  # of a term's two-character pieces found, for a match by pieces


@dataclass(frozen=True)
class Article:
    id: str
    code: str
    topic: str
    title: str
    title_en: str
    body: str
    tags: str  # comma-separated


def terms(query: str) -> list[str]:
    return [t for t in _SPLIT.split(query.lower()) if t]


def _pieces(term: str) -> set[str]:
    return {term[i : i + 2] for i in range(len(term) - 1)}


def _found(term: str, text: str) -> float:
    """1 for the term as written, the share of its pieces (at least MIN_SHARE) otherwise, or 0."""
    if term in text:
        return 1.0
    if len(term) < 3:
        return 0.0
    pieces = _pieces(term)
    share = sum(1 for p in pieces if p in text) / len(pieces)
    return share if share >= MIN_SHARE else 0.0


def score(article: Article, words: Sequence[str]) -> float:
    """0 unless every term is found somewhere in the article."""
    fields = ((article.title.lower() + " " + article.title_en.lower(), TITLE), (article.tags.lower(), TAGS))
    body = article.body.lower()
    total = 0.0
    for term in words:
        best = max([_found(term, text) * weight for text, weight in fields] + [_found(term, body) * BODY])
        if best == 0:
            return 0.0
        total += best + body.count(term) * 0.1  # a little for each mention in the body
    return total


def search(articles: Iterable[Article], query: str, *, topic: str | None = None, limit: int = 20) -> list[Article]:
    """The articles matching ``query`` (all of them, by topic and title, for an empty query), best
    first; ``topic`` narrows to one."""
    pool = [a for a in articles if topic is None or a.topic == topic]
    words = terms(query)
    if not words:
        return sorted(pool, key=lambda a: (TOPICS.index(a.topic) if a.topic in TOPICS else 99, a.title))[:limit]
    scored = [(score(a, words), a) for a in pool]
    ranked = sorted(((s, a) for s, a in scored if s > 0), key=lambda x: (-x[0], x[1].title))
    return [a for _, a in ranked[:limit]]
