"""The opportunities domain."""
