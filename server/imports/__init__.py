"""Imports: files in (mapping, cleaning, batches), identity resolution, reversible merges."""
