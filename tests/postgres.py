"""A throwaway PostgreSQL server for the tests: a new cluster in a temporary directory, on a
free loopback port, stopped and deleted at the end.

initdb and postgres refuse to run as root, so as root the cluster belongs to the `postgres`
system user (Debian's `postgresql` package creates it; `make test` installs the package).
"""
from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
from sqlalchemy import make_url

from servers import free_port

INSTALL_HINT = ("PostgreSQL's server programs (initdb, pg_ctl) were not found. `make test` "
                "installs them (Debian: apt-get install -y postgresql); `make test-sqlite` runs "
                "the suite on SQLite alone.")


def server_bin_dir() -> Path:
    """The directory holding initdb and pg_ctl: PG_BIN, Debian's layout, or the PATH."""
    candidates = [os.environ.get("PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)  # newest first
    which = shutil.which("initdb")
    candidates.append(str(Path(which).resolve().parent) if which else "")
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise RuntimeError(INSTALL_HINT)


class PostgresServer:
    """A running throwaway cluster; `new_database()` gives each test a database of its own."""

    def __init__(self) -> None:
        self.bin = server_bin_dir()
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="switchboard-pg-"))
        self.data = self.directory / "data"
        self._names = itertools.count(1)
        self._scratch: list[str] = []  # databases of single tests, dropped when done
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")  # KeyError: install Debian's postgresql package
            os.chown(self.directory, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, cwd=self.directory,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def start(self) -> PostgresServer:
        """initdb and start the server; it listens on 127.0.0.1 only, and its socket stays in
        its own directory."""
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "--auth=trust",
                  "--username=postgres", "--encoding=UTF8", "--no-sync")
        # A test server: durability is not under test here, speed is. max_connections covers
        # two gunicorn instances of several threaded workers each.
        options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=400 -c shared_buffers=64MB")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.directory / "server.log"), "-o", options, "-w", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of one database on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, template: str | None = None, scratch: bool = False) -> str:
        """Create a database, empty or a copy of `template` (the URL of one nobody is connected
        to), and return its SQLAlchemy URL. A `scratch` one goes at drop_scratch_databases()."""
        name = f"switchboard_{next(self._names)}"
        copy_of = f' TEMPLATE "{make_url(template).database}"' if template else ""
        self._execute(f'CREATE DATABASE "{name}"{copy_of}')
        if scratch:
            self._scratch.append(name)
        return self.url(name)

    def drop_scratch_databases(self) -> None:
        """Drop the scratch databases made so far (each copy of template1 takes 7 MB: a whole
        run's took gigabytes, and seconds to delete at the end)."""
        while self._scratch:
            self._execute(f'DROP DATABASE "{self._scratch.pop()}" WITH (FORCE)')

    def _execute(self, statement: str) -> None:
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(statement)

    def stop(self) -> None:
        """Stop the server and delete its cluster."""
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
