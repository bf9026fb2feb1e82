"""The attempt feature: seed 004's consolidated endpoint (lifecycle, recordings)
and the rules every writer of an attempt follows."""
