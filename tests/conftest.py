"""Suite-wide rules: which tests start processes, how they are grouped for parallel
runs, and that no process started by the tests outlives them.

- **No process left behind.** Every process a test starts inherits
  ``PEAKREADY_TEST_SESSION`` (one token per pytest process, so per xdist worker); at the end
  of the session any process still carrying it is reported (and then ended, by PID) so a
  leak fails the run instead of piling up on the machine.
- **``spawns``: tests that start processes** (a sandbox, a storefront, Locust, chaos, a CLI
  run, a kernel). A test is marked when it uses a fixture of ``PROCESS_FIXTURES``, or
  explicitly with ``@pytest.mark.spawns``. ``pytest --quick`` (``make test-quick``) runs
  only the others, and not those marked ``slow`` either. The marking cannot silently go wrong: every spawn is seen (a Python
  audit hook on ``subprocess.Popen``, ``os.fork``, ``os.posix_spawn``, ...), so an unmarked
  test that starts a process fails the full suite, and is stopped at its first spawn
  under ``--quick``.
- **Groups for ``-n N --dist loadgroup``** (pytest-xdist): tests that share a module- or
  session-scoped fixture (one sandbox, one moto server) run on one worker, in file order,
  so each shared fixture starts once; every other test is scheduled on its own.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import psutil
import pytest

SESSION_VAR = "PEAKREADY_TEST_SESSION"

# Fixtures that start processes, by name and by the folder whose conftest (or module)
# defines them: tests/collect's `shop` is an in-process moto world, tests/load's a process.
PROCESS_FIXTURES: dict[str, tuple[str, ...]] = {
    "stack": ("tests/sandbox",),  # a Stack: storefronts, balancer, PostgreSQL, Redis
    "fo_stack": ("tests/sandbox",),
    "slow_stack": ("tests/sandbox",),
    "sandbox_status": ("tests/control",),  # the sandbox daemon
    "sandbox": ("tests/run",),
    "shop": ("tests/load", "tests/analysis"),  # the test storefront (tests/load/shop.py)
    "make_shop": ("tests/load",),
    "aws_run": ("tests/collect",),  # runs a real chaos experiment
}

# Audit events that start a process (https://docs.python.org/3/library/audit_events.html)
SPAWN_EVENTS = frozenset({"subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn",
                          "os.spawn", "os.system", "os.exec", "pty.spawn"})
QUICK_HINT = ("it starts a process, so it is not a quick test: use a fixture of "
              "PROCESS_FIXTURES or mark it @pytest.mark.spawns (tests/conftest.py)")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--quick", action="store_true",
                     help="only the tests that start no process and are not marked slow "
                          "(make test-quick); a test that starts one anyway fails at its "
                          "first spawn")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "spawns: the test starts processes (sandbox, "
                            "storefront, Locust, chaos, CLI runs); not in make test-quick")
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        # build matplotlib's font cache once, before any worker or CLI run: a process that
        # builds it says so on stderr, which breaks the tests that read stderr's one line
        from matplotlib import font_manager  # noqa: F401
    config.stash[_SPAWNS] = _SpawnWatch(strict=config.getoption("quick"))
    sys.addaudithook(config.stash[_SPAWNS].audit)


class _SpawnWatch:
    """Records which test started a process; under ``--quick`` refuses the spawn."""

    def __init__(self, strict: bool):
        self.strict = strict
        self.item: pytest.Item | None = None
        self.spawned: list[str] = []

    def audit(self, event: str, args: tuple) -> None:
        if event not in SPAWN_EVENTS or self.item is None:
            return
        what = event
        if event == "subprocess.Popen" and len(args) > 1:
            argv = args[1]
            what = " ".join(map(str, argv if isinstance(argv, list | tuple) else [argv]))[:160]
        self.spawned.append(what)
        if self.strict:
            raise RuntimeError(f"{self.item.nodeid}: {QUICK_HINT} (started: {what})")


_SPAWNS = pytest.StashKey[_SpawnWatch]()


def _defining_dir(fixturedef) -> str:
    """``tests/load`` for a fixture of tests/load/conftest.py or of a module in it."""
    where = fixturedef.baseid.split("::")[0]
    return where.rsplit("/", 1)[0] if where.endswith(".py") else where


def _starts_processes(name: str, fixturedef) -> bool:
    return _defining_dir(fixturedef) in PROCESS_FIXTURES.get(name, ())


_SCOPES = ("class", "module", "package", "session")


def _shared_group(item: pytest.Item) -> str | None:
    """The xdist group of a test that uses the suite's own module-, package- or
    session-scoped fixtures: the node that owns the broadest of them (its module, its
    package folder, the session), so every test that shares one instance shares a group."""
    broadest = None
    for name, defs in item._fixtureinfo.name2fixturedefs.items():
        fixturedef = defs[-1]
        if fixturedef.scope not in _SCOPES or not fixturedef.baseid \
                or name == "no_process_left_behind":
            continue
        if broadest is None or _SCOPES.index(fixturedef.scope) > _SCOPES.index(broadest[0]):
            broadest = fixturedef.scope, fixturedef.baseid
    if broadest is None:
        return None
    scope, baseid = broadest
    if scope in ("class", "module"):
        return item.nodeid.split("::")[0]  # (a class's tests stay with their module)
    return "session" if scope == "session" else baseid


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(_starts_processes(name, defs[-1])
               for name, defs in item._fixtureinfo.name2fixturedefs.items()):
            item.add_marker(pytest.mark.spawns)
        group = _shared_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    if config.getoption("quick"):
        kept = [i for i in items if not _heavy(i)]
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
        return
    # longest first, so a parallel run does not end waiting on a long test started last
    # (xdist hands out the units in this order): the slow ones, then the groups sharing a
    # sandbox (a group is one unit, 20-150 s here), then the other process tests, the rest
    items.sort(key=lambda i: (i.get_closest_marker("slow") is None,
                              i.get_closest_marker("xdist_group") is None,
                              i.get_closest_marker("spawns") is None))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Tests sharing a sandbox must run on one worker, in order: refuse to run when the
    xdist groups did not take (pytest 9 with xdist 3.8 drops them silently, and tests that
    depend on their module's earlier tests then fail at random)."""
    if not (os.environ.get("PYTEST_XDIST_WORKER") and session.config.getvalue("loadgroup")):
        return
    lost = [i.nodeid for i in session.items
            if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(f"xdist groups ignored (pytest {pytest.__version__}): "
                                f"{lost[0]} has no @group; pin pytest<9 (pyproject.toml)")


def _heavy(item: pytest.Item) -> bool:
    """Not for ``--quick``: it starts processes, or is marked slow (> ~30 s on its own)."""
    return any(item.get_closest_marker(m) is not None for m in ("spawns", "slow"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    watch = item.config.stash[_SPAWNS]
    watch.item, watch.spawned = item, []
    try:
        return (yield)
    finally:
        watch.item = None


@pytest.fixture(autouse=True)
def _spawns_are_marked(request: pytest.FixtureRequest):
    """A test that started a process without being marked ``spawns`` fails: it would run
    (and start a sandbox, say) in ``make test-quick``."""
    yield
    watch = request.config.stash[_SPAWNS]
    if watch.spawned and not watch.strict and request.node.get_closest_marker("spawns") is None:
        pytest.fail(f"{QUICK_HINT}; started: {watch.spawned[0]}", pytrace=False)


def _leftovers(token: str) -> list[psutil.Process]:
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(SESSION_VAR) == token:
                found.append(proc)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
            continue
    return found


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind():
    # one token per pytest process: parallel workers must not count (or kill) each
    # other's live processes as leftovers
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    token = os.environ[SESSION_VAR] = f"{uuid.uuid4().hex}-{worker}"
    yield
    left = [p for p in _leftovers(token) if p.is_running()]
    if not left:
        return
    described = []
    for proc in left:
        try:
            described.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
            proc.kill()
        except psutil.Error:
            pass
    pytest.fail("processes left behind by the tests (now killed): " + "; ".join(described))


@pytest.fixture
def run_tmp():
    """A temp dir for one ``peakready run`` (its TMPDIR: the run's private sandbox state
    lives there). Outside pytest's own tmp tree, which is private to root: the sandbox's
    PostgreSQL runs as another user and must be able to reach its state folder."""
    path = Path(tempfile.mkdtemp(prefix="peakready-test-run-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
