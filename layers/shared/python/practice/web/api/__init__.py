"""The HTTP routes of each feature, one module a feature: a ``Router`` of
declarations (``practice.web.routes``) that an HTTP function includes with the
services its endpoints name. A route of feature X lives in ``api/X.py``."""
