/*
 * smtp_dsn.h - the parameters of the DSN extension (RFC 3461): RET and
 * ENVID on MAIL, NOTIFY and ORCPT on RCPT. Pure: values in, verdicts out.
 */
#ifndef TERN_SMTP_DSN_H
#define TERN_SMTP_DSN_H

#include <stdbool.h>
#include <stddef.h>

/* NOTIFY as bits (the store keeps the same values). */
#define SMTP_NOTIFY_NEVER   (1u << 0)
#define SMTP_NOTIFY_SUCCESS (1u << 1)
#define SMTP_NOTIFY_FAILURE (1u << 2)
#define SMTP_NOTIFY_DELAY   (1u << 3)

#define SMTP_ENVID_MAX 100 /* RFC 3461 4.4 */
#define SMTP_ORCPT_MAX 500 /* RFC 3461 4.2 */

/* smtp_xtext_valid - RFC 3461 4: "!".."~" except "+" and "=", or "+" and two upper-case hex digits. */
bool smtp_xtext_valid(const char *s, size_t len);

/* smtp_dsn_ret - "FULL" or "HDRS" (any case); *headers_only for HDRS. */
bool smtp_dsn_ret(const char *v, size_t len, bool *headers_only);

/* smtp_dsn_envid - xtext of at most SMTP_ENVID_MAX octets. */
bool smtp_dsn_envid(const char *v, size_t len);

/* smtp_dsn_notify - "NEVER", or SUCCESS, FAILURE and DELAY joined by commas (any case, no repeats). */
bool smtp_dsn_notify(const char *v, size_t len, unsigned *bits);

/* smtp_dsn_orcpt - "addr-type;xtext" of at most SMTP_ORCPT_MAX octets (addr-type an atom). */
bool smtp_dsn_orcpt(const char *v, size_t len);

#endif
