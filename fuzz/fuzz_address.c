/*
 * fuzz_address.c - fuzz target for paths, domains and UTF-8 checks
 * (smtp/smtp_address.c).
 *
 * The input is parsed as a MAIL path and as a RCPT path, checked as a
 * domain with every combination of flags, and checked as UTF-8. The
 * results must agree with each other and with the limits:
 *   - an accepted path starts with "<", ends with ">" where it says, fits
 *     SMTP_PATH_MAX, and its addr is local part "@" domain as its lengths
 *     say, each within its limit; its domain passes smtp_domain_check;
 *     has_utf8 is set exactly when the addr has bytes >= 0x80, which are
 *     well-formed UTF-8;
 *   - MAIL and RCPT accept the same paths but "<>" (MAIL only) and
 *     "<Postmaster>" (RCPT only), with the same result;
 *   - "<addr>" parses again to the same addr;
 *   - a domain accepted without UTF-8 or literals is accepted with them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has_high_bytes(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return true;
	}
	return false;
}

static void check_accepted(const struct smtp_path *p, const char *in, size_t consumed)
{
	size_t addr_len = strlen(p->addr);
	const char *domain = smtp_path_domain(p);

	if (consumed < 2 || consumed > SMTP_PATH_MAX || in[0] != '<' || in[consumed - 1] != '>')
		abort();
	if (addr_len != p->local_len + (p->domain_len ? p->domain_len + 1 : 0) || addr_len + 2 > consumed)
		abort();
	if (p->local_len > SMTP_LOCAL_PART_MAX || p->domain_len > SMTP_DOMAIN_MAX)
		abort();
	if (p->is_null != (addr_len == 0) || (p->domain_len == 0) != (p->is_null || p->is_bare_postmaster))
		abort();
	if (p->domain_len && (p->addr[p->local_len] != '@' || domain != p->addr + p->local_len + 1))
		abort();
	if (p->domain_len && !smtp_domain_check(domain, p->domain_len, p->domain_literal, true))
		abort();
	if (p->domain_literal != (p->domain_len > 0 && domain[0] == '['))
		abort();
	if (p->local_quoted != (p->local_len > 0 && p->addr[0] == '"'))
		abort();
	if (has_high_bytes(p->addr, addr_len) && !p->has_utf8)
		abort();
	if (!smtp_utf8_valid(p->addr, addr_len))
		abort();
}

/* check_reparse - "<addr>" gives the same addr, consuming all of it. */
static void check_reparse(const struct smtp_path *p, enum smtp_path_kind kind)
{
	char text[SMTP_PATH_MAX + 3];
	size_t len = strlen(p->addr), used = 0;
	struct smtp_path again;

	text[0] = '<';
	memcpy(text + 1, p->addr, len);
	text[len + 1] = '>';
	if (!smtp_path_parse(text, len + 2, kind, &again, &used, NULL, NULL) || used != len + 2 ||
	    strcmp(again.addr, p->addr) != 0 || again.local_len != p->local_len || again.domain_len != p->domain_len)
		abort();
}

static void check_paths(const char *in, size_t size)
{
	struct smtp_path rev, fwd;
	size_t rev_used = 7, fwd_used = 7;
	bool rev_long = false, fwd_long = false;
	const char *rev_why = NULL, *fwd_why = NULL;
	bool rev_ok = smtp_path_parse(in, size, SMTP_PATH_REVERSE, &rev, &rev_used, &rev_long, &rev_why);
	bool fwd_ok = smtp_path_parse(in, size, SMTP_PATH_FORWARD, &fwd, &fwd_used, &fwd_long, &fwd_why);

	if (rev_ok == (rev_why != NULL) || fwd_ok == (fwd_why != NULL))
		abort();
	if ((rev_ok && rev_long) || (fwd_ok && fwd_long) || (!rev_ok && rev_used) || (!fwd_ok && fwd_used))
		abort();
	if (rev_ok) {
		check_accepted(&rev, in, rev_used);
		check_reparse(&rev, SMTP_PATH_REVERSE);
		if (rev.is_bare_postmaster ||
		    (!rev.is_null && (!fwd_ok || fwd_used != rev_used || strcmp(fwd.addr, rev.addr) != 0)))
			abort();
	}
	if (fwd_ok) {
		check_accepted(&fwd, in, fwd_used);
		check_reparse(&fwd, SMTP_PATH_FORWARD);
		if (fwd.is_null || (!fwd.is_bare_postmaster && !rev_ok))
			abort();
	}
}

static void check_domains(const char *in, size_t size)
{
	bool plain = smtp_domain_check(in, size, false, false);
	bool utf8 = smtp_domain_check(in, size, false, true);
	bool literal = smtp_domain_check(in, size, true, false);
	bool both = smtp_domain_check(in, size, true, true);

	if ((plain && !(utf8 && literal && both)) || (utf8 && !both) || (literal && !both))
		abort();
	if (plain && (size == 0 || size > SMTP_DOMAIN_MAX || has_high_bytes(in, size)))
		abort();
	if (both && !smtp_utf8_valid(in, size))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;

	check_paths(in, size);
	check_domains(in, size);
	(void)smtp_utf8_valid(in, size);
	return 0;
}
