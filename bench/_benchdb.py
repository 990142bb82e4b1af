"""A throwaway database of its own for a benchmark, on the lab's metadata PostgreSQL."""

import os
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql


def _admin_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def use_bench_database(name: str) -> str:
    """(Re)create database `name` next to DATABASE_URL's and point DATABASE_URL at it before
    Django starts; return the original URL (for drop_bench_database)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit(f"bench {name}: DATABASE_URL must name the lab's PostgreSQL (run `make bench`)")
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    os.environ["DATABASE_URL"] = urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    return url


def drop_bench_database(original_url: str, name: str) -> None:
    with psycopg.connect(_admin_url(original_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
