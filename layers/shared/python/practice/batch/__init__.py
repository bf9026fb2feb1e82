"""The batch feature: the batch operations over many attempts, each
item judged by the attempt feature's own rules and statements."""
