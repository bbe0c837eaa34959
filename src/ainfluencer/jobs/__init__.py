"""Durable jobs: the ``jobs`` table is the truth; executors (embedded or Celery) only run what it says."""
