"""The lab: the real servers the tests use (PostgreSQL, MariaDB, Redis, slapd, sshd).

One piece of start-up code for `make test` and for developers: `python manage.py lab up`.
See cli.py for the commands and lab.py for the state kept in LAB_DIR/lab.json.
"""
