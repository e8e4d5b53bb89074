"""Floorwalker server: the API, the domain services, the scheduler and the command line."""
