"""The screens: Flet components that take the observable ``AppState`` and return controls."""
