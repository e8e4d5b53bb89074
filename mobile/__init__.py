"""Floorwalker phone app (Flet). Imports only `shared/` from this repository, never `server/`."""
