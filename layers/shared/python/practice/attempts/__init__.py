"""The attempt feature: the consolidated attempt endpoint (lifecycle, recordings)
and the rules every writer of an attempt follows."""
