"""The database check: report queries that got slow, and the evidence of why (PostgreSQL)."""
