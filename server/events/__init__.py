"""Behaviour events from the store systems, the online shop, WeChat and the call centre."""
