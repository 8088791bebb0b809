"""`make install` into a staging root (DESTDIR): tern and its man page under
PREFIX, and links named sendmail, mailq and newaliases where Debian's programs
look for them, but only where no other mail system has those names."""

import os
import subprocess

import tern_harness as th

LINKS = ("usr/sbin/sendmail", "usr/bin/mailq", "usr/sbin/newaliases")


def make_install(destdir, *args):
    r = subprocess.run(["make", "--no-print-directory", "-C", th.REPO, "install", "DESTDIR=" + destdir,
                        "INSTALL_BIN=" + th.TERN_BIN] + list(args),
                       capture_output=True, timeout=120 * th.SLOW)
    assert r.returncode == 0, "make install failed:\n%s\n%s" % (r.stdout.decode(), r.stderr.decode())
    return r


def test_install_fresh(tmp_path):
    dest = str(tmp_path / "root")
    r = make_install(dest)
    tern = os.path.join(dest, "usr/local/sbin/tern")
    assert os.access(tern, os.X_OK)
    assert os.path.isfile(os.path.join(dest, "usr/local/share/man/man8/tern.8"))
    for link in LINKS:
        assert os.readlink(os.path.join(dest, link)) == "/usr/local/sbin/tern", link
        assert ("install: /%s -> /usr/local/sbin/tern" % link).encode() in r.stdout
    v = subprocess.run([tern, "version"], capture_output=True, timeout=30)
    assert v.returncode == 0 and v.stdout.startswith(b"tern ")
    # Run under a link's name, the installed binary is the sendmail command.
    os.symlink(tern, str(tmp_path / "newaliases"))
    n = subprocess.run([str(tmp_path / "newaliases")], capture_output=True, timeout=30)
    assert n.returncode == 0 and b"no aliases file" in n.stdout

    # Again, and with another prefix: links that lead to tern are tern's to update.
    make_install(dest)
    make_install(dest, "PREFIX=/usr")
    assert os.access(os.path.join(dest, "usr/sbin/tern"), os.X_OK)
    for link in LINKS:
        assert os.readlink(os.path.join(dest, link)) == "/usr/sbin/tern", link


def test_install_leaves_another_mta(tmp_path):
    """Postfix's /usr/sbin/sendmail and its mailq link stay; the name it lacks is tern's."""
    dest = str(tmp_path / "root")
    os.makedirs(os.path.join(dest, "usr/sbin"))
    os.makedirs(os.path.join(dest, "usr/bin"))
    other = os.path.join(dest, "usr/sbin/sendmail")
    with open(other, "w") as f:
        f.write("#!/bin/sh\n# another mail system\n")
    os.symlink("../sbin/sendmail", os.path.join(dest, "usr/bin/mailq"))
    r = make_install(dest)
    with open(other) as f:
        assert "another mail system" in f.read()
    assert not os.path.islink(other)
    assert os.readlink(os.path.join(dest, "usr/bin/mailq")) == "../sbin/sendmail"
    assert os.readlink(os.path.join(dest, "usr/sbin/newaliases")) == "/usr/local/sbin/tern"
    err = r.stderr.decode()
    assert "another mail system has them: /usr/sbin/sendmail /usr/bin/mailq" in err
    assert 'sendmail_path = "/usr/local/sbin/tern sendmail -t -i"' in err

    # A link to another program is another mail system's too; one that leads to tern (a chain) is not.
    os.remove(other)
    os.symlink("/usr/lib/other-mta/sendmail", other)
    make_install(dest)
    assert os.readlink(other) == "/usr/lib/other-mta/sendmail"
    os.remove(other)
    os.symlink("/usr/local/sbin/tern", other)
    r = make_install(dest)
    assert b"left alone" not in r.stderr
    assert os.readlink(os.path.join(dest, "usr/bin/mailq")) == "/usr/local/sbin/tern"
