"""The plumbing every function uses, whatever calls it: settings, the database
and its breaker and budget, caches, who is calling, the entry-point wrapper,
dedupe records, errors and the base model. Nothing here knows HTTP or events."""
