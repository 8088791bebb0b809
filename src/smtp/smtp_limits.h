/*
 * smtp_limits.h - every protocol limit tern enforces, in one place.
 *
 * Each limit names the RFC section it comes from, or says why tern picked
 * the number. Configurable limits (message size, recipients, timeouts) have
 * their defaults in the configuration table; these are the fixed ones.
 */
#ifndef TERN_SMTP_LIMITS_H
#define TERN_SMTP_LIMITS_H

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with its CRLF.
 * SMTP extensions may raise it (RFC 1870 SIZE, RFC 3461 DSN's ORCPT and
 * ENVID, RFC 4954's AUTH= parameter each add to it), so tern accepts lines
 * up to 2048 octets, as Postfix does by default. */
#define SMTP_COMMAND_LINE_MAX 2048

/* RFC 5321 4.5.3.1.6: a text line is at most 1000 octets with its CRLF. */
#define SMTP_TEXT_LINE_MAX 1000

/* RFC 5321 4.5.3.1.1: a local part is at most 64 octets. */
#define SMTP_LOCAL_PART_MAX 64

/* RFC 5321 4.5.3.1.2: a domain is at most 255 octets. */
#define SMTP_DOMAIN_MAX 255

/* RFC 5321 4.5.3.1.3: a path, with its angle brackets, is at most 256 octets. */
#define SMTP_PATH_MAX 256

/* RFC 5321 4.5.3.1.8 asks servers to take at least 100 recipients per
 * transaction; the configurable maximum (max_recipients) may not go below
 * this floor nor above the ceiling, which bounds a transaction's memory. */
#define SMTP_RECIPIENTS_MIN     100
#define SMTP_RECIPIENTS_CEILING 10000

/* ESMTP parameters on one MAIL or RCPT command (RFC 5321 4.1.2 esmtp-param).
 * No defined extension uses more than a handful together. */
#define SMTP_PARAMS_MAX 16

/* RFC 5321 6.3: a message whose Received: count passes this many hops is
 * taken to be looping. Postfix uses 50 (hopcount_limit); so does tern. */
#define SMTP_HOPS_MAX 50

/* Longest reply line tern writes (RFC 5321 4.5.3.1.5 allows 512 octets). */
#define SMTP_REPLY_LINE_MAX 512

/* Longest reply line tern reads from a peer, with its CRLF. RFC 5321
 * 4.5.3.1.5 says 512, but peers write longer ones (long enhanced texts,
 * EHLO lines with many AUTH mechanisms); like Postfix's line_length_limit,
 * tern takes up to 2048 and refuses a reply with a longer line. */
#define SMTP_REPLY_READ_MAX 2048

/* Longest HELO/EHLO argument kept for Received: and logs (a domain or an
 * address literal; both fit in SMTP_DOMAIN_MAX). */
#define SMTP_HELO_MAX SMTP_DOMAIN_MAX

#endif
