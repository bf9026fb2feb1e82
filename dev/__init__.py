"""The Docker-free local stack and the developer CLI (`python -m dev …`)."""
