/*
 * mta.c - remote delivery: jobs in, routes out, results back to the store.
 *
 * A job from the store thread is queued under a lock and picked up on the
 * loop thread. Its recipients are grouped by domain; each group is a
 * delivery, routed as RFC 5321 5.1 says: the domain's MX hosts by
 * preference, in random order among equals; no MX records but the name
 * exists: the domain itself (implicit MX); a null MX (RFC 7505) or a
 * domain that does not exist: bounce at once; a DNS failure: try later.
 * Every address of every host is tried in turn until one session decides
 * the recipients' fate; if none does, they are deferred with the last
 * reason seen.
 *
 * At most remote_max_connections sessions run at once, and at most
 * remote_max_per_destination to one destination; other deliveries wait in
 * their destination's FIFO, and destinations with waiting deliveries take
 * free slots in turn. A session whose message is done carries the next
 * waiting message to the same destination over the same connection, or
 * waits idle for one (remote_idle_timeout) when nobody else needs a slot.
 * A destination with a rate (remote_rate_per_destination, or its route's
 * rate=) starts its messages at most that often, evenly spaced.
 *
 * Destinations are named by senders (one per recipient domain), so they
 * do not live for ever: one with no delivery, no connection, no back-off
 * and no rate interval still running is forgotten once it has been unused
 * for remote_destination_ttl, by a timer that looks at a bounded number
 * of them per tick; at most remote_max_destinations exist at once.
 */
#include "mta/mta.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "mta/mta_private.h"
#include "net/net_tls.h"
#include "util/util_hash.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

/*
 * A destination: a domain (MX routes) or a relay. It counts its sessions
 * (remote_max_per_destination), and when none of its hosts could be
 * reached it is left alone for a while: deliveries to it are deferred at
 * once instead of each waiting for the same timeouts.
 */
#define MTA_DEST_BUCKETS 1024
#define MTA_DEST_SWEEP   512 /* destinations looked at per tick */
struct mta_dest {
	struct mta_dest *next; /* in its bucket */
	struct mta *mta;
	char name[DNS_NAME_MAX + 1];
	size_t connections;                           /* slots held: deliveries under way and idle sessions */
	struct mta_delivery *waiting, **waiting_tail; /* for a slot, oldest first */
	size_t waiting_count;
	struct mta_dest *ring_next; /* in the mta's ring of destinations with waiting deliveries */
	bool in_ring;
	/* Rate: the next message may start at next_start_us (monotonic), then one every interval_us. */
	uint64_t interval_us;
	uint64_t next_start_us;
	struct event *rate_timer; /* wakes the waiting when the next may start */
	unsigned failures;        /* in a row */
	int64_t down_until_ms;    /* 0: up */
	char why[160];
	uint64_t used_ms; /* monotonic: last given a delivery or a slot back */
};

struct mta {
	struct event_base *base;
	struct config *config;
	struct config *boot_config; /* local_delivery takes effect at a restart: it is read from here */
	struct dns *dns;
	struct tls_client *tls; /* the client contexts of config (and of boot_config's local_delivery) */
	struct store *store;
	struct store_reader *reader;
	/* Jobs handed over by the store thread. */
	pthread_mutex_t lock;
	struct delivery_job *incoming;
	struct event *incoming_event;
	struct mta_job *jobs; /* every job under way, for mta_free */
	/* Connection slots, in all and per destination. */
	size_t connections;
	size_t waiting_count;               /* deliveries waiting for a slot */
	struct mta_dest *ring, **ring_tail; /* destinations with waiting deliveries, served in turn */
	size_t ring_count;
	struct mta_session *detached; /* idle and closing sessions */
	/* SIGTERM: nothing new starts; done once no delivery holds a slot. */
	bool stopping;
	void (*stopped)(void *arg);
	void *stopped_arg;
	struct event *stop_timer;
	struct mta_dest *dests[MTA_DEST_BUCKETS];
	struct hash_keyed *dest_hasher; /* destination names come from senders: keyed, so none can crowd a bucket */
	size_t dest_count;
	size_t sweep_bucket;       /* where the next sweep tick starts */
	struct event *sweep_timer; /* forgets unused destinations */
	bool dest_full_logged;     /* remote_max_destinations reached: said once until there is room again */
	uint64_t rng;
};

struct event_base *mta_base(struct mta *mta)
{
	return mta->base;
}

struct tls_client *mta_tls(const struct mta_delivery *d)
{
	return d->job->tls;
}

struct mta_session **mta_detached(struct mta *mta)
{
	return &mta->detached;
}

/* ---- Finishing ---- */

static void rcpt_set(struct mta_job *j, size_t index, enum delivery_status status, const char *why)
{
	struct delivery_rcpt *r = &j->job->rcpts[index];
	r->status = status;
	str_copy(r->error, sizeof r->error, why ? why : "");
}

static void job_unlink(struct mta_job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		j->mta->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
}

static void job_finish(struct mta_job *j)
{
	job_unlink(j);
	if (j->body7)
		evbuffer_free(j->body7);
	if (j->body != j->job->body)
		evbuffer_free(j->body);
	store_delivery_done(j->mta->store, j->job);
	config_unref(j->config);
	tls_client_unref(j->tls);
	free(j);
}

static void slot_release(struct mta *mta, struct mta_dest *dest);

static void delivery_unlink(struct mta_delivery *d)
{
	struct mta_delivery **p = &d->job->deliveries;
	while (*p != d)
		p = &(*p)->next_in_job;
	*p = d->next_in_job;
}

static void delivery_free(struct mta_delivery *d)
{
	struct mta_job *j = d->job;
	delivery_unlink(d);
	if (d->connection_held)
		slot_release(d->mta, d->dest_state);
	free(d->rcpt_index);
	free(d);
	if (--j->deliveries_left == 0)
		job_finish(j);
}

/* delivery_end_all - every recipient of the delivery gets the same result. */
static void delivery_end_all(struct mta_delivery *d, enum delivery_status status, const char *why)
{
	const char *kind = status == DELIVERY_PERMFAIL ? "bounced" : "deferred";
	for (size_t i = 0; i < d->rcpt_count; i++)
		rcpt_set(d->job, d->rcpt_index[i], status, why);
	char q[LOG_QUOTE_MAX];
	log_info("event=%s_%s qid=%s dest=%s rcpts=%zu reason=%s",
	         d->route->kind == CONFIG_ROUTE_LMTP ? "lmtp" : "remote", kind, d->job->job->qid, d->dest,
	         d->rcpt_count, log_quote(q, sizeof q, why, strlen(why)));
	delivery_free(d);
}

/* ---- Destinations ---- */

/* dest_get - the destination called name, made if new; NULL past remote_max_destinations. */
static struct mta_dest *dest_get(struct mta *mta, const char *name)
{
	uint64_t h = hash_keyed(mta->dest_hasher, name, strlen(name));
	struct mta_dest **bucket = &mta->dests[h % MTA_DEST_BUCKETS];
	for (struct mta_dest *dest = *bucket; dest; dest = dest->next) {
		if (strcmp(dest->name, name) == 0) {
			dest->used_ms = time_mono_ms();
			return dest;
		}
	}
	if (mta->dest_count >= mta->config->remote_max_destinations) {
		if (!mta->dest_full_logged)
			log_warning("event=dest_table_full destinations=%zu limit=%llu", mta->dest_count,
			            (unsigned long long)mta->config->remote_max_destinations);
		mta->dest_full_logged = true;
		return NULL;
	}
	struct mta_dest *dest = xcalloc(1, sizeof *dest);
	str_copy(dest->name, sizeof dest->name, name);
	dest->mta = mta;
	dest->waiting_tail = &dest->waiting;
	dest->used_ms = time_mono_ms();
	dest->next = *bucket;
	*bucket = dest;
	mta->dest_count++;
	return dest;
}

static void dest_free(struct mta_dest *dest)
{
	if (dest->rate_timer)
		event_free(dest->rate_timer);
	free(dest);
}

/*
 * dest_unused - nothing refers to dest and nothing of it is still running:
 * no delivery waits or holds a slot, no connection is open or idle (both
 * hold slots), its back-off is over and its rate interval has passed.
 */
static bool dest_unused(const struct mta_dest *dest, uint64_t now_ms)
{
	return !dest->waiting && !dest->in_ring && dest->connections == 0 && dest->down_until_ms <= time_wall_ms() &&
	       dest->next_start_us <= time_mono_us() &&
	       !(dest->rate_timer && evtimer_pending(dest->rate_timer, NULL)) &&
	       now_ms - dest->used_ms >= dest->mta->config->remote_destination_ttl * 1000;
}

/* dest_sweep_interval - half the time a destination is kept, within 1 to 10 seconds. */
static struct timeval dest_sweep_interval(const struct mta *mta)
{
	uint64_t ms = mta->config->remote_destination_ttl * 1000 / 2;
	ms = ms < 1000 ? 1000 : ms > 10000 ? 10000 : ms;
	return (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
}

/* dest_sweep - forget unused destinations, looking at MTA_DEST_SWEEP of them at most, from where the last tick stopped.
 */
static void dest_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct mta *mta = arg;
	uint64_t now = time_mono_ms();
	size_t looked = 0, expired = 0, buckets = 0;
	while (looked < MTA_DEST_SWEEP && buckets++ < MTA_DEST_BUCKETS) {
		struct mta_dest **p = &mta->dests[mta->sweep_bucket];
		mta->sweep_bucket = (mta->sweep_bucket + 1) % MTA_DEST_BUCKETS;
		while (*p) {
			struct mta_dest *dest = *p;
			looked++;
			if (!dest_unused(dest, now)) {
				p = &dest->next;
				continue;
			}
			*p = dest->next;
			log_debug("event=dest_expired dest=%s idle_ms=%llu", dest->name,
			          (unsigned long long)(now - dest->used_ms));
			dest_free(dest);
			mta->dest_count--;
			expired++;
		}
	}
	if (expired > 0 && mta->dest_count < mta->config->remote_max_destinations)
		mta->dest_full_logged = false;
	struct timeval tv = dest_sweep_interval(mta);
	evtimer_add(mta->sweep_timer, &tv);
}

static bool dest_down(const struct mta_dest *dest)
{
	return dest->down_until_ms > time_wall_ms();
}

/*
 * dest_failed - no host of the destination could be reached: leave it
 * alone for half the backoff its recipients get (retry_initial doubled per
 * failure in a row, at most retry_max), so their own retries still try it.
 */
static void dest_failed(struct mta_delivery *d, const char *why)
{
	struct mta_dest *dest = d->dest_state;
	const struct config *c = d->job->config;
	if (dest_down(dest))
		return; /* sessions that started before it went down: the same news */
	uint64_t window = time_backoff_ms(c->retry_initial * 1000 / 2, c->retry_max * 1000 / 2, dest->failures + 1);
	dest->failures++;
	dest->down_until_ms = time_wall_ms() + (int64_t)window;
	str_copy(dest->why, sizeof dest->why, why);
	char q[LOG_QUOTE_MAX];
	log_info("event=destination_down dest=%s failures=%u retry_in_ms=%llu reason=%s", dest->name, dest->failures,
	         (unsigned long long)window, log_quote(q, sizeof q, why, strlen(why)));
}

static void dest_reached(struct mta_dest *dest)
{
	dest->failures = 0;
	dest->down_until_ms = 0;
}

/* ---- Addresses, hosts ---- */

static void delivery_next_host(struct mta_delivery *d);

static void delivery_try_address(struct mta_delivery *d)
{
	while (d->addr_at < d->addr_count) {
		d->session = mta_session_start(d, &d->addrs[d->addr_at++], d->hosts[d->host_at].host, d->last_error,
		                               sizeof d->last_error);
		if (d->session)
			return;
	}
	d->host_at++;
	delivery_next_host(d);
}

static void connection_pass_on(struct mta_delivery *d, struct mta_session *s);
static void delivery_route(struct mta_delivery *d);

void mta_delivery_session_done(struct mta_delivery *d, enum session_outcome outcome, const char *why)
{
	struct mta_session *s = d->session;
	d->session = NULL;
	/* why may live in the session: keep it before the session goes. */
	str_copy(d->last_error, sizeof d->last_error, why);
	if (outcome == SESSION_FINAL) {
		dest_reached(d->dest_state);
		connection_pass_on(d, s);
		delivery_free(d);
		return;
	}
	mta_session_free(s);
	if (d->reused) {
		/* A kept connection the peer had given up on: nothing was
		 * decided, so route afresh, with a connection of its own. */
		d->reused = false;
		delivery_route(d);
		return;
	}
	delivery_try_address(d);
}

static void addrs_found(void *arg, enum dns_status status, const struct sockaddr_storage *addrs, size_t count);

static void lookup_host(struct mta_delivery *d, int family)
{
	dns_lookup_addr(d->mta->dns, d->hosts[d->host_at].host, family, addrs_found, d);
}

static void addrs_found(void *arg, enum dns_status status, const struct sockaddr_storage *addrs, size_t count)
{
	struct mta_delivery *d = arg;
	for (size_t i = 0; i < count && d->addr_count < MTA_ADDRS_MAX; i++)
		d->addrs[d->addr_count++] = addrs[i];
	if (!d->addrs_v6_done) {
		/* IPv4 first, then IPv6, then try them in that order. */
		d->addrs_v6_done = true;
		if (status != DNS_OK)
			str_format(d->last_error, sizeof d->last_error, "4.4.4 cannot find the address of %s (%s)",
			           d->hosts[d->host_at].host, dns_status_name(status));
		lookup_host(d, AF_INET6);
		return;
	}
	if (d->addr_count == 0 && status != DNS_OK && !d->last_error[0])
		str_format(d->last_error, sizeof d->last_error, "4.4.4 cannot find the address of %s (%s)",
		           d->hosts[d->host_at].host, dns_status_name(status));
	delivery_try_address(d);
}

/* address_literal - host is an IPv4 or IPv6 address: it is its own address. */
static bool address_literal(const char *host, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof *out);
	struct sockaddr_in *in = (struct sockaddr_in *)(void *)out;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)out;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

static void delivery_next_host(struct mta_delivery *d)
{
	if (d->host_at >= d->host_count) {
		const char *why = d->last_error[0] ? d->last_error : "4.4.1 no mail exchanger could be reached";
		dest_failed(d, why);
		delivery_end_all(d, DELIVERY_TEMPFAIL, why);
		return;
	}
	d->addr_count = d->addr_at = 0;
	d->addrs_v6_done = false;
	if (address_literal(d->hosts[d->host_at].host, &d->addrs[0])) {
		d->addr_count = 1;
		delivery_try_address(d);
		return;
	}
	lookup_host(d, AF_INET);
}

/* ---- Routing ---- */

static uint64_t mta_random(struct mta *mta)
{
	mta->rng ^= mta->rng << 13;
	mta->rng ^= mta->rng >> 7;
	mta->rng ^= mta->rng << 17;
	return mta->rng;
}

/* hosts_order - by preference, random among equals (RFC 5321 5.1). */
static void hosts_order(struct mta *mta, struct dns_mx *hosts, size_t count)
{
	for (size_t i = count; i > 1; i--) {
		size_t k = (size_t)(mta_random(mta) % i);
		struct dns_mx t = hosts[i - 1];
		hosts[i - 1] = hosts[k];
		hosts[k] = t;
	}
	for (size_t i = 1; i < count; i++) {
		struct dns_mx t = hosts[i];
		size_t k = i;
		while (k > 0 && hosts[k - 1].preference > t.preference) {
			hosts[k] = hosts[k - 1];
			k--;
		}
		hosts[k] = t;
	}
}

static void mx_found(void *arg, enum dns_status status, const struct dns_mx *mx, size_t count)
{
	struct mta_delivery *d = arg;
	char why[160];
	if (d->route->kind != CONFIG_ROUTE_MX &&
	    (status == DNS_NXDOMAIN || (status == DNS_OK && count == 1 && !mx[0].host[0]))) {
		/* A relay that cannot be found is a mistake in the configuration,
		 * not the recipients' fault: their mail waits until it is fixed. */
		str_format(why, sizeof why, "4.4.4 the relay %s has no usable mail exchanger", d->dest);
		delivery_end_all(d, DELIVERY_TEMPFAIL, why);
		return;
	}
	switch (status) {
	case DNS_NXDOMAIN:
		str_format(why, sizeof why, "5.1.2 domain %s does not exist", d->domain);
		delivery_end_all(d, DELIVERY_PERMFAIL, why);
		return;
	case DNS_TEMPFAIL:
		str_format(why, sizeof why, "4.4.3 cannot look up the mail exchangers of %s", d->domain);
		dest_failed(d, why);
		delivery_end_all(d, DELIVERY_TEMPFAIL, why);
		return;
	case DNS_NODATA:
		/* No MX: the domain is its own mail exchanger (implicit MX). */
		d->hosts[0].preference = 0;
		str_copy(d->hosts[0].host, sizeof d->hosts[0].host, d->domain);
		d->host_count = 1;
		break;
	case DNS_OK:
		if (count == 1 && mx[0].host[0] == '\0') {
			str_format(why, sizeof why, "5.1.10 domain %s accepts no mail (null MX)", d->domain);
			delivery_end_all(d, DELIVERY_PERMFAIL, why);
			return;
		}
		for (size_t i = 0; i < count && d->host_count < MTA_HOSTS_MAX; i++)
			if (mx[i].host[0])
				d->hosts[d->host_count++] = mx[i];
		hosts_order(d->mta, d->hosts, d->host_count);
		break;
	}
	d->host_at = 0;
	delivery_next_host(d);
}

/* delivery_route - the hosts to try: the domain's (or a relay name's) MX hosts, a relay host, or a socket. */
static void delivery_route(struct mta_delivery *d)
{
	const struct config_route *route = d->route;
	if (route->kind == CONFIG_ROUTE_MX) {
		dns_lookup_mx(d->mta->dns, d->domain, mx_found, d);
		return;
	}
	if (route->host_mx) {
		dns_lookup_mx(d->mta->dns, route->host, mx_found, d);
		return;
	}
	d->host_count = 1;
	d->host_at = 0;
	if (route->socket_path) {
		struct sockaddr_un *un = (struct sockaddr_un *)(void *)&d->addrs[0];
		memset(&d->addrs[0], 0, sizeof d->addrs[0]);
		un->sun_family = AF_UNIX;
		str_copy(un->sun_path, sizeof un->sun_path, route->socket_path);
		str_copy(d->hosts[0].host, sizeof d->hosts[0].host, "localhost");
		d->addr_count = 1;
		d->addr_at = 0;
		delivery_try_address(d);
		return;
	}
	str_copy(d->hosts[0].host, sizeof d->hosts[0].host, route->host);
	delivery_next_host(d);
}

/* ---- Connection slots ---- */

static bool slot_free(struct mta *mta, const struct mta_delivery *d)
{
	return mta->connections < mta->config->remote_max_connections &&
	       d->dest_state->connections < mta->config->remote_max_per_destination;
}

/* ---- Rates ---- */

static void grant_waiting(struct mta *mta);

static void rate_wake(evutil_socket_t fd, short what, void *arg)
{
	struct mta_dest *dest = arg;
	grant_waiting(dest->mta);
}

/* rate_allows - dest may start a message now; if not, its waiting deliveries are woken when it may. */
static bool rate_allows(struct mta_dest *dest)
{
	uint64_t now = time_mono_us();
	if (dest->interval_us == 0 || now >= dest->next_start_us)
		return true;
	if (!dest->rate_timer) {
		dest->rate_timer = evtimer_new(dest->mta->base, rate_wake, dest);
		if (!dest->rate_timer)
			fatal("evtimer_new failed");
	}
	if (!evtimer_pending(dest->rate_timer, NULL)) {
		uint64_t wait = dest->next_start_us - now;
		struct timeval tv = {(time_t)(wait / 1000000), (suseconds_t)(wait % 1000000)};
		evtimer_add(dest->rate_timer, &tv);
	}
	return false;
}

/* rate_spend - a message to dest starts now: the next one waits its interval. */
static void rate_spend(struct mta_dest *dest)
{
	if (dest->interval_us == 0)
		return;
	uint64_t now = time_mono_us();
	dest->next_start_us = (dest->next_start_us > now ? dest->next_start_us : now) + dest->interval_us;
}

/*
 * mta_dest_sending - the rate was spent when the message was scheduled; a
 * connection's set-up may have made it late, so the next one waits a whole
 * interval from now, and the peer never sees two MAILs closer than that.
 */
void mta_dest_sending(struct mta_dest *dest)
{
	if (dest->interval_us == 0)
		return;
	uint64_t after = time_mono_us() + dest->interval_us;
	if (dest->next_start_us < after)
		dest->next_start_us = after;
}

/* slot_grant - d may connect: count it, and route it. */
static void slot_grant(struct mta *mta, struct mta_delivery *d)
{
	rate_spend(d->dest_state);
	mta->connections++;
	d->dest_state->connections++;
	d->connection_held = true;
	delivery_route(d);
}

static void ring_push(struct mta *mta, struct mta_dest *dest)
{
	dest->ring_next = NULL;
	dest->in_ring = true;
	*mta->ring_tail = dest;
	mta->ring_tail = &dest->ring_next;
	mta->ring_count++;
}

static struct mta_dest *ring_pop(struct mta *mta)
{
	struct mta_dest *dest = mta->ring;
	mta->ring = dest->ring_next;
	if (!mta->ring)
		mta->ring_tail = &mta->ring;
	dest->in_ring = false;
	mta->ring_count--;
	return dest;
}

/* wait_for_slot - d waits at the end of its destination's FIFO. */
static void wait_for_slot(struct mta *mta, struct mta_delivery *d)
{
	struct mta_dest *dest = d->dest_state;
	d->next_waiting = NULL;
	*dest->waiting_tail = d;
	dest->waiting_tail = &d->next_waiting;
	dest->waiting_count++;
	mta->waiting_count++;
	if (!dest->in_ring)
		ring_push(mta, dest);
}

/* waiting_take - the first waiting delivery of dest that match accepts (NULL: any), out of the FIFO. */
static struct mta_delivery *waiting_take(struct mta *mta, struct mta_dest *dest, const struct mta_session *match)
{
	struct mta_delivery **p = &dest->waiting;
	while (*p && match && !mta_session_serves(match, *p))
		p = &(*p)->next_waiting;
	struct mta_delivery *d = *p;
	if (!d)
		return NULL;
	*p = d->next_waiting;
	if (!*p)
		dest->waiting_tail = p;
	dest->waiting_count--;
	mta->waiting_count--;
	return d;
}

/* start_on - d goes over session s, an idle connection or one handed on, whose slot it takes. */
static void start_on(struct mta_session *s, struct mta_delivery *d)
{
	rate_spend(d->dest_state);
	d->connection_held = true;
	d->reused = true;
	d->session = s;
	mta_session_next(s, d);
}

/*
 * grant_waiting - waiting deliveries go, one destination after another
 * (a busy destination cannot starve the others), over an idle connection
 * of their own or in a free slot, as their rate allows; the waiting mail
 * of a destination that went down is deferred.
 */
static void grant_waiting(struct mta *mta)
{
	if (mta->stopping)
		return;
	size_t stuck_in_a_row = 0;
	while (mta->ring && mta->connections < mta->config->remote_max_connections &&
	       stuck_in_a_row < mta->ring_count) {
		struct mta_dest *dest = ring_pop(mta);
		if (!dest->waiting)
			continue; /* a connection handed on took the last one */
		if (dest_down(dest)) {
			struct mta_delivery *d;
			while ((d = waiting_take(mta, dest, NULL)))
				delivery_end_all(d, DELIVERY_TEMPFAIL, dest->why);
			continue;
		}
		struct mta_session *idle = rate_allows(dest) ? mta_session_unpark(mta, dest->waiting) : NULL;
		if (!idle && (!rate_allows(dest) || !slot_free(mta, dest->waiting))) {
			ring_push(mta, dest);
			stuck_in_a_row++;
			continue;
		}
		stuck_in_a_row = 0;
		struct mta_delivery *d = waiting_take(mta, dest, NULL);
		if (dest->waiting)
			ring_push(mta, dest);
		if (idle)
			start_on(idle, d);
		else
			slot_grant(mta, d);
	}
}

/*
 * slot_take - d goes now over an idle connection to its destination, or
 * a new one if a slot is free (closing an idle connection to make room),
 * else it waits, as it does while its destination's rate says so; a
 * destination that is down defers it at once.
 */
static void slot_take(struct mta *mta, struct mta_delivery *d)
{
	if (!d->dest_state) {
		delivery_end_all(d, DELIVERY_TEMPFAIL, "4.3.2 too many destinations at once (remote_max_destinations)");
		return;
	}
	if (dest_down(d->dest_state)) {
		delivery_end_all(d, DELIVERY_TEMPFAIL, d->dest_state->why);
		return;
	}
	if (mta->stopping || d->dest_state->waiting || !rate_allows(d->dest_state)) {
		wait_for_slot(mta, d); /* behind the others, or for its time */
		return;
	}
	struct mta_session *idle = mta_session_unpark(mta, d);
	if (idle) {
		start_on(idle, d);
		return;
	}
	if (!slot_free(mta, d)) {
		bool dest_full = d->dest_state->connections >= mta->config->remote_max_per_destination;
		mta_session_evict(mta, dest_full ? d->dest_state : NULL);
	}
	if (slot_free(mta, d)) {
		slot_grant(mta, d);
		return;
	}
	wait_for_slot(mta, d);
}

static void stop_done(struct mta *mta);

/* slot_release - a slot is free: waiting deliveries may have it. */
static void slot_release(struct mta *mta, struct mta_dest *dest)
{
	mta->connections--;
	dest->connections--;
	dest->used_ms = time_mono_ms();
	grant_waiting(mta);
	if (mta->stopping && mta->connections == 0 && !mta->detached)
		stop_done(mta);
}

void mta_detached_done(struct mta *mta, struct mta_dest *dest)
{
	if (dest)
		slot_release(mta, dest);
	else if (mta->stopping && mta->connections == 0 && !mta->detached)
		stop_done(mta);
}

/*
 * connection_pass_on - d is done with session s: the next waiting
 * delivery s can carry takes it (and d's slot), if the destination's rate
 * allows; or, if no delivery waits for the slot it holds (only the
 * destination's own, for their time), it stays open, idle; or it goes.
 */
static void connection_pass_on(struct mta_delivery *d, struct mta_session *s)
{
	struct mta *mta = d->mta;
	struct mta_dest *dest = d->dest_state;
	if (!mta_session_reusable(s, mta->config))
		return mta_session_close(s);
	bool may_start = rate_allows(dest);
	struct mta_delivery *next = may_start ? waiting_take(mta, dest, s) : NULL;
	if (next) {
		d->connection_held = false;
		start_on(s, next);
		return;
	}
	/* Waiting deliveries this session cannot carry (another route, an older configuration) need the slot. */
	bool slot_wanted = mta->waiting_count > dest->waiting_count || (may_start && dest->waiting_count > 0);
	if (mta->stopping || slot_wanted || mta->config->remote_idle_timeout == 0)
		return mta_session_close(s);
	d->connection_held = false; /* the idle session holds the slot now */
	mta_session_park(s);
}

/* ---- Jobs ---- */

static const char *address_domain(const char *address)
{
	const char *at = strrchr(address, '@');
	return at ? at + 1 : "";
}

static bool has_high_bytes(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* span_eight_bit - a byte >= 0x80 in p[0..len): eight bytes at a time, as this runs over every message. */
static bool span_eight_bit(const unsigned char *p, size_t len)
{
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t word;
		memcpy(&word, p + i, sizeof word);
		if (word & 0x8080808080808080ull)
			return true;
	}
	for (; i < len; i++)
		if (p[i] >= 0x80)
			return true;
	return false;
}

static bool body_eight_bit(struct evbuffer *body)
{
	struct evbuffer_ptr at;
	struct evbuffer_iovec vec;
	evbuffer_ptr_set(body, &at, 0, EVBUFFER_PTR_SET);
	while (evbuffer_peek(body, -1, &at, &vec, 1) > 0 && vec.iov_len > 0) {
		if (span_eight_bit(vec.iov_base, vec.iov_len))
			return true;
		evbuffer_ptr_set(body, &at, vec.iov_len, EVBUFFER_PTR_ADD);
	}
	return false;
}

/*
 * rcpt_route - the configured route of a recipient, by the route its row
 * holds: local_delivery for LMTP, else the rule it names in the
 * configuration this job runs with. A rule gone from the configuration
 * (a reload raced the store's rerouting) is replaced by what the
 * configuration now says for the domain.
 */
static const struct config_route *rcpt_route(struct mta *mta, const struct config *config,
                                             const struct delivery_rcpt *r)
{
	if (r->route == STORE_ROUTE_LMTP)
		return &mta->boot_config->local_delivery;
	const struct config_route *route = config_route_by_key(config, r->route_key);
	if (route)
		return route;
	char domain[DNS_NAME_MAX + 1], key[STORE_ROUTE_KEY_MAX];
	str_copy(domain, sizeof domain, address_domain(r->address));
	str_lower(domain);
	route = config_route_for(config, domain, key, sizeof key);
	log_info("event=route_gone rcpt_id=%lld rule=\"%s\" now=\"%s\"", (long long)r->id, r->route_key, key);
	return route;
}

/* job_deliveries - one delivery per domain among the job's recipients. */
static void job_start(struct mta *mta, struct delivery_job *job)
{
	struct mta_job *j = xcalloc(1, sizeof *j);
	j->mta = mta;
	j->config = config_ref(mta->config);
	j->tls = tls_client_ref(mta->tls);
	j->job = job;
	j->body = job->body;
	j->next = mta->jobs;
	if (mta->jobs)
		mta->jobs->prev = j;
	mta->jobs = j;
	if (!j->body) {
		/* The store attaches the body; if it could not, one more try here. */
		j->body = evbuffer_new();
		if (!j->body)
			fatal("evbuffer_new failed");
		if (!store_reader_body(mta->reader, job->msg_id, j->body)) {
			for (size_t i = 0; i < job->rcpt_count; i++)
				rcpt_set(j, i, DELIVERY_TEMPFAIL, "4.3.0 cannot read the message from the queue");
			job_finish(j);
			return;
		}
	}
	j->eight_bit = body_eight_bit(j->body);
	j->smtputf8 = has_high_bytes(job->sender);
	/* Each recipient's route; recipients with the same route (and, for MX routes, domain) go together. */
	bool *taken = xcalloc(job->rcpt_count ? job->rcpt_count : 1, sizeof *taken);
	const struct config_route **routes = xcalloc(job->rcpt_count ? job->rcpt_count : 1, sizeof *routes);
	for (size_t i = 0; i < job->rcpt_count; i++)
		routes[i] = rcpt_route(mta, j->config, &job->rcpts[i]);
	struct mta_delivery *list = NULL;
	for (size_t i = 0; i < job->rcpt_count; i++) {
		j->smtputf8 |= has_high_bytes(job->rcpts[i].address);
		if (taken[i])
			continue;
		struct mta_delivery *d = xcalloc(1, sizeof *d);
		d->mta = mta;
		d->job = j;
		d->route = routes[i];
		if (d->route->kind == CONFIG_ROUTE_MX) {
			str_copy(d->domain, sizeof d->domain, address_domain(job->rcpts[i].address));
			str_lower(d->domain);
		}
		str_copy(d->dest, sizeof d->dest,
		         d->domain[0]     ? d->domain
		         : d->route->host ? d->route->host
		                          : d->route->socket_path);
		d->dest_state = dest_get(mta, d->dest);
		/* A route's rate= comes first; remote_rate_per_destination is for remote mail only. */
		uint64_t rate = d->route->rate_interval_us;
		if (!rate && job->rcpts[i].route != STORE_ROUTE_LMTP)
			rate = j->config->remote_rate_interval_us;
		if (d->dest_state)
			d->dest_state->interval_us = rate;
		d->rcpt_index = xcalloc(job->rcpt_count, sizeof *d->rcpt_index);
		for (size_t k = i; k < job->rcpt_count; k++) {
			bool same =
			        !taken[k] && routes[k] == d->route &&
			        (!d->domain[0] || strcasecmp(address_domain(job->rcpts[k].address), d->domain) == 0);
			if (same) {
				taken[k] = true;
				d->rcpt_index[d->rcpt_count++] = k;
			}
		}
		d->next_waiting = list;
		list = d;
		d->next_in_job = j->deliveries;
		j->deliveries = d;
		j->deliveries_left++;
	}
	free(taken);
	free(routes);
	if (j->deliveries_left == 0) {
		job_finish(j);
		return;
	}
	while (list) {
		struct mta_delivery *next = list->next_waiting;
		slot_take(mta, list);
		list = next;
	}
}

static void take_incoming(evutil_socket_t fd, short what, void *arg)
{
	struct mta *mta = arg;
	pthread_mutex_lock(&mta->lock);
	struct delivery_job *jobs = mta->incoming;
	mta->incoming = NULL;
	pthread_mutex_unlock(&mta->lock);
	/* They were pushed newest first: start them oldest first. */
	struct delivery_job *ordered = NULL;
	while (jobs) {
		struct delivery_job *next = jobs->next;
		jobs->next = ordered;
		ordered = jobs;
		jobs = next;
	}
	while (ordered) {
		struct delivery_job *next = ordered->next;
		ordered->next = NULL;
		job_start(mta, ordered);
		ordered = next;
	}
}

void mta_dispatch(struct delivery_job *job, void *arg)
{
	struct mta *mta = arg;
	pthread_mutex_lock(&mta->lock);
	job->next = mta->incoming;
	mta->incoming = job;
	pthread_mutex_unlock(&mta->lock);
	event_active(mta->incoming_event, EV_READ, 0);
}

/* ---- Life ---- */

/* route_tls_needs - what route's verification needs: the system's CA store (*system), or its CA file loaded. */
static bool route_tls_needs(const struct config_route *route, struct tls_client *client, bool *system, char *err,
                            size_t errlen)
{
	if (!route->verify)
		return true;
	if (!route->ca_file) {
		*system = true;
		return true;
	}
	return tls_client_add_ca(client, route->ca_file, err, errlen);
}

/*
 * client_tls - the client contexts config's routes need (and local
 * delivery's, which stays as it was at start): built here, at start and
 * at reload, never per connection. Opportunistic TLS (RFC 7435) checks
 * nothing; routes with verification get the system's CA store or their
 * ca= file, one context per file.
 */
static struct tls_client *client_tls(const struct config *config, const struct config *boot, char *err, size_t errlen)
{
	bool system = false;
	for (size_t i = 0; i < config->transport_count; i++)
		system |= config->transports[i].verify && !config->transports[i].ca_file;
	system |= config->smarthost.verify && !config->smarthost.ca_file;
	system |= boot->local_delivery.verify && !boot->local_delivery.ca_file;
	struct tls_client *client = tls_client_new(system, err, errlen);
	bool ok = client != NULL;
	for (size_t i = 0; ok && i < config->transport_count; i++)
		ok = route_tls_needs(&config->transports[i], client, &system, err, errlen);
	ok = ok && route_tls_needs(&config->smarthost, client, &system, err, errlen) &&
	     route_tls_needs(&boot->local_delivery, client, &system, err, errlen);
	if (!ok) {
		tls_client_unref(client);
		return NULL;
	}
	return client;
}

/* warn_unverified - a route that sends its credentials to a peer whose certificate is not checked, at every load. */
static void warn_unverified(const struct config *config)
{
	char q[LOG_QUOTE_MAX];
	for (size_t i = 0; i <= config->transport_count; i++) {
		const struct config_route *r =
		        i < config->transport_count ? &config->transports[i] : &config->smarthost;
		if (config_route_unverified(r))
			log_warning("event=route_unverified param=%s route=%s reason=\"auth= with verify=no: the "
			            "password goes to whoever answers, unchecked\"",
			            r->domain ? "transport" : "smarthost",
			            log_quote(q, sizeof q, r->text, strlen(r->text)));
	}
}

struct mta *mta_create(struct event_base *base, struct config *config, char *err, size_t errlen)
{
	struct dns *dns = dns_new(base, config->dns_resolver, err, errlen);
	struct tls_client *tls = dns ? client_tls(config, config, err, errlen) : NULL;
	if (!tls) {
		dns_free(dns);
		return NULL;
	}
	warn_unverified(config);
	struct mta *mta = xcalloc(1, sizeof *mta);
	mta->dest_hasher = hash_keyed_new();
	mta->base = base;
	mta->config = config_ref(config);
	mta->boot_config = config_ref(config);
	mta->dns = dns;
	mta->tls = tls;
	mta->ring_tail = &mta->ring;
	mta->rng = (uint64_t)time_wall_ms() | 1;
	pthread_mutex_init(&mta->lock, NULL);
	mta->incoming_event = event_new(base, -1, 0, take_incoming, mta);
	mta->sweep_timer = evtimer_new(base, dest_sweep, mta);
	if (!mta->incoming_event || !mta->sweep_timer)
		fatal("event_new failed");
	struct timeval tv = dest_sweep_interval(mta);
	evtimer_add(mta->sweep_timer, &tv);
	return mta;
}

void mta_run(struct mta *mta, struct store *store, struct store_reader *reader)
{
	mta->store = store;
	mta->reader = reader;
}

void mta_reload(struct mta *mta, struct config *config)
{
	char err[512];
	struct tls_client *tls = client_tls(config, mta->boot_config, err, sizeof err);
	if (!tls) {
		/* The routes and their contexts go together: keep both. */
		log_error("event=reload_failed part=outbound reason=\"%s; keeping the routes in use\"", err);
		return;
	}
	warn_unverified(config);
	tls_client_unref(mta->tls);
	mta->tls = tls;
	config_unref(mta->config);
	mta->config = config_ref(config);
}

/*
 * stop_done - the deliveries under way have finished and the connections
 * have said QUIT, or shutdown_timeout is up: tell the caller, once.
 */
static void stop_done(struct mta *mta)
{
	void (*stopped)(void *) = mta->stopped;
	mta->stopped = NULL;
	if (stopped)
		stopped(mta->stopped_arg);
}

static void stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct mta *mta = arg;
	log_warning("event=outbound_shutdown_timeout sessions=%zu", mta->connections);
	stop_done(mta);
}

void mta_shutdown(struct mta *mta, void (*done)(void *arg), void *arg)
{
	mta->stopping = true;
	mta->stopped = done;
	mta->stopped_arg = arg;
	while (mta_session_evict(mta, NULL))
		;
	log_info("event=outbound_shutdown sessions=%zu waiting=%zu", mta->connections, mta->waiting_count);
	if (mta->connections == 0 && !mta->detached)
		return stop_done(mta);
	struct timeval tv = {(time_t)mta->config->shutdown_timeout, 0};
	mta->stop_timer = evtimer_new(mta->base, stop_timeout, mta);
	if (!mta->stop_timer)
		fatal("evtimer_new failed");
	evtimer_add(mta->stop_timer, &tv);
}

void mta_free(struct mta *mta)
{
	if (!mta)
		return;
	if (mta->stop_timer)
		event_free(mta->stop_timer);
	/* The loop has stopped: drop what is under way. Its recipients are
	 * still 'queued' in the store and go out again after a restart. */
	dns_free(mta->dns);
	while (mta->jobs) {
		struct mta_job *j = mta->jobs;
		mta->jobs = j->next;
		while (j->deliveries) {
			struct mta_delivery *d = j->deliveries;
			j->deliveries = d->next_in_job;
			mta_session_free(d->session);
			free(d->rcpt_index);
			free(d);
		}
		if (j->body7)
			evbuffer_free(j->body7);
		if (j->body != j->job->body)
			evbuffer_free(j->body);
		store_job_free(j->job);
		config_unref(j->config);
		tls_client_unref(j->tls);
		free(j);
	}
	mta_session_free_detached(mta);
	while (mta->incoming) {
		struct delivery_job *next = mta->incoming->next;
		store_job_free(mta->incoming);
		mta->incoming = next;
	}
	for (size_t i = 0; i < MTA_DEST_BUCKETS; i++) {
		while (mta->dests[i]) {
			struct mta_dest *next = mta->dests[i]->next;
			dest_free(mta->dests[i]);
			mta->dests[i] = next;
		}
	}
	event_free(mta->sweep_timer);
	hash_keyed_free(mta->dest_hasher);
	event_free(mta->incoming_event);
	tls_client_unref(mta->tls);
	config_unref(mta->boot_config);
	config_unref(mta->config);
	pthread_mutex_destroy(&mta->lock);
	free(mta);
}
