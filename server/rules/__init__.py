"""Rules as data: what generates follow-up tasks and reminders, swept set-wise every minute."""
