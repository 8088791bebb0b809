"""smtplib_send.py - send one message through tern with Python's smtplib.

Follows the smtplib and email documentation: an EmailMessage with From, To,
Subject and a text body; SMTP(host, port) then starttls() and login() for
STARTTLS, or SMTP_SSL(host, port) then login() for implicit TLS;
send_message(). login() picks the mechanism itself. The TLS context is the
ssl module's default one with certificate and host name checks turned off,
as its documentation shows, to accept a self-signed certificate.

Settings come from the environment (tests/clients/matrix.py sets them):
SMTP_HOST, SMTP_PORT, SMTP_SECURITY (starttls or tls), SMTP_USER,
SMTP_PASSWORD, MAIL_FROM, MAIL_TO, MAIL_SUBJECT, MAIL_BODY. Exit status 0
when the message was accepted; otherwise 1, with the error (and the
server's reply) on stderr.
"""

import os
import smtplib
import ssl
import sys
from email.message import EmailMessage


def main():
    env = os.environ
    msg = EmailMessage()
    msg["From"] = env["MAIL_FROM"]
    msg["To"] = env["MAIL_TO"]
    msg["Subject"] = env["MAIL_SUBJECT"]
    msg.set_content(env["MAIL_BODY"])

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    host, port = env["SMTP_HOST"], int(env["SMTP_PORT"])
    try:
        if env["SMTP_SECURITY"] == "tls":
            server = smtplib.SMTP_SSL(host, port, context=context, timeout=60)
        else:
            server = smtplib.SMTP(host, port, timeout=60)
            server.starttls(context=context)
        with server:
            server.login(env["SMTP_USER"], env["SMTP_PASSWORD"])
            server.send_message(msg)
    except (smtplib.SMTPException, OSError) as e:
        print("not sent: %r" % e, file=sys.stderr)
        return 1
    print("sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
