"""Chat sessions and their scenario progress, written from several devices
without losing one (a version per session's progress)."""
