/*
 * net_dns.c - libunbound on the event loop (see net_dns.h).
 *
 * Answers come as wire-format RDATA (RFC 1035 3.3); names in them are
 * uncompressed by libunbound. Every answer is checked before use: a record
 * of the wrong length or a name that is not a host name is dropped, and an
 * answer left with nothing usable counts as a temporary failure, so that a
 * broken or hostile DNS server can delay mail but not misroute it.
 */
#include "net/net_dns.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

#include "util/util_log.h"
#include "util/util_str.h"

#define RR_TYPE_A      1
#define RR_TYPE_MX     15
#define RR_TYPE_AAAA   28
#define RR_CLASS_IN    1
#define RCODE_NXDOMAIN 3

struct dns_lookup {
	struct dns *dns;
	struct dns_lookup *prev, *next;
	int type;
	int family;
	dns_mx_done *mx_done;
	dns_addr_done *addr_done;
	void *arg;
};

struct dns {
	struct ub_ctx *ctx;
	struct event *readable;
	struct dns_lookup *pending;
};

const char *dns_status_name(enum dns_status status)
{
	static const char *const names[] = {"ok", "nodata", "nxdomain", "tempfail"};
	return names[status];
}

static void dns_readable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct dns *dns = arg;
	int err = ub_process(dns->ctx);
	if (err != 0)
		log_error("event=dns_error error=\"%s\"", ub_strerror(err));
}

/* dns_configure - where libunbound sends its questions. */
static bool dns_configure(struct ub_ctx *ctx, const char *resolver, char *err, size_t errlen)
{
	int rc = 0;
	if (strcmp(resolver, "system") == 0) {
		rc = ub_ctx_resolvconf(ctx, NULL);
	} else if (strcmp(resolver, "recursive") != 0) {
		/* A forwarder on this machine is normal (a local cache, or a test
		 * server), and it is trusted to answer for test. and for the
		 * loopback PTR zone too, which libunbound would otherwise answer
		 * itself (RFC 6761: private setups and labs use them). */
		rc = ub_ctx_set_option(ctx, "do-not-query-localhost:", "no");
		if (rc == 0)
			rc = ub_ctx_set_option(ctx, "local-zone:", "test. transparent");
		if (rc == 0)
			rc = ub_ctx_set_option(ctx, "local-zone:", "127.in-addr.arpa. transparent");
		if (rc == 0)
			rc = ub_ctx_set_fwd(ctx, resolver);
	}
	if (rc != 0) {
		str_format(err, errlen, "DNS resolver %s: %s", resolver, ub_strerror(rc));
		return false;
	}
	return true;
}

struct dns *dns_new(struct event_base *base, const char *resolver, char *err, size_t errlen)
{
	struct ub_ctx *ctx = ub_ctx_create();
	if (!ctx) {
		str_copy(err, errlen, "cannot create a DNS resolver");
		return NULL;
	}
	/* A thread, not a forked process: the answers come back through a pipe either way. */
	if (ub_ctx_async(ctx, 1) != 0 || !dns_configure(ctx, resolver, err, errlen)) {
		if (!err[0])
			str_copy(err, errlen, "cannot set up the DNS resolver");
		ub_ctx_delete(ctx);
		return NULL;
	}
	struct dns *dns = xcalloc(1, sizeof *dns);
	dns->ctx = ctx;
	dns->readable = event_new(base, ub_fd(ctx), EV_READ | EV_PERSIST, dns_readable, dns);
	if (!dns->readable || event_add(dns->readable, NULL) != 0)
		fatal("cannot watch the DNS resolver");
	return dns;
}

void dns_free(struct dns *dns)
{
	if (!dns)
		return;
	event_free(dns->readable);
	ub_ctx_delete(dns->ctx);
	while (dns->pending) {
		struct dns_lookup *next = dns->pending->next;
		free(dns->pending);
		dns->pending = next;
	}
	free(dns);
}

/* ---- Reading answers ---- */

static bool host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* wire_name - a wire-format name into dotted text; false if malformed or not a host name. */
static bool wire_name(const unsigned char *p, size_t len, char out[DNS_NAME_MAX + 1])
{
	size_t i = 0, o = 0;
	while (i < len) {
		size_t label = p[i++];
		if (label == 0) {
			out[o] = '\0';
			return i == len;
		}
		if (label > 63 || i + label > len || o + label + 1 > DNS_NAME_MAX)
			return false;
		if (o > 0)
			out[o++] = '.';
		for (size_t k = 0; k < label; k++) {
			if (!host_char(p[i + k]))
				return false;
			out[o++] = (char)p[i + k];
		}
		i += label;
	}
	return false;
}

bool dns_parse_mx(const unsigned char *rdata, size_t len, struct dns_mx *mx)
{
	if (len < 3 || !wire_name(rdata + 2, len - 2, mx->host))
		return false;
	mx->preference = (unsigned)(rdata[0] << 8 | rdata[1]);
	return true;
}

/* answer_status - what the answer says before its records are read. */
static enum dns_status answer_status(int err, const struct ub_result *result)
{
	if (err != 0 || !result || result->bogus)
		return DNS_TEMPFAIL;
	if (result->nxdomain || result->rcode == RCODE_NXDOMAIN)
		return DNS_NXDOMAIN;
	if (result->rcode != 0)
		return DNS_TEMPFAIL;
	return result->havedata ? DNS_OK : DNS_NODATA;
}

static void mx_answer(struct dns_lookup *l, enum dns_status status, const struct ub_result *result)
{
	struct dns_mx mx[DNS_MX_MAX];
	size_t count = 0;
	for (int i = 0; status == DNS_OK && result->data[i] && count < DNS_MX_MAX; i++) {
		if (dns_parse_mx((const unsigned char *)result->data[i], (size_t)result->len[i], &mx[count]))
			count++;
	}
	if (status == DNS_OK && count == 0)
		status = DNS_TEMPFAIL; /* records, but none usable */
	l->mx_done(l->arg, status, mx, count);
}

static void addr_answer(struct dns_lookup *l, enum dns_status status, const struct ub_result *result)
{
	struct sockaddr_storage addrs[DNS_ADDR_MAX];
	size_t count = 0;
	for (int i = 0; status == DNS_OK && result->data[i] && count < DNS_ADDR_MAX; i++) {
		struct sockaddr_storage *ss = &addrs[count];
		memset(ss, 0, sizeof *ss);
		if (l->family == AF_INET && result->len[i] == 4) {
			struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
			in->sin_family = AF_INET;
			memcpy(&in->sin_addr, result->data[i], 4);
			count++;
		} else if (l->family == AF_INET6 && result->len[i] == 16) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;
			in6->sin6_family = AF_INET6;
			memcpy(&in6->sin6_addr, result->data[i], 16);
			count++;
		}
	}
	if (status == DNS_OK && count == 0)
		status = DNS_TEMPFAIL;
	l->addr_done(l->arg, status, addrs, count);
}

static void lookup_unlink(struct dns_lookup *l)
{
	if (l->prev)
		l->prev->next = l->next;
	else
		l->dns->pending = l->next;
	if (l->next)
		l->next->prev = l->prev;
}

static void lookup_done(void *arg, int err, struct ub_result *result)
{
	struct dns_lookup *l = arg;
	lookup_unlink(l);
	enum dns_status status = answer_status(err, result);
	if (l->type == RR_TYPE_MX)
		mx_answer(l, status, result);
	else
		addr_answer(l, status, result);
	ub_resolve_free(result);
	free(l);
}

static void lookup_start(struct dns *dns, struct dns_lookup *l, const char *name)
{
	l->dns = dns;
	l->next = dns->pending;
	if (dns->pending)
		dns->pending->prev = l;
	dns->pending = l;
	int rc = ub_resolve_async(dns->ctx, name, l->type, RR_CLASS_IN, l, lookup_done, NULL);
	if (rc != 0) {
		log_error("event=dns_error name=\"%s\" error=\"%s\"", name, ub_strerror(rc));
		lookup_done(l, rc, NULL);
	}
}

void dns_lookup_mx(struct dns *dns, const char *domain, dns_mx_done *done, void *arg)
{
	struct dns_lookup *l = xcalloc(1, sizeof *l);
	l->type = RR_TYPE_MX;
	l->mx_done = done;
	l->arg = arg;
	lookup_start(dns, l, domain);
}

void dns_lookup_addr(struct dns *dns, const char *host, int family, dns_addr_done *done, void *arg)
{
	struct dns_lookup *l = xcalloc(1, sizeof *l);
	l->type = family == AF_INET6 ? RR_TYPE_AAAA : RR_TYPE_A;
	l->family = family;
	l->addr_done = done;
	l->arg = arg;
	lookup_start(dns, l, host);
}
