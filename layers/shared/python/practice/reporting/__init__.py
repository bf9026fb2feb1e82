"""Reporting: the incremental refresh of the warehouse summaries, the dashboards
over them, and the weekly manager digest."""
