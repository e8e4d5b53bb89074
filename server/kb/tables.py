"""The knowledge base's articles (chain-wide, scope 'catalog': every phone holds them offline)."""

from piccolo.columns import Text, Varchar
from piccolo.table import Table

from server.sync.columns import SyncColumns


class KbArticle(SyncColumns, Table, tablename="kb_articles"):
    code = Varchar(length=40, unique=True)  # e.g. return-7-days
    topic = Varchar(length=20)  # shared/kb.py TOPICS
    title = Varchar(length=100)
    title_en = Varchar(length=150, default="")
    body = Text()
    tags = Varchar(length=300, default="")  # comma-separated search words
