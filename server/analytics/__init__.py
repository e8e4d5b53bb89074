"""Managers' reports: pipeline, stalled deals, funnel, win rate, forecast, rep activity, store
comparison, the chain's targets — each one set-based SQL, scoped like every read."""
