#!/usr/bin/perl
# net_smtp_send.pl - send one message through tern with Perl's Net::SMTP.
#
# Follows the Net::SMTP documentation: new(host, Port => ..., SSL => 1) for
# implicit TLS, or new(host, Port => ...) then starttls() for STARTTLS, with
# SSL_verify_mode => 0 (IO::Socket::SSL's option) to accept a self-signed
# certificate; then auth(user, password), which leaves the choice of
# mechanism to Authen::SASL; mail, to, data, quit.
#
# Settings come from the environment (tests/clients/matrix.py sets them):
# SMTP_HOST, SMTP_PORT, SMTP_SECURITY (starttls or tls), SMTP_USER,
# SMTP_PASSWORD, MAIL_FROM, MAIL_TO, MAIL_SUBJECT, MAIL_BODY.
# Exit status 0 when the message was accepted; otherwise 1, with the step
# that failed and the server's reply on stderr.
use strict;
use warnings;
use Net::SMTP;

my %e = %ENV;
my $tls = $e{SMTP_SECURITY} eq 'tls';

my $smtp = Net::SMTP->new($e{SMTP_HOST}, Port => $e{SMTP_PORT}, Timeout => 60,
                          $tls ? (SSL => 1, SSL_verify_mode => 0) : ())
    or fail(undef, "connect: $@");
$tls or $smtp->starttls(SSL_verify_mode => 0) or fail($smtp, 'starttls');
$smtp->auth($e{SMTP_USER}, $e{SMTP_PASSWORD}) or fail($smtp, 'auth');
$smtp->mail($e{MAIL_FROM}) or fail($smtp, 'mail');
$smtp->to($e{MAIL_TO}) or fail($smtp, 'rcpt');
$smtp->data() or fail($smtp, 'data');
$smtp->datasend("From: $e{MAIL_FROM}\n");
$smtp->datasend("To: $e{MAIL_TO}\n");
$smtp->datasend("Subject: $e{MAIL_SUBJECT}\n");
$smtp->datasend("\n");
$smtp->datasend("$e{MAIL_BODY}\n");
$smtp->dataend() or fail($smtp, 'end of data');
$smtp->quit;
print "sent\n";
exit 0;

sub fail {
    my ($s, $step) = @_;
    my $reply = $s ? ($s->code // '') . ' ' . ($s->message // '') : '(none)';
    $reply =~ s/\s+$//;
    print STDERR "not sent: $step failed\nserver reply: $reply\n";
    exit 1;
}
