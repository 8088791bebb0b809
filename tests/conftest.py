"""Shared pytest fixtures for the dialog, e2e and crash tiers.

`tern_server(config=None, users=(), aliases=(), start=True, listeners=())`
returns a started tern_harness.Server in its own temporary root; listeners
names further listener kinds ("submission", "submissions"), each given its
own free port (Server.port_of(kind)). At teardown every server the
test started is stopped by PID; a server that did not exit 0 after SIGTERM, or
whose log shows a sanitizer report or a fatal error, fails the test. When a
test fails, the tail of each server's log is attached to the report.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import tern_harness as th  # noqa: E402


def pytest_report_header(config):
    return "tern binary: %s%s" % (th.TERN_BIN, " (sanitized)" if th.SANITIZED else "")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed:
        for srv in getattr(item, "_tern_servers", []):
            rep.sections.append(("tern log: %s" % srv.name, srv.log_tail(120)))


@pytest.fixture
def tern_server(request, tmp_path):
    servers = []
    item = request.node
    item._tern_servers = servers

    def make(config=None, users=(), aliases=(), start=True, name=None, listeners=()):
        name = name or "tern%d" % (len(servers) + 1)
        srv = th.Server(str(tmp_path / name), config=config, name=name, listeners=listeners)
        servers.append(srv)
        if start:
            srv.start()
            for u in users:
                srv.add_user(u)
            for a in aliases:
                srv.add_alias(*a)
        return srv

    yield make

    problems = []
    for srv in servers:
        if srv.proc is None:
            continue
        was_running = srv.running()
        if not was_running and srv.exit_code is None:
            problems.append("%s died during the test (exit %s)%s" % (
                srv.name, srv.proc.returncode, srv.log_tail(80)))
        code = srv.stop()
        if was_running and (srv.killed or code != 0):
            problems.append("%s did not stop cleanly on SIGTERM (exit %s%s)%s" % (
                srv.name, code, ", needed SIGKILL" if srv.killed else "", srv.log_tail(80)))
        report = srv.sanitizer_report()
        if report:
            problems.append("%s log shows a sanitizer report or fatal error:\n%s" % (srv.name, report))
    if problems:
        pytest.fail("\n\n".join(problems))


