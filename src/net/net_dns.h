/*
 * net_dns.h - asynchronous DNS for the loop thread, on libunbound.
 *
 * libunbound resolves on a thread of its own; its descriptor is watched by
 * the event loop and answers are handed out there. Answers are cached by
 * libunbound for their TTL. The resolver is the system's (/etc/resolv.conf),
 * a forwarder given by address, or full recursion from the root.
 *
 * A lookup cannot be cancelled one by one: its callback always runs, once,
 * unless dns_free comes first (then none runs).
 */
#ifndef TERN_NET_DNS_H
#define TERN_NET_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct dns;

enum dns_status {
	DNS_OK,       /* records found */
	DNS_NODATA,   /* the name exists, without records of that type */
	DNS_NXDOMAIN, /* the name does not exist */
	DNS_TEMPFAIL, /* SERVFAIL, a timeout, a malformed answer: try again later */
};

#define DNS_NAME_MAX 255
#define DNS_MX_MAX   32
#define DNS_ADDR_MAX 16

struct dns_mx {
	unsigned preference;
	char host[DNS_NAME_MAX + 1]; /* without the final dot; "" for the root (null MX) */
};

/*
 * dns_new - a resolver: resolver is "system", "recursive", or a forwarder
 * "ADDRESS" or "ADDRESS@PORT" (libunbound's notation). NULL with err set.
 */
struct dns *dns_new(struct event_base *base, const char *resolver, char *err, size_t errlen);
void dns_free(struct dns *dns);

typedef void dns_mx_done(void *arg, enum dns_status status, const struct dns_mx *mx, size_t count);
typedef void dns_addr_done(void *arg, enum dns_status status, const struct sockaddr_storage *addrs, size_t count);

/* dns_lookup_mx - the MX records of domain, in the order of the answer. */
void dns_lookup_mx(struct dns *dns, const char *domain, dns_mx_done *done, void *arg);

/* dns_lookup_addr - A (family AF_INET) or AAAA (AF_INET6) records of host; ports are 0. */
void dns_lookup_addr(struct dns *dns, const char *host, int family, dns_addr_done *done, void *arg);

/*
 * dns_parse_mx - one MX record's RDATA (wire format: preference, then an
 * uncompressed name) into mx; false if malformed or the name is not a
 * host name. Exposed for the fuzzer; the answers use it.
 */
bool dns_parse_mx(const unsigned char *rdata, size_t len, struct dns_mx *mx);

/* dns_status_name - "ok", "nodata", "nxdomain", "tempfail". */
const char *dns_status_name(enum dns_status status);

#endif
