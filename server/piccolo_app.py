"""The Piccolo app that owns every table and the one migration set (SQLite and PostgreSQL)."""

import os

from piccolo.conf.apps import AppConfig

from server.analytics.tables import CustomerStanding
from server.auth.tables import LoginAttempt, RefreshToken, User
from server.catalog.tables import Category, Product
from server.complaints.tables import Complaint
from server.customers.tables import Customer, CustomerIdentity, CustomerPhone, CustomerTag
from server.imports.tables import (
    CustomerAlias,
    CustomerMerge,
    ImportFile,
    ImportJob,
    ImportMapping,
    ImportRejection,
    MergeCandidate,
)
from server.interactions.tables import Interaction
from server.kb.tables import KbArticle
from server.notifications.tables import (
    CustomerFollow,
    FeedCursor,
    Notification,
    NotificationPrefs,
    PushSend,
    PushSubscription,
)
from server.opportunities.tables import Opportunity, PipelineStage, StageHistory
from server.orders.tables import Order, OrderLine
from server.rollout.tables import ActivityDay, Feedback, StoreFeature, Wave, WaveStore
from server.rules.tables import Rule, RuleStore
from server.stores.tables import Region, Store
from server.sync.tables import ScopeVersion, SyncClient, SyncConflict, SyncMutation
from server.tasks.tables import Task

TABLES = [
    ScopeVersion,
    Region,
    Store,
    User,
    RefreshToken,
    LoginAttempt,
    Category,
    Product,
    Customer,
    CustomerPhone,
    CustomerTag,
    CustomerIdentity,
    Order,
    OrderLine,
    Interaction,
    PipelineStage,
    Opportunity,
    StageHistory,
    Task,
    Complaint,
    Rule,
    RuleStore,
    SyncClient,
    SyncMutation,
    SyncConflict,
    Notification,
    NotificationPrefs,
    CustomerFollow,
    PushSubscription,
    PushSend,
    FeedCursor,
    ImportMapping,
    ImportJob,
    ImportFile,
    ImportRejection,
    CustomerMerge,
    MergeCandidate,
    CustomerAlias,
    Wave,
    WaveStore,
    StoreFeature,
    Feedback,
    ActivityDay,
    CustomerStanding,
    KbArticle,
]

APP_CONFIG = AppConfig(
    app_name="floorwalker",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "migrations"),
    table_classes=TABLES,
    migration_dependencies=[],
    commands=[],
)
