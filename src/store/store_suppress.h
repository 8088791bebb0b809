/*
 * store_suppress.h - private to src/store: which permanent failures put a
 * recipient on the suppression list.
 */
#ifndef TERN_STORE_SUPPRESS_H
#define TERN_STORE_SUPPRESS_H

#include <stdbool.h>
#include <stddef.h>

/* The longest enhanced status code (RFC 3463 4.1: three digits per sub-code at most), with its NUL. */
#define SUPPRESS_STATUS_MAX 12

/*
 * suppress_hard_bounce - does a permanent failure's reason say that the
 * recipient's address does not exist? reason is a peer's reply as tern
 * keeps it ("550 5.1.1 text (peer)") or tern's own ("5.1.2 domain ...").
 * Yes only with an enhanced status code (RFC 3463) of class 5 (and a basic
 * code of 5xx, when there is one) among:
 *
 *   5.1.1   bad destination mailbox address (no such user)
 *   5.1.2   bad destination system address (the domain does not exist)
 *   5.1.3   bad destination mailbox address syntax
 *   5.1.6   destination mailbox has moved, no forwarding address
 *   5.1.10  recipient address has a null MX (RFC 7505)
 *
 * Everything else is about the message, the sender or policy, not the
 * address, and may pass another day: 5.1.0 and 5.1.4 (vague), 5.1.7 and
 * 5.1.8 (the sender), 5.2.x (mailbox full or disabled), 5.3.4 (size),
 * 5.6.x (content), 5.7.x (policy, spam), and a bare 550 without an
 * enhanced code. The status found goes into status (may be NULL).
 */
bool suppress_hard_bounce(const char *reason, char *status, size_t size);

#endif
