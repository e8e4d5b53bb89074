"""Benchmark: precision and recall of automatic identity merging on a labelled synthetic set.

    python -m bench.identity [--records 20000] [--seed 1]

The set is ``bench.identity_data.generate`` (true people seen through five channels, with noise and
hard negatives), made twice from the same seed: with every kind of noise, and without the two kinds
the issue does not list (WeChat records without a name, 王女士 for a name), which only a person
can resolve when the phone is one a family may share.

The records are resolved the way the import does (``server.imports.service``): in arrival order,
each is looked up by ``blocking_keys`` in an in-memory index of the customers made so far (standing
in for the database's), scored against them by ``resolve``, and merged into its target (and any
other customer at merge level merged into that) or made a new customer. A merged customer is what
``server.imports.merging`` leaves: the survivor's name, all phones and channel identities, its
empty fields filled from the other.

Figures are pairwise over records: a pair in one customer is a true positive when both records are
one true person; precision = true positives / pairs in customers, recall = true positives / pairs of
records of one true person. The same follow if a person accepted every review-band pair.

Goals (the issue): precision ≥ 0.98 and recall ≥ 0.9 for automatic merging.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import sys
import time
from collections.abc import Iterable

import msgspec
from rich.console import Console
from rich.table import Table

from bench.identity_data import PROFILES, Labelled, generate
from server.imports.matching import MERGE_AT, REVIEW_AT, Person, blocking_keys, resolve

PRECISION_GOAL = 0.98
RECALL_GOAL = 0.9
# The customer columns server.imports.merging fills on the survivor when empty (e-mail is one of
# them: a customer has one); phones and channel identities are child rows and all move over.
FILLED = ("gender", "birthday", "province", "city", "district", "address")

console = Console(width=None if sys.stdout.isatty() else 130)


@dataclasses.dataclass
class Figures:
    clustered_pairs: int
    correct_pairs: int
    true_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.clustered_pairs if self.clustered_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0


@dataclasses.dataclass
class Outcome:
    records: int
    people: int
    merges: int  # customers merged: a record into one, or another customer into the record's target
    review_pairs: int  # pairs of customers a person is asked about
    scored: int  # record-customer pairs scored
    seconds: float  # in resolve
    auto: Figures
    with_review: Figures
    wrong_merges: collections.Counter[str]  # the reasons of merges joining someone else's records


class Clusters:
    """Union-find over record positions; a cluster's root is its first record."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i: int, root: int) -> None:
        self.parent[self.find(i)] = root

    def figures(self, people: list[str]) -> Figures:
        roots = [self.find(i) for i in range(len(people))]
        return Figures(
            clustered_pairs=_pairs(collections.Counter(roots).values()),
            correct_pairs=_pairs(collections.Counter(zip(roots, people, strict=True)).values()),
            true_pairs=_pairs(collections.Counter(people).values()),
        )


def _pairs(counts: Iterable[int]) -> int:
    return sum(n * (n - 1) // 2 for n in counts)


def absorb(customer: Person, other: Person) -> Person:
    """``customer`` after ``other`` was merged into it, as the database does it."""
    return msgspec.structs.replace(
        customer,
        phones=tuple(dict.fromkeys(customer.phones + other.phones)),
        emails=customer.emails or other.emails,
        identities=tuple(dict.fromkeys(customer.identities + other.identities)),
        **{f: getattr(other, f) for f in FILLED if not getattr(customer, f) and getattr(other, f)},
    )


def run(labelled: list[Labelled]) -> Outcome:
    """Resolve ``labelled`` in order against an in-memory index of the customers made so far."""
    people = [item.person_id for item in labelled]
    position = {item.record.id: i for i, item in enumerate(labelled)}
    clusters = Clusters(len(labelled))
    customers: dict[int, Person] = {}  # root → the customer (its id is the root record's)
    index: dict[str, list[int]] = {}  # blocking key → roots (some merged away since: find() them)
    review: list[tuple[int, int]] = []
    wrong: collections.Counter[str] = collections.Counter()
    merges = scored = 0
    seconds = 0.0
    for i, item in enumerate(labelled):
        roots = dict.fromkeys(clusters.find(j) for key in blocking_keys(item.record) for j in index.get(key, ()))
        candidates = [customers[root] for root in roots]
        started = time.perf_counter()
        target, match, others = resolve(item.record, candidates)
        seconds += time.perf_counter() - started
        scored += len(candidates)
        joined = {position[c.id]: m for c, m in others if m.decision == "merge"}
        if target is not None and match is not None:
            joined[position[target.id]] = match
        customer, root = item.record, i
        if joined:
            root = min(joined)  # the oldest customer survives
            customer = customers.pop(root)
            for other in sorted(joined)[1:]:
                customer = absorb(customer, customers.pop(other))
                clusters.join(other, root)
            customer = absorb(customer, item.record)
            clusters.join(i, root)
            merges += len(joined)
            for other, m in joined.items():
                if people[other] != people[i]:  # the customer's first record is someone else's
                    wrong[", ".join(r.partition(":")[0] for r in m.reasons)] += 1
        customers[root] = customer
        for key in blocking_keys(customer):
            index.setdefault(key, []).append(root)
        review += [(i, position[c.id]) for c, m in others if m.decision == "review"]
    auto = clusters.figures(people)
    asked = {tuple(sorted((clusters.find(i), clusters.find(j)))) for i, j in review}
    for i, j in review:
        if clusters.find(i) != clusters.find(j):
            clusters.join(i, clusters.find(j))
    return Outcome(
        records=len(labelled),
        people=len(set(people)),
        merges=merges,
        review_pairs=sum(1 for a, b in asked if a != b),
        scored=scored,
        seconds=seconds,
        auto=auto,
        with_review=clusters.figures(people),
        wrong_merges=wrong,
    )


def _verdict(ok: bool) -> str:
    return "[green]✔[/green]" if ok else "[red]✘[/red]"


def print_outcomes(outcomes: dict[str, Outcome], seed: int, generated_in: float) -> bool:
    names = list(outcomes)
    first = outcomes[names[0]]
    counts = Table(title=f"identity resolution: {first.records:,} synthetic records (seed {seed})")
    counts.add_column("measure")
    for name in names:
        counts.add_column(name, justify="right")
    rows = (
        ("records", lambda o: f"{o.records:,}"),
        ("true people", lambda o: f"{o.people:,}"),
        ("true same-person record pairs", lambda o: f"{o.auto.true_pairs:,}"),
        (f"automatic merges (score ≥ MERGE_AT = {MERGE_AT})", lambda o: f"{o.merges:,}"),
        (f"review-band customer pairs ({REVIEW_AT} ≤ score < {MERGE_AT})", lambda o: f"{o.review_pairs:,}"),
        ("record-customer pairs scored", lambda o: f"{o.scored:,}"),
        ("pairs scored per second", lambda o: f"{o.scored / o.seconds:,.0f}" if o.seconds else ""),
    )
    for label, value in rows:
        counts.add_row(label, *(value(outcomes[n]) for n in names))
    console.print(counts)

    figures = Table(title="pairwise precision and recall")
    for header in ("noise", "merging", "pairs merged", "correct", "precision", "recall"):
        figures.add_column(header, justify="left" if header in ("noise", "merging") else "right")
    for name in names:
        for label, f in (("automatic", outcomes[name].auto), ("+ all review accepted", outcomes[name].with_review)):
            figures.add_row(name, label, f"{f.clustered_pairs:,}", f"{f.correct_pairs:,}", f"{f.precision:.4f}",
                            f"{f.recall:.4f}")  # fmt: skip
        figures.add_section()
    console.print(figures)

    goals = Table(title="goals (automatic merging)")
    for header in ("noise", "measure", "result", "goal", "verdict"):
        goals.add_column(header, justify="left" if header in ("noise", "measure") else "right")
    ok = True
    for name in names:
        auto = outcomes[name].auto
        for measure, value, goal in (
            ("precision", auto.precision, PRECISION_GOAL),
            ("recall", auto.recall, RECALL_GOAL),
        ):
            ok &= value >= goal
            goals.add_row(name, measure, f"{value:.4f}", f"≥ {goal}", _verdict(value >= goal))
    console.print(goals)
    for name in names:
        if outcomes[name].wrong_merges:
            console.print(f"  wrong merges, {name}, by their reasons (most frequent first):")
            for reasons, n in outcomes[name].wrong_merges.most_common(5):
                console.print(f"    {n:>4}  {reasons}")
    console.print(f"  generating the sets: {generated_in:.1f} s")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="records in each synthetic set")
    parser.add_argument("--seed", type=int, default=1, help="the synthetic sets' seed")
    args = parser.parse_args()
    if args.records < 2:
        parser.error("--records: at least 2")
    started = time.perf_counter()
    outcomes: dict[str, Outcome] = {}
    generated_in = 0.0
    for name, noise in PROFILES.items():
        begun = time.perf_counter()
        labelled = generate(args.records, args.seed, noise)
        generated_in += time.perf_counter() - begun
        outcomes[name] = run(labelled)
    ok = print_outcomes(outcomes, args.seed, generated_in)
    console.print(f"total: {time.perf_counter() - started:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
