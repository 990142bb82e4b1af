"""Backup engines behind one interface (base.py): pg_rman (the package pg_rman/: commands,
parsers, errors), pgBackRest (pgbackrest.py).

Drivers are pure: they build argv lists and parse output. Only backups.actions runs them,
through console.executor.
"""
