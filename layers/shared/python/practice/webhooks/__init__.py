"""Webhooks: Clerk (through Svix) and Vapi deliveries, verified over the raw
body, stored before anything is processed, processed once, retried on a
schedule when processing failed."""
