"""A private, throwaway PostgreSQL cluster on a free loopback port.

For fault tests that restart PostgreSQL: restarting a private cluster cannot disturb anything
else that uses the machine's server (other tests running in parallel, a developer's databases).
Needs PostgreSQL's server binaries (initdb, pg_ctl); as root, they run as the postgres user.
"""

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scripts.live_server import free_port


def server_bin_dir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def as_server_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@dataclass
class PrivateCluster:
    bin_dir: Path
    data_dir: Path
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def restart(self) -> None:
        self.pg_ctl("-w", "-m", "fast", "-l", str(self.log_path), "restart")


@contextlib.contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    bin_dir = server_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL server binaries (initdb) are not installed")
    root = Path(tempfile.mkdtemp(prefix="sm-pg-"))
    data_dir, socket_dir = root / "data", root / "socket"
    socket_dir.mkdir()
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        for path in (root, socket_dir):
            os.chown(path, postgres.pw_uid, postgres.pw_gid)
    port = free_port()
    cluster = PrivateCluster(bin_dir, data_dir, port, root / "postgres.log")
    subprocess.run(
        as_server_user(
            [str(bin_dir / "initdb"), "-D", str(data_dir), "-A", "trust", "-U", "postgres"]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
    cluster.pg_ctl("-w", "-o", options, "-l", str(cluster.log_path), "start")
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            cluster.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
