"""Attempt tracking and comparison: a member's history, best attempts,
improvement and comparisons (``GET /users/{userId}/...``)."""
