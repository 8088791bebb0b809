/*
 * store_bounce.h - private to src/store: the bounce (RFC 3464 delivery
 * status notification) owed to a sender whose recipients failed for good.
 */
#ifndef TERN_STORE_BOUNCE_H
#define TERN_STORE_BOUNCE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Full originals up to this size go back in the bounce; larger ones as headers only (as Postfix's bounce_size_limit).
 */
#define BOUNCE_ORIGINAL_MAX (50 * 1024)

/*
 * bounce_message - a new message from <> to job's sender reporting the
 * failed recipients (their error text is the remote reply or tern's own
 * reason), with the original (or its header) attached; its one recipient
 * (the sender) has no route yet: the caller routes it (store_route.h).
 * NULL when no bounce is
 * owed: the sender was <> (RFC 5321 6.1: never bounce a bounce).
 */
struct store_message *bounce_message(const struct store_settings *settings, const struct delivery_job *job,
                                     const struct delivery_rcpt *const *failed, size_t count, const char *original,
                                     size_t original_len, int64_t now_ms);

/*
 * bounce_delay_warning_message - the same for recipients still being retried
 * (RFC 3464 action "delayed"): when tern will give up, and the header of
 * the original only. NULL when none is owed.
 */
struct store_message *bounce_delay_warning_message(const struct store_settings *settings,
                                                   const struct delivery_job *job,
                                                   const struct delivery_rcpt *const *delayed, size_t count,
                                                   const char *original, size_t original_len, int64_t now_ms);

/*
 * bounce_success_message - the same for recipients delivered (or relayed to a
 * server without DSN) that asked for it with NOTIFY=SUCCESS (RFC 3461):
 * action "delivered" or "relayed", the header of the original only.
 */
struct store_message *bounce_success_message(const struct store_settings *settings, const struct delivery_job *job,
                                             const struct delivery_rcpt *const *done, size_t count,
                                             const char *original, size_t original_len, int64_t now_ms);

#endif
