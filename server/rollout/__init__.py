"""Roll-out: waves of stores, per-store feature switches, in-app feedback and adoption figures."""
