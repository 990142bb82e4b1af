"""Backup engines behind one interface (base.py): pg_rman (pg_rman.py); pgBackRest follows.

Drivers are pure: they build argv lists and parse output. Only backups.actions runs them,
through console.executor.
"""
