<?php
// phpmailer_send.php - send one message through tern with PHPMailer, the
// mailer inside WordPress and most PHP applications.
//
// Configured as PHPMailer's README shows in its SMTP example (SMTPDebug set to
// show the server's replies, isSMTP, Host, SMTPAuth, Username, Password,
// SMTPSecure, Port; no AuthType, so PHPMailer picks the mechanism itself),
// plus the SMTPOptions its troubleshooting guide gives for a self-signed
// certificate. Debian's libphp-phpmailer provides it.
//
// Settings come from the environment (tests/clients/matrix.py sets them):
// SMTP_HOST, SMTP_PORT, SMTP_SECURITY (starttls or tls), SMTP_USER,
// SMTP_PASSWORD, MAIL_FROM, MAIL_TO, MAIL_SUBJECT, MAIL_BODY.
// Exit status 0 when the message was accepted; otherwise 1, with the error on
// stderr (the dialogue is on stdout).

require '/usr/share/php/libphp-phpmailer/autoload.php';

use PHPMailer\PHPMailer\PHPMailer;
use PHPMailer\PHPMailer\SMTP;
use PHPMailer\PHPMailer\Exception;

$mail = new PHPMailer(true);
try {
    $mail->SMTPDebug = SMTP::DEBUG_SERVER;
    $mail->isSMTP();
    $mail->Host = getenv('SMTP_HOST');
    $mail->SMTPAuth = true;
    $mail->Username = getenv('SMTP_USER');
    $mail->Password = getenv('SMTP_PASSWORD');
    $mail->SMTPSecure = getenv('SMTP_SECURITY') === 'tls'
        ? PHPMailer::ENCRYPTION_SMTPS : PHPMailer::ENCRYPTION_STARTTLS;
    $mail->Port = (int) getenv('SMTP_PORT');
    $mail->SMTPOptions = [
        'ssl' => [
            'verify_peer' => false,
            'verify_peer_name' => false,
            'allow_self_signed' => true,
        ],
    ];

    $mail->setFrom(getenv('MAIL_FROM'));
    $mail->addAddress(getenv('MAIL_TO'));
    $mail->Subject = getenv('MAIL_SUBJECT');
    $mail->Body = getenv('MAIL_BODY');

    $mail->send();
    echo "sent\n";
} catch (Exception $e) {
    fwrite(STDERR, "not sent: {$mail->ErrorInfo}\n");
    exit(1);
}
