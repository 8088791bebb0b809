/*
 * smtpd_server.c - listeners, connection limits, the session table, and
 * shutdown.
 *
 * Limits are checked at accept: past max_connections or
 * max_connections_per_ip the client gets one 421 line and the connection is
 * closed, before any session memory is spent. When accept fails for lack of
 * descriptors, accepting pauses for a second instead of spinning. A
 * client of the local submission socket counts by its uid, not as one
 * address shared by every local user (smtpd_local.c).
 *
 * Sessions live in a slot table; a session id is (generation << 32 | slot),
 * so replies from the store for a session that has gone are dropped.
 */
#include "smtpd/smtpd.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/auth_pool.h"
#include "net/net_conn.h"
#include "net/net_linger.h"
#include "net/net_tls.h"
#include "smtp/smtp_limits.h"
#include "smtp/smtp_reply.h"
#include "smtpd/smtpd_limits.h"
#include "smtpd/smtpd_local.h"
#include "smtpd/smtpd_lookup.h"
#include "smtpd/smtpd_session.h"
#include "util/util_hash.h"
#include "util/util_log.h"
#include "util/util_str.h"
#include "util/util_time.h"

#define SMTPD_BACKLOG         1024
#define SMTPD_PEER_BUCKETS    4096
#define SMTPD_ACCEPT_PAUSE_MS 1000
/* Password checks are CPU work: one thread per core of a small server. */
#define SMTPD_AUTH_THREADS 2
#define SMTPD_PRUNE_S      600
/* Sockets of ended sessions lingering at once (net_linger.c), at most: each
 * holds a descriptor beyond max_connections for a couple of seconds, and a
 * flood of clients that are told 554 or 421 and do not close must not run
 * the process out of them. Past it the oldest is closed at once. */
#define SMTPD_LINGER_MAX 1024

struct smtpd_peer_count {
	unsigned char key[16];
	uint64_t count;
	struct smtpd_peer_count *next;
};

struct smtpd_listener {
	struct smtpd *smtpd;
	struct evconnlistener *listener;
	enum listener_kind kind;
	char text[LOG_QUOTE_MAX]; /* for logs: the address, or the socket's path quoted */
};

struct smtpd {
	struct event_base *base;
	struct config *config;
	struct smtpd_host host; /* what sessions use: base, directory, limits, linger, certificates, calls below */
	struct store *store;
	struct auth_pool *auth_pool;
	struct pool *lookups;
	char *data_dir; /* for the lookup threads' readers */
	struct event *prune_timer;
	struct smtpd_listener *listeners;
	size_t listener_count;
	struct local_socket local; /* the local submission socket; path "" if none */
	struct event *accept_pause;
	struct event *shutdown_timer;
	void (*stopped)(void *arg); /* smtpd_shutdown's done: the last session has gone */
	void *stopped_arg;

	struct smtpd_session **slots;
	uint32_t *generations;
	uint32_t *free_slots;
	size_t free_count;
	size_t slot_cap;
	uint64_t session_count;

	struct smtpd_peer_count *peers[SMTPD_PEER_BUCKETS];
	struct hash_keyed *peer_hasher; /* client addresses are chosen by clients (a /64 holds many) */
};

void smtpd_set_tls(struct smtpd *smtpd, struct tls_server *tls)
{
	tls_server_unref(smtpd->host.tls);
	smtpd->host.tls = tls;
}

/* ---- What sessions reach through their host (smtpd_session.h) ---- */

static void host_commit(void *ctx, struct store_message *msg)
{
	struct smtpd *smtpd = ctx;
	store_commit(smtpd->store, msg);
}

static void host_check_password(void *ctx, uint64_t ticket, const char *password, const char *hash, uint64_t cache_ms,
                                bool make_scram)
{
	struct smtpd *smtpd = ctx;
	auth_pool_check(smtpd->auth_pool, ticket, password, hash, cache_ms, make_scram);
}

static void host_add_scram(void *ctx, const char *address, const char *password_hash, const char *scram)
{
	struct smtpd *smtpd = ctx;
	store_user_add_scram(smtpd->store, address, password_hash, scram);
}

static struct smtpd_session *slot_find(struct smtpd *smtpd, uint64_t id);

static struct smtpd_session *host_find(void *ctx, uint64_t id)
{
	return slot_find(ctx, id);
}

static void host_lookup(void *ctx, struct smtpd_lookup *lookup)
{
	struct smtpd *smtpd = ctx;
	smtpd_lookups_submit(smtpd->lookups, lookup, host_find, smtpd);
}

static bool host_space_ok(void *ctx, uint64_t size)
{
	struct smtpd *smtpd = ctx;
	return !smtpd->store || store_space_ok(smtpd->store, size);
}

static void host_gone(void *ctx, uint64_t id, const unsigned char peer_key[16]);

/* ---- Per-address counts ---- */

void smtpd_peer_key(const struct sockaddr *peer, unsigned char key[16])
{
	memset(key, 0, 16);
	if (peer->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)peer;
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &in->sin_addr, 4);
	} else if (peer->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)peer;
		memcpy(key, &in6->sin6_addr, 16);
	}
}

static struct smtpd_peer_count **peer_slot(struct smtpd *smtpd, const unsigned char key[16])
{
	uint64_t h = hash_keyed(smtpd->peer_hasher, key, 16);
	struct smtpd_peer_count **p = &smtpd->peers[h % SMTPD_PEER_BUCKETS];
	while (*p && memcmp((*p)->key, key, 16) != 0)
		p = &(*p)->next;
	return p;
}

static uint64_t peer_count(struct smtpd *smtpd, const unsigned char key[16])
{
	struct smtpd_peer_count **p = peer_slot(smtpd, key);
	return *p ? (*p)->count : 0;
}

static void peer_add(struct smtpd *smtpd, const unsigned char key[16], int delta)
{
	struct smtpd_peer_count **p = peer_slot(smtpd, key);
	if (!*p) {
		if (delta < 0)
			return;
		*p = xcalloc(1, sizeof **p);
		memcpy((*p)->key, key, 16);
	}
	(*p)->count += (uint64_t)(int64_t)delta;
	if ((*p)->count == 0) {
		struct smtpd_peer_count *gone = *p;
		*p = gone->next;
		free(gone);
	}
}

/* ---- Session table ---- */

static uint64_t slot_take(struct smtpd *smtpd)
{
	if (smtpd->free_count == 0) {
		size_t old = smtpd->slot_cap, cap = old ? old * 2 : 256;
		smtpd->slots = xrealloc(smtpd->slots, cap * sizeof *smtpd->slots);
		smtpd->generations = xrealloc(smtpd->generations, cap * sizeof *smtpd->generations);
		smtpd->free_slots = xrealloc(smtpd->free_slots, cap * sizeof *smtpd->free_slots);
		for (size_t i = old; i < cap; i++) {
			smtpd->slots[i] = NULL;
			smtpd->generations[i] = 1;
			smtpd->free_slots[smtpd->free_count++] = (uint32_t)(cap - 1 - (i - old));
		}
		smtpd->slot_cap = cap;
	}
	uint32_t slot = smtpd->free_slots[--smtpd->free_count];
	return ((uint64_t)smtpd->generations[slot] << 32) | slot;
}

static struct smtpd_session *slot_find(struct smtpd *smtpd, uint64_t id)
{
	uint32_t slot = (uint32_t)id;
	if (slot >= smtpd->slot_cap || smtpd->generations[slot] != (uint32_t)(id >> 32))
		return NULL;
	return smtpd->slots[slot];
}

static void host_gone(void *ctx, uint64_t id, const unsigned char peer_key[16])
{
	struct smtpd *smtpd = ctx;
	uint32_t slot = (uint32_t)id;
	if (slot_find(smtpd, id) == NULL)
		fatal("session %llx is not in the table", (unsigned long long)id);
	smtpd->slots[slot] = NULL;
	smtpd->generations[slot]++;
	smtpd->free_slots[smtpd->free_count++] = slot;
	peer_add(smtpd, peer_key, -1);
	smtpd->session_count--;
	if (smtpd->host.shutting_down && smtpd->session_count == 0)
		smtpd->stopped(smtpd->stopped_arg);
}

/* ---- Accepting ---- */

/* refuse_connection - one 421 line, best effort, then close: no session is made. */
static void refuse_connection(int fd, enum smtp_reply_id id)
{
	char line[SMTP_REPLY_LINE_MAX];
	size_t n = smtp_reply_format(line, sizeof line, id, NULL);
	if (n > 0 && send(fd, line, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("event=refuse_write_failed error=\"%s\"", strerror(errno));
	close(fd);
}

static void smtpd_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *peer, int peer_len,
                         void *arg)
{
	struct smtpd_listener *l = arg;
	struct smtpd *smtpd = l->smtpd;
	struct config *config = smtpd->config;
	struct sockaddr_in6 local;
	if (l->kind == LISTENER_LOCAL) {
		/* A local client is known by its uid, kept as an address (smtpd_local.c). */
		if (!local_peer_address(fd, &local)) {
			close(fd);
			return;
		}
		peer = (struct sockaddr *)&local;
		peer_len = (int)sizeof local;
	}
	unsigned char key[16];
	smtpd_peer_key(peer, key);
	if (smtpd->host.shutting_down) {
		refuse_connection(fd, SMTP_R_SHUTDOWN);
		return;
	}
	if (smtpd->session_count >= config->max_connections) {
		log_warning("event=refused reason=max_connections limit=%llu",
		            (unsigned long long)config->max_connections);
		refuse_connection(fd, SMTP_R_TOO_MANY_CONNECTIONS);
		return;
	}
	if (peer_count(smtpd, key) >= config->max_connections_per_ip) {
		log_warning("event=refused reason=max_connections_per_ip limit=%llu",
		            (unsigned long long)config->max_connections_per_ip);
		refuse_connection(fd, SMTP_R_TOO_MANY_FROM_ADDRESS);
		return;
	}
	/* Replies are small and each waits for the client: send them at once
	 * (without this a reply after a TLS handshake waits for a delayed ACK). */
	int one = 1;
	if (l->kind != LISTENER_LOCAL)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	uint64_t id = slot_take(smtpd);
	smtpd->session_count++;
	peer_add(smtpd, key, 1);
	/* A new session only greets; it cannot end before it is in its slot. */
	struct net_conn *conn = l->kind == LISTENER_SUBMISSIONS ? net_conn_accept_tls(smtpd->base, fd, smtpd->host.tls)
	                                                        : net_conn_accept(smtpd->base, fd);
	smtpd->slots[(uint32_t)id] =
	        smtpd_session_new(&smtpd->host, id, config, conn, peer, (socklen_t)peer_len, l->kind);
}

static void smtpd_resume_accept(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd *smtpd = arg;
	if (smtpd->host.shutting_down)
		return;
	for (size_t i = 0; i < smtpd->listener_count; i++)
		evconnlistener_enable(smtpd->listeners[i].listener);
}

static void smtpd_accept_error(struct evconnlistener *listener, void *arg)
{
	struct smtpd_listener *l = arg;
	struct smtpd *smtpd = l->smtpd;
	int err = EVUTIL_SOCKET_ERROR();
	log_error("event=accept_failed listener=%s error=\"%s\"", l->text, strerror(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/* Out of descriptors or memory: pause rather than spin on accept. */
		for (size_t i = 0; i < smtpd->listener_count; i++)
			evconnlistener_disable(smtpd->listeners[i].listener);
		struct timeval tv = {SMTPD_ACCEPT_PAUSE_MS / 1000, (SMTPD_ACCEPT_PAUSE_MS % 1000) * 1000};
		evtimer_add(smtpd->accept_pause, &tv);
	}
}

/* ---- Listeners ---- */

static int bind_listener(const struct config_listener *cl)
{
	int family = cl->addr.ss_family;
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	/* An IPv6 listener takes IPv6 only, so "[::]:25" and "0.0.0.0:25" can both be listed. */
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (const struct sockaddr *)&cl->addr, cl->addr_len) != 0 || listen(fd, SMTPD_BACKLOG) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* listener_add - accept on the bound socket fd (not yet: smtpd_run enables it). */
static void listener_add(struct smtpd *smtpd, int fd, enum listener_kind kind, const char *text)
{
	struct smtpd_listener *l = &smtpd->listeners[smtpd->listener_count++];
	l->smtpd = smtpd;
	l->kind = kind;
	str_copy(l->text, sizeof l->text, text);
	l->listener = evconnlistener_new(smtpd->base, smtpd_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_DISABLED,
	                                 SMTPD_BACKLOG, fd);
	if (!l->listener)
		fatal("evconnlistener_new failed for %s", text);
	evconnlistener_set_error_cb(l->listener, smtpd_accept_error);
}

/* listen_local - the local submission socket, if there is one; false after logging why it cannot be bound. */
static bool listen_local(struct smtpd *smtpd, const struct config *config)
{
	char *path = smtpd->local.path, err[512], q[LOG_QUOTE_MAX], qe[LOG_QUOTE_MAX];
	int on = config_sendmail_socket(config, path, sizeof smtpd->local.path);
	if (on < 0)
		log_warning("event=sendmail_socket_off reason=\"%s/sendmail.sock would be longer than %d bytes; set "
		            "sendmail_socket\"",
		            config->data_dir, CONFIG_SOCKET_PATH_MAX);
	if (on <= 0)
		return true;
	log_quote(q, sizeof q, path, strlen(path));
	int fd = local_listen(&smtpd->local, err, sizeof err);
	if (fd < 0) {
		log_error("event=listen_failed listener=%s error=%s", q, log_quote(qe, sizeof qe, err, strlen(err)));
		return false;
	}
	listener_add(smtpd, fd, LISTENER_LOCAL, q);
	return true;
}

struct smtpd *smtpd_create(struct event_base *base, struct config *config)
{
	struct smtpd *smtpd = xcalloc(1, sizeof *smtpd);
	smtpd->peer_hasher = hash_keyed_new();
	smtpd->base = base;
	smtpd->host = (struct smtpd_host){
	        .base = base,
	        .ctx = smtpd,
	        .commit = host_commit,
	        .space_ok = host_space_ok,
	        .lookup = host_lookup,
	        .check_password = host_check_password,
	        .add_scram = host_add_scram,
	        .gone = host_gone,
	};
	smtpd->config = config_ref(config);
	smtpd->accept_pause = evtimer_new(base, smtpd_resume_accept, smtpd);
	if (!smtpd->accept_pause)
		fatal("evtimer_new failed");
	smtpd->host.linger = net_linger_new(base, SMTPD_LINGER_MAX);
	smtpd->listeners = xcalloc(config->listener_count + 1, sizeof *smtpd->listeners);
	for (size_t i = 0; i < config->listener_count; i++) {
		const struct config_listener *cl = &config->listeners[i];
		int fd = bind_listener(cl);
		if (fd < 0) {
			log_error("event=listen_failed listener=%s error=\"%s\"", cl->text, strerror(errno));
			smtpd_free(smtpd);
			return NULL;
		}
		listener_add(smtpd, fd, cl->kind, cl->text);
	}
	if (!listen_local(smtpd, config)) {
		smtpd_free(smtpd);
		return NULL;
	}
	return smtpd;
}

/* auth_checked - auth_pool_done: the ticket is the session id. */
static void auth_checked(void *arg, uint64_t ticket, const struct auth_pool_result *result)
{
	struct smtpd *smtpd = arg;
	struct smtpd_session *s = slot_find(smtpd, ticket);
	if (s)
		smtpd_session_auth_checked(s, result);
}

static void prune_limits(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd *smtpd = arg;
	size_t left = limits_prune(smtpd->host.limits, time_mono_ms());
	log_debug("event=limits_pruned entries=%zu", left);
}

void smtpd_run(struct smtpd *smtpd, struct store *store)
{
	smtpd->auth_pool = auth_pool_start(smtpd->base, SMTPD_AUTH_THREADS, auth_checked, smtpd);
	smtpd->data_dir = str_dup(smtpd->config->data_dir);
	smtpd->lookups = smtpd_lookups_start(smtpd->base, smtpd->data_dir);
	smtpd->host.limits = limits_new();
	smtpd->prune_timer = event_new(smtpd->base, -1, EV_PERSIST, prune_limits, smtpd);
	if (!smtpd->prune_timer)
		fatal("event_new failed");
	struct timeval tv = {SMTPD_PRUNE_S, 0};
	event_add(smtpd->prune_timer, &tv);
	smtpd->store = store;
	for (size_t i = 0; i < smtpd->listener_count; i++) {
		evconnlistener_enable(smtpd->listeners[i].listener);
		static const char *const kinds[] = {"mx", "submission", "submissions", "local"};
		log_info("event=listening listener=%s kind=%s", smtpd->listeners[i].text,
		         kinds[smtpd->listeners[i].kind]);
	}
}

void smtpd_commit_done(struct store_message *msg, void *arg)
{
	struct smtpd *smtpd = arg;
	struct smtpd_session *s = slot_find(smtpd, msg->session_id);
	if (!s) {
		/* The client left before the reply: the message is queued all the same. */
		log_info("event=reply_dropped qid=%s committed=%s reason=session_gone", msg->qid,
		         msg->committed ? "yes" : "no");
		store_message_free(msg);
		return;
	}
	smtpd_session_commit_done(s, msg);
}

void smtpd_reload(struct smtpd *smtpd, struct config *config)
{
	config_unref(smtpd->config);
	smtpd->config = config_ref(config);
}

/* listeners_close - stop listening; the local socket's file goes too, so sendmail says the server is down. */
static void listeners_close(struct smtpd *smtpd)
{
	for (size_t i = 0; i < smtpd->listener_count; i++) {
		struct smtpd_listener *l = &smtpd->listeners[i];
		if (l->kind == LISTENER_LOCAL)
			local_unlink(&smtpd->local);
		evconnlistener_free(l->listener);
	}
	smtpd->listener_count = 0;
}

static void smtpd_force_close(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd *smtpd = arg;
	log_warning("event=shutdown_timeout sessions=%llu", (unsigned long long)smtpd->session_count);
	for (size_t i = 0; i < smtpd->slot_cap; i++)
		if (smtpd->slots[i])
			smtpd_session_shutdown(smtpd->slots[i], true);
}

void smtpd_shutdown(struct smtpd *smtpd, void (*done)(void *arg), void *arg)
{
	if (smtpd->host.shutting_down)
		return;
	smtpd->host.shutting_down = true;
	smtpd->stopped = done;
	smtpd->stopped_arg = arg;
	listeners_close(smtpd);
	/* Lingering sockets are not waited for: smtpd_free closes them. */
	log_info("event=shutdown sessions=%llu lingering=%zu", (unsigned long long)smtpd->session_count,
	         net_linger_count(smtpd->host.linger));
	if (smtpd->session_count == 0) {
		done(arg);
		return;
	}
	struct timeval tv = {(time_t)smtpd->config->shutdown_timeout, 0};
	smtpd->shutdown_timer = evtimer_new(smtpd->base, smtpd_force_close, smtpd);
	if (!smtpd->shutdown_timer)
		fatal("evtimer_new failed");
	evtimer_add(smtpd->shutdown_timer, &tv);
	for (size_t i = 0; i < smtpd->slot_cap; i++)
		if (smtpd->slots[i])
			smtpd_session_shutdown(smtpd->slots[i], false);
}

void smtpd_free(struct smtpd *smtpd)
{
	if (!smtpd)
		return;
	listeners_close(smtpd);
	for (size_t b = 0; b < SMTPD_PEER_BUCKETS; b++) {
		while (smtpd->peers[b]) {
			struct smtpd_peer_count *next = smtpd->peers[b]->next;
			free(smtpd->peers[b]);
			smtpd->peers[b] = next;
		}
	}
	if (smtpd->shutdown_timer)
		event_free(smtpd->shutdown_timer);
	event_free(smtpd->accept_pause);
	net_linger_free(smtpd->host.linger);
	hash_keyed_free(smtpd->peer_hasher);
	free(smtpd->listeners);
	free(smtpd->slots);
	free(smtpd->generations);
	free(smtpd->free_slots);
	auth_pool_stop(smtpd->auth_pool);
	smtpd_lookups_stop(smtpd->lookups);
	free(smtpd->data_dir);
	limits_free(smtpd->host.limits);
	if (smtpd->prune_timer)
		event_free(smtpd->prune_timer);
	tls_server_unref(smtpd->host.tls);
	config_unref(smtpd->config);
	free(smtpd);
}
