"""pytest fixtures for the gridlined integration tests (see gridline_harness.py)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gridline_harness import Daemon, fetch_catalog, running  # noqa: E402

_daemons_by_item = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    # On a failure, put the daemon's stderr into the report.
    if rep.failed:
        for d in _daemons_by_item.get(item.nodeid, []):
            rep.sections.append(("gridlined stderr", d.stderr_tail(80)))


def _register(request, d):
    _daemons_by_item.setdefault(request.node.nodeid, []).append(d)


# These fixtures serve the suites about registering, reading and keeping cases, so
# they run the daemon without routing workers: a case stays `registered` and the
# suites pin the request side alone. The routing suites start their own daemons.
NO_ROUTERS = ("--routers", "0")


@pytest.fixture
def daemon(request):
    """A fresh daemon on a fresh data folder for one test; stopped with SIGTERM
    (exit code 0 asserted) at the end unless the test stopped or killed it."""
    d = Daemon(extra_args=NO_ROUTERS)
    _register(request, d)
    with running(d):
        yield d


@pytest.fixture(scope="module")
def module_daemon(request):
    """One daemon shared by a module's tests; stopped with SIGTERM at the end."""
    d = Daemon(extra_args=NO_ROUTERS)
    with running(d):
        yield d


@pytest.fixture
def mdaemon(request, module_daemon):
    """module_daemon, registered so a failing test shows its stderr."""
    _register(request, module_daemon)
    assert module_daemon.alive(), "the shared daemon is down\n" + module_daemon.stderr_tail()
    return module_daemon


@pytest.fixture
def client(mdaemon):
    c = mdaemon.client()
    yield c
    c.close()


@pytest.fixture(scope="module")
def catalog(module_daemon):
    c = module_daemon.client()
    try:
        return fetch_catalog(c)
    finally:
        c.close()


@pytest.fixture
def daemons(request):
    """A factory for daemons with their own workers (unless args say --routers 0):
    daemons(args=(), config=None, start=True) makes one on a fresh folder; config is the
    text of a city file written there and passed with --config. Every daemon still
    running at the end is stopped with SIGTERM and must exit 0."""
    made = []

    def make(args=(), config=None, start=True):
        d = Daemon(extra_args=())
        extra = list(args)
        if config is not None:
            path = os.path.join(d.workdir, "city.cfg")
            with open(path, "w", encoding="utf-8") as f:
                f.write(config)
            extra += ["--config", path]
        d.extra_args = extra
        made.append(d)
        _register(request, d)
        if start:
            d.start()
        return d

    yield make
    try:
        for d in made:
            if d.alive():
                d.stop()
    finally:
        for d in made:
            d.cleanup()
