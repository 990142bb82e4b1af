"""Building servers from nothing over SSH: PostgreSQL primaries and standbys (pg.py, standby.py),
as jobs made of named steps that a re-run resumes (steps.py)."""
