/*
 * msg_address.h - the addresses of an RFC 5322 address list (3.4), as in
 * a From: or To: field: display names, comments and group names dropped,
 * each address handed over as "local@domain" with a quoted local part
 * unquoted, and the length of that local part: it may hold "@" itself.
 *
 * Pure: a field value in (unfolded, no CR LF), addresses out.
 */
#ifndef TERN_MSG_ADDRESS_H
#define TERN_MSG_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

/* Longest address handed over; longer ones make the list malformed. */
#define MSG_ADDRESS_MAX 320

/*
 * msg_address_fn - one address, NUL-terminated: its local part (unquoted)
 * in the first local_len bytes, then "@" and the domain, or nothing more
 * when it has no domain (only msg_address_list_local hands such over).
 * A quoted local part may hold "@" ("\"a@b\"@c" is "a@b@c" with local_len
 * 3): split at local_len, never at an "@". Return false to stop.
 */
typedef bool msg_address_fn(void *ctx, const char *address, size_t local_len);

/*
 * msg_address_list - call fn for each address in value[0..len). Returns
 * false if the list is malformed (unbalanced quotes, comments or angle
 * brackets, an entry without "@", an address too long) or fn stopped;
 * *count says how many addresses were handed over before that.
 */
bool msg_address_list(const char *value, size_t len, msg_address_fn *fn, void *ctx, size_t *count);

/*
 * msg_address_list_local - msg_address_list, except that an entry may also
 * be a local part alone ("root", "Cron <root>"), handed over without "@":
 * the recipients of sendmail -t, where a script's "To: root" means a local
 * user. The caller adds the domain.
 */
bool msg_address_list_local(const char *value, size_t len, msg_address_fn *fn, void *ctx, size_t *count);

#endif
