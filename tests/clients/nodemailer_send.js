// nodemailer_send.js - send one message through tern with Nodemailer.
//
// Configured as Nodemailer's SMTP transport documentation shows: host, port,
// secure (true for port 465, false for 587, where Nodemailer upgrades with
// STARTTLS), auth {user, pass} without a method, so Nodemailer picks the
// mechanism itself; and tls.rejectUnauthorized false, the documented way to
// accept a self-signed certificate. Nodemailer is pinned in package.json and
// package-lock.json beside this file and installed with `npm ci`.
//
// Settings come from the environment (tests/clients/matrix.py sets them):
// SMTP_HOST, SMTP_PORT, SMTP_SECURITY (starttls or tls), SMTP_USER,
// SMTP_PASSWORD, MAIL_FROM, MAIL_TO, MAIL_SUBJECT, MAIL_BODY.
// Exit status 0 when the message was accepted; otherwise 1, with the error and
// the server's reply on stderr.
'use strict';

const nodemailer = require('nodemailer');

const env = process.env;
const transporter = nodemailer.createTransport({
    host: env.SMTP_HOST,
    port: Number(env.SMTP_PORT),
    secure: env.SMTP_SECURITY === 'tls',
    auth: {
        user: env.SMTP_USER,
        pass: env.SMTP_PASSWORD
    },
    tls: {
        rejectUnauthorized: false
    }
});

transporter
    .sendMail({
        from: env.MAIL_FROM,
        to: env.MAIL_TO,
        subject: env.MAIL_SUBJECT,
        text: env.MAIL_BODY
    })
    .then(
        info => {
            process.stdout.write('sent: ' + info.response + '\n');
        },
        err => {
            process.stderr.write('not sent: ' + err.message + '\n');
            process.stderr.write('server reply: ' + (err.response || '(none)') + '\n');
            process.exitCode = 1;
        }
    );
