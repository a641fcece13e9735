"""A real single-node SLURM cluster for the test suite, installed with apt and run without systemd.

The cluster is private to one test session. Every file it uses (slurm.conf, slurmdbd.conf, the
MUNGE key and socket, the MariaDB data directory, controller state, slurmd spool, daemon logs)
lives under one temporary directory; every daemon listens on a free port of 127.0.0.1 picked at
start-up; clients find the cluster through ``SLURM_CONF``. It therefore neither reads nor changes
/etc/slurm, /etc/munge or /var/lib/mysql, and it runs beside a system SLURM or MUNGE if there is
one. The daemons (munged, mariadbd, slurmdbd, slurmctld, slurmd) run in the foreground as
children of this process, each in its own session, and :meth:`LocalSlurmCluster.stop` ends
exactly those, by PID.

Pitfalls this harness handles (measured on Debian 12: SLURM 22.05.8, MUNGE 0.5.15,
MariaDB 10.11, 2 CPUs / 24 GB, root, no systemd):

- Without slurmdbd the ``sacct`` binary still exists but cannot answer, and the Snakemake SLURM
  executor (which uses sacct whenever the binary is on PATH) then polls forever. So MariaDB and
  slurmdbd run too, and :meth:`start` waits until ``sacct`` answers.
- With ``SelectTypeParameters=CR_Core_Memory`` a job without ``--mem`` is given the whole node's
  memory and blocks every other job: slurm.conf sets ``DefMemPerCPU``.
- A request the node can never satisfy (``-c 4`` on 2 CPUs, more memory than RealMemory) would
  sit in PENDING for ever; ``EnforcePartLimits=ALL`` rejects it at sbatch time instead.
- RealMemory must not exceed what slurmd measures, or the node drains ("Low RealMemory"): it is
  set from ``slurmd -C`` minus a reserve for the daemons.
- munged refuses a socket whose directory or any parent lacks execute permission for all
  ("Socket is inaccessible"). pytest's temporary directories are 0700, so the cluster directory
  is made with :func:`tempfile.mkdtemp` and opened to 0755 (the key stays in a 0700 folder).
- ``AuthInfo=socket=...`` points slurmctld, slurmd and clients at our munged, but connections to
  slurmdbd take the MUNGE socket from ``AccountingStoragePass``. Without it they try
  /run/munge/munge.socket.2 and slurmctld dies with "we have no TRES from it".
- slurmd ignores SIGTERM while it is retrying to register with a controller that is gone:
  :meth:`stop` sends SIGKILL after a grace period.
- Package post-install scripts try to start munge and mariadb through init.d (or systemd);
  :func:`install_packages` blocks that with /usr/sbin/policy-rc.d (exit 101) while apt runs.
- Inside a job, snakemake-executor-plugin-slurm-jobstep runs the rule under ``srun`` with every
  ``SLURM_*`` variable removed, SLURM_CONF included, so srun looks for /etc/slurm/slurm.conf and
  then for DNS SRV records ("Could not establish a configuration source"). Real clusters have
  one of those; this one has neither, so :attr:`LocalSlurmCluster.env` puts ``bin/`` first on
  PATH, with one wrapper per SLURM client (srun, sbatch, sacct, ...) that sets SLURM_CONF.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

#: Debian packages that provide the cluster (slurm-wlm pulls slurmctld, slurmd, slurm-client).
APT_PACKAGES = ("slurm-wlm", "slurm-client", "slurmdbd", "munge", "mariadb-server")
#: Programs the harness runs; any one missing triggers the apt install.
PROGRAMS = (
    "munged", "mungekey", "munge", "unmunge",
    "mariadbd", "mariadb-install-db", "mariadb", "mariadb-admin",
    "slurmdbd", "slurmctld", "slurmd", "srun", "sbatch", "squeue", "scancel", "scontrol",
    "sinfo", "sacct", "sacctmgr",
)
# Daemons live in /usr/sbin, which a CI environment's PATH may lack.
SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
     "/sbin", "/bin"]
)
#: SLURM clients wrapped in ``bin/`` so that they find this cluster without SLURM_CONF.
CLIENTS = ("srun", "sbatch", "salloc", "squeue", "scancel", "scontrol", "sinfo", "sacct",
           "sacctmgr", "sstat", "sprio", "sshare")
#: Job states after which sacct's row for a job no longer changes.
FINAL_STATES = frozenset({
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL",
    "DEADLINE", "PREEMPTED",
})


class ClusterError(RuntimeError):
    """The local cluster could not be installed, started or queried."""


def unavailable_reason() -> str | None:
    """Why this machine cannot run the local cluster, or None if it can.

    Returns
    -------
    reason : str or None
        A sentence suitable as a pytest skip reason.
    """
    if not sys.platform.startswith("linux"):
        return f"the local SLURM cluster needs Linux, this is {sys.platform}"
    if os.geteuid() != 0:
        return ("the local SLURM cluster needs root (it installs packages with apt-get and runs "
                "slurmctld/slurmd); run the tests as root, as CI does")
    if not Path("/etc/debian_version").is_file() or shutil.which("apt-get") is None:
        return "the local SLURM cluster is installed with apt-get: this is not Debian/Ubuntu"
    return None


def which(program: str) -> str | None:
    """Absolute path of ``program`` on PATH or in the sbin folders, None if absent."""
    return shutil.which(program, path=SEARCH_PATH)


def missing_programs() -> list[str]:
    """The programs of :data:`PROGRAMS` that are not installed."""
    return [p for p in PROGRAMS if which(p) is None]


def install_packages(*, timeout_s: float = 1200) -> None:
    """Install :data:`APT_PACKAGES` with apt-get if any program is missing (root, Debian).

    Post-install scripts are kept from starting services (the harness starts its own) by a
    temporary /usr/sbin/policy-rc.d that exits 101; an existing one is left as it is.

    Raises
    ------
    ClusterError
        If apt-get fails, or programs are still missing afterwards.
    """
    missing = missing_programs()
    if not missing:
        return
    logger.info("installing %s (missing: %s)", " ".join(APT_PACKAGES), " ".join(missing))
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:
        policy.write_text("#!/bin/sh\n# written by brainalign's SLURM test harness\nexit 101\n")
        policy.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "PATH": SEARCH_PATH}
    lock = ["-o", "DPkg::Lock::Timeout=600"]
    try:
        for cmd in (["apt-get", *lock, "update", "-q"],
                    ["apt-get", *lock, "install", "-y", "-q", "--no-install-recommends",
                     *APT_PACKAGES]):
            res = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                 timeout=timeout_s, check=False)
            if res.returncode != 0:
                raise ClusterError(
                    f"`{' '.join(cmd)}` failed with exit code {res.returncode}: "
                    f"{(res.stdout + res.stderr)[-2000:]}")
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)
    still = missing_programs()
    if still:
        raise ClusterError(f"After installing {' '.join(APT_PACKAGES)}, these programs are still "
                           f"missing: {' '.join(still)}. Check the apt sources.")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_hardware() -> dict[str, int]:
    """CPU layout and memory of this machine as slurmd sees it (``slurmd -C``).

    Returns
    -------
    hw : dict
        ``CPUs``, ``SocketsPerBoard``, ``CoresPerSocket``, ``ThreadsPerCore``, ``RealMemory``
        (MiB), as integers.
    """
    out = subprocess.run([which("slurmd") or "slurmd", "-C"], capture_output=True, text=True,
                         timeout=30, check=True,
                         env={**os.environ, "SLURM_CONF": "/nonexistent/slurm.conf"}).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", out.splitlines()[0]))
    keys = ("CPUs", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")
    try:
        return {k: int(fields[k]) for k in keys}
    except (KeyError, ValueError) as err:
        raise ClusterError(f"Cannot read the node's hardware from `slurmd -C`: {out!r}") from err


class LocalSlurmCluster:
    """A one-node SLURM cluster with accounting, in a private directory on 127.0.0.1.

    Parameters
    ----------
    partition : str
        Name of the (only, default) partition; use the one the Snakemake profile submits to.
    cluster_name : str
        ``ClusterName`` registered with slurmdbd.
    root : path, optional
        Where to keep every file; default: a new directory under the system temp dir, removed
        by :meth:`stop`. Must be short (UNIX socket paths are limited to 107 bytes).
    """

    NODE = "localhost"
    #: Start-up order; :meth:`stop` goes the other way.
    DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")

    def __init__(self, *, partition: str, cluster_name: str = "brainalign",
                 root: Path | None = None):
        self.partition = partition
        self.cluster_name = cluster_name
        self._own_root = root is None
        self.root = Path(root) if root is not None else Path(
            tempfile.mkdtemp(prefix="brainalign-slurm-"))
        self._procs: dict[str, subprocess.Popen] = {}
        self._db_password = secrets.token_hex(12)
        self.ports: dict[str, int] = {}
        self.hardware: dict[str, int] = {}
        self.real_memory_mb = 0

    # ------------------------------------------------------------------ paths & environment
    @property
    def conf(self) -> Path:
        """The cluster's slurm.conf (slurmdbd.conf sits beside it)."""
        return self.root / "etc" / "slurm.conf"

    @property
    def munge_socket(self) -> Path:
        return self.root / "munge" / "munge.socket"

    @property
    def mysql_socket(self) -> Path:
        return self.root / "mysql" / "mysqld.sock"

    @property
    def env(self) -> dict[str, str]:
        """Variables that point SLURM clients (sbatch, sacct, ...) at this cluster."""
        return {"SLURM_CONF": str(self.conf),
                "PATH": os.pathsep.join([str(self.root / "bin"), SEARCH_PATH])}

    def _full_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))}
        env.update(self.env)
        return env

    # ------------------------------------------------------------------------ life cycle
    def start(self, *, timeout_s: float = 120) -> None:
        """Write the configuration, start the daemons, wait until jobs and sacct work.

        On any failure the daemons started so far are stopped again.

        Raises
        ------
        ClusterError
            Naming the daemon that did not come up, with the end of its log.
        """
        if len(str(self.munge_socket)) > 100 or len(str(self.mysql_socket)) > 100:
            raise ClusterError(f"Cluster directory {self.root} is too long for UNIX sockets "
                               "(107 bytes). Pass a shorter root.")
        try:
            self._start(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout_s: float) -> None:
        self.root.chmod(0o755)  # munged: every parent of its socket must be world-executable
        for sub in ("bin", "etc", "munge", "mysql", "state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o755)
        key_dir = self.root / "munge-key"
        key_dir.mkdir(mode=0o700, exist_ok=True)
        self.ports = {name: free_port() for name in ("slurmctld", "slurmd", "slurmdbd", "mysql")}
        self.hardware = node_hardware()
        # Leave 5 % (at least 512 MiB) for the daemons and so that slurmd never measures less
        # than configured, which would drain the node.
        mem = self.hardware["RealMemory"]
        self.real_memory_mb = mem - max(mem // 20, 512)

        # MUNGE: a private key and socket.
        key = key_dir / "munge.key"
        self._check([which("mungekey"), "--create", "--keyfile", str(key)])
        self._spawn("munged", [
            which("munged"), "--foreground", f"--socket={self.munge_socket}",
            f"--key-file={key}", f"--log-file={self.root / 'log' / 'munged.log'}",
            f"--pid-file={self.root / 'munge' / 'munged.pid'}",
            f"--seed-file={key_dir / 'munged.seed'}"])
        self._wait("munged", timeout_s, lambda: self._ok(
            ["sh", "-c", f"{which('munge')} -n -S {self.munge_socket} | "
                         f"{which('unmunge')} -S {self.munge_socket}"]))

        # MariaDB for slurmdbd: a private data directory, TCP on 127.0.0.1 only.
        datadir = self.root / "mysql" / "data"
        self._check([which("mariadb-install-db"), "--no-defaults", f"--datadir={datadir}",
                     "--user=root", "--auth-root-authentication-method=socket",
                     "--skip-test-db"], timeout_s=timeout_s)
        self._spawn("mariadbd", [
            which("mariadbd"), "--no-defaults", f"--datadir={datadir}", "--user=root",
            f"--socket={self.mysql_socket}", "--bind-address=127.0.0.1",
            f"--port={self.ports['mysql']}", f"--pid-file={self.root / 'mysql' / 'mysqld.pid'}",
            f"--log-error={self.root / 'log' / 'mariadbd.log'}", "--skip-log-bin",
            # slurmdbd warns below these (and its schema set-up needs the lock timeout)
            "--innodb-buffer-pool-size=128M", "--innodb-lock-wait-timeout=900"])
        mysql = [which("mariadb"), "--no-defaults", f"--socket={self.mysql_socket}", "-u", "root"]
        self._wait("mariadbd", timeout_s, lambda: self._ok(
            [which("mariadb-admin"), "--no-defaults", f"--socket={self.mysql_socket}", "-u",
             "root", "ping"]))
        grants = " ".join(
            f"CREATE USER 'slurm'@'{host}' IDENTIFIED BY '{self._db_password}'; "
            f"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'{host}';"
            for host in ("127.0.0.1", "localhost"))
        self._check([*mysql, "-e", grants + " FLUSH PRIVILEGES;"])

        self._write_config()
        self._write_client_wrappers()
        self._spawn("slurmdbd", [which("slurmdbd"), "-D"])
        self._wait("slurmdbd", timeout_s, lambda: self._ok([which("sacctmgr"), "-n", "list",
                                                            "cluster"]))
        self._spawn("slurmctld", [which("slurmctld"), "-D", "-i"])
        self._wait("slurmctld", timeout_s, lambda: self._ok([which("scontrol"), "ping"]))
        self._spawn("slurmd", [which("slurmd"), "-D", "-N", self.NODE])
        self._wait("slurmd", timeout_s, self._node_ready)
        # slurmctld registers the cluster with slurmdbd itself; sacct needs that.
        self._wait("slurmctld", timeout_s, lambda: self.cluster_name in self._out(
            [which("sacctmgr"), "-n", "-P", "list", "cluster", "format=cluster"]).split())
        self._wait("slurmdbd", timeout_s, lambda: self._ok([which("sacct"), "-n", "-X"]))
        logger.info("local SLURM cluster up in %s: %s", self.root, self.ports)

    def stop(self, *, grace_s: float = 20) -> None:
        """Cancel this cluster's jobs, stop every daemon this object started, by PID.

        Idempotent. Nothing else is signalled. The cluster directory is removed if this object
        created it.
        """
        if "slurmctld" in self._procs and self._procs["slurmctld"].poll() is None:
            try:
                ids = self._out([which("squeue"), "-h", "-o", "%i"]).split()
                if ids:
                    self._ok([which("scancel"), *ids])
                    deadline = time.monotonic() + grace_s
                    while self._out([which("squeue"), "-h", "-o", "%i"]).strip() \
                            and time.monotonic() < deadline:
                        time.sleep(0.5)
            except (OSError, subprocess.SubprocessError) as err:
                logger.warning("could not cancel the jobs of the local cluster: %s", err)
        for name in reversed(self.DAEMONS):
            proc = self._procs.pop(name, None)
            if proc is None:
                continue
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    logger.warning("%s (pid %d) ignored SIGTERM; sending SIGKILL", name, proc.pid)
                    proc.kill()
                    proc.wait(timeout=grace_s)
            logger.info("stopped %s (pid %d, exit %s)", name, proc.pid, proc.returncode)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def pids(self) -> dict[str, int]:
        """PID of each daemon started by this object (and not yet stopped)."""
        return {name: proc.pid for name, proc in self._procs.items()}

    # ---------------------------------------------------------------------------- queries
    def accounting(self, *, job_name: str, timeout_s: float = 60) -> list[dict[str, str]]:
        """The sacct rows (allocations only, no steps) of every job named ``job_name``.

        Waits until every row has reached a final state: right after a job ends, slurmdbd may
        still hold an incomplete row for it.

        Returns
        -------
        rows : list of dict
            Keys ``JobID``, ``JobName``, ``State``, ``ExitCode``, ``Comment``, ``ReqMem``,
            ``AllocCPUS``, ``AllocTRES``, ``Timelimit``, ``Partition``, ``WorkDir``; sorted
            by job id.
        """
        fields = ("JobID", "JobName", "State", "ExitCode", "Comment", "ReqMem", "AllocCPUS",
                  "AllocTRES", "Timelimit", "Partition", "WorkDir")
        cmd = [which("sacct"), "-X", "-n", "-P", "--starttime", "now-2days", "--name", job_name,
               "--format", ",".join(fields)]
        deadline = time.monotonic() + timeout_s
        while True:
            rows = [dict(zip(fields, line.split("|"), strict=True))
                    for line in self._out(cmd).splitlines() if line.strip()]
            # "CANCELLED by 0" -> "CANCELLED"
            if rows and all(r["State"].split()[0] in FINAL_STATES for r in rows):
                return sorted(rows, key=lambda r: int(r["JobID"].split("_")[0]))
            if time.monotonic() > deadline:
                raise ClusterError(f"sacct rows of jobs named {job_name!r} did not reach a final "
                                   f"state within {timeout_s} s: {rows}")
            time.sleep(1)

    def log_tail(self, name: str, n_chars: int = 2000) -> str:
        """The end of a daemon's log (its stdout/stderr and its own log file)."""
        text = ""
        for path in (self.root / "log" / f"{name}.out", self.root / "log" / f"{name}.log"):
            if path.is_file():
                text += f"--- {path}\n{path.read_text(errors='replace')[-n_chars:]}\n"
        return text

    # ------------------------------------------------------------------------- internals
    def _write_config(self) -> None:
        hw = self.hardware
        auth = f"socket={self.munge_socket}"
        self.conf.write_text(f"""\
# Single-node SLURM cluster of brainalign's test suite (tests/slurm/local_slurm.py).
ClusterName={self.cluster_name}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={self.ports['slurmctld']}
SlurmdPort={self.ports['slurmd']}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# our munged, not /run/munge (connections to slurmdbd: AccountingStoragePass below)
AuthInfo={auth}
MpiDefault=none
# no cgroups: track job processes through /proc, bind CPUs with sched_setaffinity
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/linux
SchedulerType=sched/backfill
# CPUs and memory are consumable: --cpus-per-task and --mem are enforced by the scheduler
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without it a job that gives no --mem would get the whole node's memory
DefMemPerCPU=1024
# reject impossible requests at submission instead of leaving them pending for ever
EnforcePartLimits=ALL
ReturnToService=2
MailProg=/bin/true
# finished jobs stay visible to squeue/scontrol for 5 minutes
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={self.ports['slurmdbd']}
# for slurmdbd connections this names the MUNGE socket
AccountingStoragePass={self.munge_socket}
# sacct shows the --comment the Snakemake executor sets (rule and wildcards)
AccountingStoreFlags=job_comment
SlurmctldPidFile={self.root / 'state' / 'slurmctld.pid'}
SlurmdPidFile={self.root / 'spool' / 'slurmd.pid'}
StateSaveLocation={self.root / 'state'}
SlurmdSpoolDir={self.root / 'spool'}
SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}
SlurmdLogFile={self.root / 'log' / 'slurmd.log'}
SlurmctldDebug=info
SlurmdDebug=info
# one GPU as a generic resource without a device behind it (gres.conf): jobs can ask for
# --gpus=1 and are given it, as on a GPU node; what they run still runs on CPU
GresTypes=gpu
AccountingStorageTRES=gres/gpu
NodeName={self.NODE} NodeAddr=127.0.0.1 Sockets={hw['SocketsPerBoard']} \
CoresPerSocket={hw['CoresPerSocket']} ThreadsPerCore={hw['ThreadsPerCore']} \
RealMemory={self.real_memory_mb} Gres=gpu:1 State=UNKNOWN
PartitionName={self.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
        (self.conf.parent / "gres.conf").write_text(
            "# the test node's GPU: a stand-in device file (slurmd counts GPUs by their files)\n"
            "AutoDetect=off\n"
            f"NodeName={self.NODE} Name=gpu File=/dev/null\n")
        dbd = self.conf.parent / "slurmdbd.conf"
        dbd.write_text(f"""\
# slurmdbd of brainalign's test cluster; read from the folder of SLURM_CONF.
AuthType=auth/munge
AuthInfo={auth}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={self.ports['slurmdbd']}
SlurmUser=root
DebugLevel=info
LogFile={self.root / 'log' / 'slurmdbd.log'}
PidFile={self.root / 'state' / 'slurmdbd.pid'}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.ports['mysql']}
StorageUser=slurm
StoragePass={self._db_password}
StorageLoc=slurm_acct_db
""")
        dbd.chmod(0o600)  # slurmdbd refuses a slurmdbd.conf that others can read

    def _write_client_wrappers(self) -> None:
        for client in CLIENTS:
            real = which(client)
            if real is None or Path(real).parent == self.root / "bin":
                continue
            wrapper = self.root / "bin" / client
            wrapper.write_text(
                f"#!/bin/sh\n# {client} of the SLURM cluster in {self.root}\n"
                f"SLURM_CONF={shlex.quote(str(self.conf))} exec {shlex.quote(real)} \"$@\"\n")
            wrapper.chmod(0o755)

    def _spawn(self, name: str, argv: Sequence[str | None]) -> None:
        if None in argv:
            raise ClusterError(f"{name}: program not found ({argv}); install {APT_PACKAGES}.")
        with open(self.root / "log" / f"{name}.out", "ab") as out:
            self._procs[name] = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=self._full_env(), cwd=self.root, start_new_session=True)
        logger.info("started %s (pid %d)", name, self._procs[name].pid)

    def _wait(self, name: str, timeout_s: float, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            proc = self._procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise ClusterError(f"{name} exited with code {proc.returncode} during start-up."
                                   f"\n{self.log_tail(name)}")
            if time.monotonic() > deadline:
                raise ClusterError(f"{name} was not ready within {timeout_s} s."
                                   f"\n{self.log_tail(name)}")
            time.sleep(0.25)

    def _node_ready(self) -> bool:
        state = self._out([which("sinfo"), "-h", "-n", self.NODE, "-o", "%T"]).strip()
        if state.startswith(("drain", "down", "fail")):
            reason = self._out([which("sinfo"), "-h", "-n", self.NODE, "-o", "%E"])
            raise ClusterError(f"Node {self.NODE} is {state}: {reason.strip()}."
                               f"\n{self.log_tail('slurmd')}\n{self.log_tail('slurmctld')}")
        return state in {"idle", "mixed", "allocated"}

    def _run(self, argv: Sequence[str | None], timeout_s: float) -> subprocess.CompletedProcess:
        if None in argv:
            raise ClusterError(f"program not found: {argv}; install {APT_PACKAGES}.")
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s,
                              env=self._full_env(), cwd=self.root, check=False)

    def _ok(self, argv: Sequence[str | None], timeout_s: float = 15) -> bool:
        try:
            return self._run(argv, timeout_s).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def _out(self, argv: Sequence[str | None], timeout_s: float = 15) -> str:
        try:
            res = self._run(argv, timeout_s)
        except subprocess.TimeoutExpired:
            return ""
        return res.stdout if res.returncode == 0 else ""

    def _check(self, argv: Sequence[str | None], timeout_s: float = 60) -> None:
        res = self._run(argv, timeout_s)
        if res.returncode != 0:
            raise ClusterError(f"`{' '.join(map(str, argv))}` failed with exit code "
                               f"{res.returncode}: {(res.stdout + res.stderr)[-2000:]}")
