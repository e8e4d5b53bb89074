"""The rules an admin edits (thresholds, templates, cooldown) and their per-store switches."""

from piccolo.columns import JSON, UUID, Boolean, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.stores.tables import Store


class Rule(Table, tablename="rules"):
    id = UUID(primary_key=True)
    code = Varchar(length=40, unique=True)  # what the sweep knows it by: 'stage_idle', 'no_follow_up', …
    enabled = Boolean(default=True)  # for every store without a switch of its own
    params = JSON(default="{}")  # thresholds, e.g. {"hours": 48}
    title_zh = Varchar(length=200)  # the generated task's title: str.format with the rule's values
    title_en = Varchar(length=200)
    cooldown_hours = Integer(default=0)  # at most one task per subject within this many hours
    updated_at = Timestamptz(default=TimestamptzNow())


class RuleStore(Table, tablename="rule_stores"):
    """A store's own switch (and threshold overrides) for a rule; no row: the rule's default."""

    id = UUID(primary_key=True)
    rule_id = ForeignKey(Rule, on_delete=OnDelete.cascade, null=False)
    store_id = ForeignKey(Store, on_delete=OnDelete.cascade, null=False)
    enabled = Boolean(default=True)
    params = JSON(default="{}")
    updated_at = Timestamptz(default=TimestamptzNow())
