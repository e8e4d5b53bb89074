"""Notifications: records per (user, cause), follows, the respect policy, push and dispatch."""
