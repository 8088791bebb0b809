"""The client matrix: real mail clients and libraries (PHPMailer, Nodemailer,
smtplib, curl, swaks, msmtp, s-nail, Perl's Net::SMTP) against the
submission (STARTTLS) and submissions (implicit TLS) listeners.

Each client is configured as its own documentation shows and picks its own
SASL mechanism; the server keeps tern's default AUTH settings and the user is
made as the README shows, with a password and nothing else. The clients, and
the checks on what they did, are in tests/clients/matrix.py, which also runs
by hand. With -s the table (result, milliseconds per message, mechanism) is
printed at the end; nothing here asserts on time.

For each client and port, on a server of its own:
- one message arrives in the Maildir, with the subject, From, To and body sent;
- ten in a row, each a fresh connection and login from 127.0.0.1, all arrive,
  without a lockout or a 421;
- a wrong password is refused with 535 and the server logs the failure for
  the user.
A correct login is never preceded by a failed AUTH exchange (which would cost
the failure delay and count towards the lockout)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "clients"))

import matrix  # noqa: E402

CELLS = {}


def cell(client, kind):
    return CELLS.setdefault((client, kind), matrix.Cell(client, kind))


@pytest.fixture(scope="module", autouse=True)
def print_matrix():
    yield
    cells = [CELLS[(c, k)] for c in matrix.CLIENTS for k in matrix.KINDS if (c, k) in CELLS]
    if cells:
        print("\n\nclient matrix (tern's default AUTH settings):\n" + matrix.table(cells))


@pytest.fixture(scope="session")
def node_modules():
    matrix.ensure_node_modules()


@pytest.fixture
def server(request, tern_server, client):
    """A server of the matrix's own (default AUTH settings, both listeners,
    the users); the client is installed, or the test fails."""
    if client == "nodemailer":
        request.getfixturevalue("node_modules")
    why = matrix.CLIENTS[client].problem()
    if why:
        pytest.fail("%s: %s" % (client, why))
    return matrix.add_users(tern_server(config=matrix.CONFIG, listeners=matrix.KINDS))


def workdir(tmp_path):
    path = tmp_path / "client"
    path.mkdir()
    return str(path)


clients = pytest.mark.parametrize("client", list(matrix.CLIENTS))
kinds = pytest.mark.parametrize("kind", matrix.KINDS)


@kinds
@clients
def test_send(server, tmp_path, client, kind):
    runs, problems = matrix.send(server, client, kind, workdir(tmp_path), ["%s over %s" % (client, kind)])
    cell(client, kind).add("send", runs, problems)
    assert not problems, "\n\n".join(problems)


@kinds
@clients
def test_ten_in_a_row(server, tmp_path, client, kind):
    runs, problems = matrix.send(server, client, kind, workdir(tmp_path), matrix.subjects(client, kind, 10))
    cell(client, kind).add("ten in a row", runs, problems)
    assert not problems, "\n\n".join(problems)


@kinds
@clients
def test_wrong_password(server, tmp_path, client, kind):
    run, problems = matrix.wrong_password(server, client, kind, workdir(tmp_path))
    cell(client, kind).add("wrong password", [run], problems)
    assert not problems, "\n\n".join(problems)
