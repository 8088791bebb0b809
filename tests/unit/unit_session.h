/*
 * unit_session.h - a server session (src/smtpd) with no socket: it runs
 * over an in-memory pair (net_conn_pair) and a small in-process host
 * (struct smtpd_host) instead of the server. Used by the session unit
 * tests and by the whole-session fuzzer (fuzz/fuzz_session.c).
 *
 * What is real: the session, its commands and transactions, the
 * connection layer, the directory (a read-only SQLite connection on a
 * scratch data directory made here, with the users and the alias below)
 * and the AUTH failure counts. What is in-process: the store commit (the
 * message is taken as committed, answered from the loop) and the password
 * check ("secret" is every user's password, answered from the loop).
 */
#ifndef TERN_UNIT_SESSION_H
#define TERN_UNIT_SESSION_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth_pool.h"
#include "config/config.h"
#include "net/net_conn.h"
#include "smtpd/smtpd_limits.h"
#include "smtpd/smtpd_lookup.h"
#include "smtpd/smtpd_session.h"
#include "store/store.h"
#include "store/store_admin.h"
#include "util/util_str.h"

/* Loop turns at most, to let a session go quiet (a few per exchange). */
#define UNIT_SESSION_TURNS 20000
/* What is kept of the session's replies; more is dropped. */
#define UNIT_SESSION_REPLIES_MAX (1024 * 1024)
#define UNIT_SESSION_PASSWORD    "secret"

struct unit_session {
	struct event_base *base;
	char root[256], data_dir[300];
	struct config *config;
	struct smtpd_host host;
	struct store_reader *reader;
	/* One session at a time. */
	struct smtpd_session *session; /* NULL once it has gone */
	struct bufferevent *peer;      /* the client's end of the pair */
	struct evbuffer *replies;      /* what the session wrote */
	struct event *later;           /* answers of the host's calls, from the loop */
	struct store_message *commit;  /* committed, not yet answered */
	struct smtpd_lookup *lookup;   /* asked, not yet answered */
	bool check_pending;
	bool check_ok;
	unsigned commits;
	unsigned lookups;
	unsigned checks;
	unsigned scrams;
};

static inline void unit_session_later(evutil_socket_t fd, short what, void *arg)
{
	struct unit_session *u = arg;
	if (u->commit) {
		struct store_message *msg = u->commit;
		u->commit = NULL;
		msg->committed = true;
		if (u->session)
			smtpd_session_commit_done(u->session, msg);
		else
			store_message_free(msg);
	}
	if (u->lookup) {
		/* The directory is asked here, on the loop: the answer still comes after the call, as from the threads.
		 */
		struct smtpd_lookup *lookup = u->lookup;
		u->lookup = NULL;
		lookup->query(lookup, u->reader);
		smtpd_lookup_finish(u->session, lookup);
	}
	if (u->check_pending) {
		u->check_pending = false;
		struct auth_pool_result result = {.ok = u->check_ok};
		if (u->session)
			smtpd_session_auth_checked(u->session, &result);
	}
}

static inline void unit_host_commit(void *ctx, struct store_message *msg)
{
	struct unit_session *u = ctx;
	u->commit = msg;
	u->commits++;
	event_active(u->later, EV_TIMEOUT, 0);
}

static inline void unit_host_check_password(void *ctx, uint64_t ticket, const char *password, const char *hash,
                                            uint64_t cache_ms, bool make_scram)
{
	struct unit_session *u = ctx;
	u->check_pending = true;
	u->check_ok = strcmp(password, UNIT_SESSION_PASSWORD) == 0;
	u->checks++;
	event_active(u->later, EV_TIMEOUT, 0);
}

static inline void unit_host_lookup(void *ctx, struct smtpd_lookup *lookup)
{
	struct unit_session *u = ctx;
	u->lookup = lookup;
	u->lookups++;
	event_active(u->later, EV_TIMEOUT, 0);
}

static inline void unit_host_add_scram(void *ctx, const char *address, const char *password_hash, const char *scram)
{
	struct unit_session *u = ctx;
	u->scrams++;
}

static inline void unit_host_gone(void *ctx, uint64_t id, const unsigned char peer_key[16])
{
	struct unit_session *u = ctx;
	u->session = NULL;
}

/* unit_session_directory - the users alice and bob, and the alias team, in a new queue database. */
static inline bool unit_session_directory(struct unit_session *u)
{
	char err[256] = "";
	struct store_admin *admin = store_admin_open(u->data_dir, err, sizeof err);
	if (!admin)
		return false;
	bool ok = store_user_add(admin, "alice@localhost", "$6$salt$hash", err, sizeof err) &&
	          store_user_add(admin, "bob@localhost", NULL, err, sizeof err) &&
	          store_alias_set(admin, "team@localhost", "alice@localhost,bob@localhost", err, sizeof err);
	store_admin_close(admin);
	return ok;
}

/* unit_session_config - the defaults, but for the data directory, AUTH without TLS on loopback and no delay. */
static inline struct config *unit_session_config(const struct unit_session *u)
{
	char path[400], text[800];
	str_format(path, sizeof path, "%s/tern.conf", u->root);
	str_format(text, sizeof text,
	           "hostname = mx.test\ndata_dir = %s\nlocal_domains = localhost\n"
	           "auth_without_tls = loopback\nauth_fail_delay = 0\nsendmail_socket = none\n",
	           u->data_dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return NULL;
	fputs(text, f);
	fclose(f);
	struct config *config = config_load(path, stderr);
	unlink(path);
	return config;
}

/* unit_session_open - the scratch data directory, configuration and directory; false if any fails. */
static inline bool unit_session_open(struct unit_session *u, const char *name)
{
	memset(u, 0, sizeof *u);
	const char *tmp = getenv("TMPDIR");
	str_format(u->root, sizeof u->root, "%s/tern-%s-XXXXXX", tmp && tmp[0] ? tmp : "/tmp", name);
	if (!mkdtemp(u->root))
		return false;
	str_format(u->data_dir, sizeof u->data_dir, "%s/var", u->root);
	char spill[400], err[256];
	str_format(spill, sizeof spill, "%s/tmp", u->data_dir);
	if (!unit_session_directory(u) || mkdir(spill, 0700) != 0)
		return false;
	u->config = unit_session_config(u);
	u->reader = store_reader_open(u->data_dir, err, sizeof err);
	if (!u->config || !u->reader)
		return false;
	u->base = event_base_new();
	u->later = event_new(u->base, -1, 0, unit_session_later, u);
	u->replies = evbuffer_new();
	u->host = (struct smtpd_host){
	        .base = u->base,
	        .ctx = u,
	        .commit = unit_host_commit,
	        .lookup = unit_host_lookup,
	        .check_password = unit_host_check_password,
	        .add_scram = unit_host_add_scram,
	        .gone = unit_host_gone,
	};
	return true;
}

static inline void unit_session_peer_read(struct bufferevent *bev, void *arg)
{
	struct unit_session *u = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	if (evbuffer_get_length(u->replies) < UNIT_SESSION_REPLIES_MAX)
		evbuffer_add_buffer(u->replies, in);
	else
		evbuffer_drain(in, evbuffer_get_length(in));
}

/* unit_session_run - turn the loop until nothing is left to do (bounded). */
static inline void unit_session_run(struct unit_session *u)
{
	int quiet = 0;
	for (int i = 0; i < UNIT_SESSION_TURNS && quiet < 2; i++) {
		event_base_loop(u->base, EVLOOP_NONBLOCK);
		quiet = event_base_get_num_events(u->base, EVENT_BASE_COUNT_ACTIVE) == 0 ? quiet + 1 : 0;
	}
}

/* unit_session_start - a new session of kind from 127.0.0.1, greeted. */
static inline void unit_session_start(struct unit_session *u, enum listener_kind kind)
{
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	evbuffer_drain(u->replies, evbuffer_get_length(u->replies));
	u->host.limits = limits_new();
	struct net_conn *conn = net_conn_pair(u->base, &u->peer);
	bufferevent_setcb(u->peer, unit_session_peer_read, NULL, NULL, u);
	bufferevent_enable(u->peer, EV_READ | EV_WRITE);
	u->session = smtpd_session_new(&u->host, 1, u->config, conn, (const struct sockaddr *)&peer, sizeof peer, kind);
	unit_session_run(u);
}

/* unit_session_send - the client sends bytes; the session answers. */
static inline void unit_session_send(struct unit_session *u, const void *bytes, size_t len)
{
	bufferevent_write(u->peer, bytes, len);
	unit_session_run(u);
}

/* unit_session_take - the replies so far as a string (malloc'd), and forget them. */
static inline char *unit_session_take(struct unit_session *u)
{
	size_t n = evbuffer_get_length(u->replies);
	char *s = malloc(n + 1);
	if (!s)
		abort();
	evbuffer_remove(u->replies, s, n);
	s[n] = '\0';
	return s;
}

/* unit_session_client_close - the client closes its end (EOF for the session). */
static inline void unit_session_client_close(struct unit_session *u)
{
	bufferevent_flush(u->peer, EV_WRITE, BEV_FINISHED);
	unit_session_run(u);
}

/* unit_session_stop - end the session if it is still there (421), and free the client's end. */
static inline void unit_session_stop(struct unit_session *u)
{
	if (u->session) {
		smtpd_session_shutdown(u->session, true);
		unit_session_run(u);
	}
	if (u->session)
		unit_session_client_close(u);
	bufferevent_free(u->peer);
	u->peer = NULL;
	unit_session_run(u);
	limits_free(u->host.limits);
	u->host.limits = NULL;
}

/* unit_session_close - everything, the scratch directory too. */
static inline void unit_session_close(struct unit_session *u)
{
	static const char *const files[] = {"queue.db", "queue.db-wal", "queue.db-shm"};
	char path[400];
	if (u->later)
		event_free(u->later);
	if (u->replies)
		evbuffer_free(u->replies);
	if (u->base)
		event_base_free(u->base);
	store_reader_close(u->reader);
	config_unref(u->config);
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		str_format(path, sizeof path, "%s/%s", u->data_dir, files[i]);
		unlink(path);
	}
	str_format(path, sizeof path, "%s/tmp", u->data_dir);
	rmdir(path);
	str_format(path, sizeof path, "%s/spool", u->data_dir);
	rmdir(path);
	rmdir(u->data_dir);
	rmdir(u->root);
}

#endif
