"""CSV exports: requested over HTTP, written by a worker from a queue, handed out
as short-lived presigned URLs minted per request."""
