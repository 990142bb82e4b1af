"""Shared fixtures. Servers come from the lab (`python manage.py lab up`, run by `make test`)."""
