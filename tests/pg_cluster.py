"""A real PostgreSQL server for the tests: a throwaway cluster in a temp dir, on a free loopback
port, with its unix socket in that dir too; one per test process, started when first asked for and
stopped (immediate shutdown, dir removed) when the process exits. Each test gets a database of its
own (``database_url``).

The binaries are Debian's (``apt-get install postgresql``, which ``make system-deps`` does as
root), else ``pg_config --bindir``, else the PATH. ``initdb`` refuses to run as root: as root the
cluster is made and run by the ``postgres`` user (``runuser``), which owns the temp dir. Where no
binaries are found, ``database_url`` skips the test and says why; with FORMALIST_REQUIRE_PG=1 (CI)
it fails instead.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

START_TIMEOUT = 60


def find_bindir() -> Path | None:
    """Where initdb, pg_ctl and postgres are, or None."""
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True):
        if Path(d, "initdb").exists():
            return Path(d)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
        d = Path(out.stdout.strip())
        if (d / "initdb").exists():
            return d
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(d: str) -> int:
    try:
        return int(Path(d).parent.name)
    except ValueError:
        return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One running test cluster; ``url`` reaches its ``postgres`` database as superuser
    ``formalist`` (trust authentication: only the loopback address and the temp dir's socket)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_user: list[str] = []
        self.dir = Path(tempfile.mkdtemp(prefix="formalist-pg-"))
        if os.geteuid() == 0:  # initdb will not run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.dir.chmod(0o700)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data = self.dir / "data"
        self.port = _free_port()
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "formalist",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.data),
            "-w",
            "-t",
            str(START_TIMEOUT),
            "-l",
            str(self.dir / "server.log"),
            "-o",
            opts,
        )
        self.url = f"postgresql://formalist@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [*self.as_user, str(self.bindir / tool), *args]
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=START_TIMEOUT + 30, cwd=self.dir
        )
        if out.returncode != 0:
            log = self.dir / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout}{out.stderr}{tail}")

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name: hex digits only
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


_cluster: Cluster | None = None


def cluster() -> Cluster:
    """The process's test cluster, started on first use; skips (or, with FORMALIST_REQUIRE_PG=1,
    fails) when PostgreSQL's binaries or psycopg are missing."""
    global _cluster
    if _cluster is None:
        bindir = find_bindir()
        why = ""
        if bindir is None:
            why = (
                "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: "
                "apt-get install postgresql (make system-deps does it as root)"
            )
        elif os.geteuid() == 0 and not _has_user("postgres"):
            why = "running as root and there is no postgres user to run initdb as"
        else:
            try:
                import psycopg  # noqa: F401
            except ImportError:
                why = "psycopg is not installed (pip install -e '.[serve]')"
        if why:
            if os.environ.get("FORMALIST_REQUIRE_PG") == "1":
                pytest.fail(f"FORMALIST_REQUIRE_PG=1 but {why}")
            pytest.skip(why)
        assert bindir is not None
        _cluster = Cluster(bindir)
        atexit.register(_cluster.stop)
    return _cluster


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def database_url() -> str:
    """A fresh database on the test cluster (see ``cluster``)."""
    return cluster().new_database()
