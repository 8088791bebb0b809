/*
 * store.h - the durable queue: every accepted message and its recipients,
 * users and aliases, in one SQLite database (DATA_DIR/queue.db, WAL mode,
 * synchronous=FULL).
 *
 * Threads: one store thread owns the only write connection. The loop thread
 * hands it messages to commit (store_commit); the delivery workers hand it
 * delivery results (store_delivery_done). Everything waiting is written in
 * ONE transaction (group commit: one fsync for many messages). Completions
 * come back to the loop thread through an event; jobs for new and due
 * recipients go to the delivery dispatcher. Readers (directory lookups,
 * message bodies, the CLI) use their own read-only connections.
 *
 * Nothing above this header includes sqlite3.h.
 */
#ifndef TERN_STORE_H
#define TERN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util_id.h"

struct evbuffer;
struct event_base;

/* ---- Accepting messages (loop thread) ---- */

/* RFC 3461 NOTIFY, as bits; 0: not given (failures and delays are reported). */
#define STORE_NOTIFY_NEVER   (1u << 0)
#define STORE_NOTIFY_SUCCESS (1u << 1)
#define STORE_NOTIFY_FAILURE (1u << 2)
#define STORE_NOTIFY_DELAY   (1u << 3)

/* store_notify_wants - does a recipient with these NOTIFY bits want this kind of report? */
#define STORE_NOTIFY_WANTS(notify, kind) ((notify) == 0 ? (kind) != STORE_NOTIFY_SUCCESS : ((notify) & (kind)) != 0)

/*
 * How a recipient is delivered. Decided once, when the recipient is
 * accepted (or a notice is made), and kept on its row; the store decides
 * again only when the routing configuration changes (store_set_routes).
 * Its name in the database is store_route_name's.
 */
enum store_route {
	STORE_ROUTE_MAILBOX, /* one of tern's own mailboxes (Maildir); mailbox names it */
	STORE_ROUTE_LMTP,    /* a local mailbox, through local_delivery's LMTP server; mailbox names it */
	STORE_ROUTE_MX,      /* another domain, through its MX hosts */
	STORE_ROUTE_RELAY,   /* another domain, through a configured next hop; route_key names the rule */
};
#define STORE_ROUTE_COUNT 4

/* store_route_name - "mailbox", "lmtp", "mx" or "relay". */
const char *store_route_name(enum store_route route);

/* store_route_from_name - the route called name; false if none is. */
bool store_route_from_name(const char *name, enum store_route *out);

/* store_route_is_local - MAILBOX and LMTP: the recipient is one of ours, mailbox says which. */
#define STORE_ROUTE_IS_LOCAL(route) ((route) == STORE_ROUTE_MAILBOX || (route) == STORE_ROUTE_LMTP)

/* Longest route_key: "smarthost", or a transport's domain pattern. */
#define STORE_ROUTE_KEY_MAX 256

struct store_rcpt {
	char *address;          /* as the client gave it, for logs and Delivered-To */
	enum store_route route; /* how it is delivered */
	char *mailbox;          /* MAILBOX, LMTP: the local mailbox it resolved to; else "" */
	char *route_key;        /* RELAY: the rule that chose the next hop; else NULL */
	unsigned notify;        /* STORE_NOTIFY_* */
	char *orcpt;            /* RFC 3461 ORCPT as given ("rfc822;a@b", xtext), or NULL */
};

struct store_message {
	/* Filled by the session. */
	char qid[ID_LEN + 1];
	uint64_t session_id; /* to find the session again, or drop the reply */
	char *sender;        /* "" for the null reverse path */
	bool ret_hdrs;       /* RFC 3461 RET=HDRS: bounces carry the header only */
	char *envid;         /* RFC 3461 ENVID as given (xtext), or NULL */
	struct store_rcpt *rcpts;
	size_t rcpt_count;
	struct evbuffer *body; /* the content, canonical CRLF, trace header first */
	int spill_fd;          /* >= 0: the content is in this file instead */
	bool spooled;          /* the store put the content in a spool file (store_spool.h) */
	uint64_t size;
	int64_t arrival_ms;
	/* A notice to a sender (store_notice.c), not a client's message: the owed notice it settles
	 * (its row goes in the same transaction), the message it is about, and its log line. */
	int64_t notice_id;
	int64_t notice_of;
	char *notice_log;
	/* Filled by the store before the completion runs. */
	bool committed;
	bool no_storage; /* not committed because the disk is full or failing (452 4.3.1, not 451 4.3.0) */
	char error[128];
	struct store_message *next;
};

/* store_commit_done - runs on the loop thread once msg is on disk (or not). */
typedef void store_commit_done(struct store_message *msg, void *arg);

void store_message_free(struct store_message *msg);

/* ---- Delivering (worker threads) ---- */

enum delivery_status {
	DELIVERY_OK,
	DELIVERY_TEMPFAIL,
	DELIVERY_PERMFAIL,
};

/* How a delivered recipient left tern, for RFC 3461 SUCCESS notices. */
enum delivery_success {
	SUCCESS_DELIVERED, /* final delivery: a Maildir, an LMTP server ("delivered") */
	SUCCESS_RELAYED,   /* to an SMTP server that does not take DSN: tern reports "relayed" */
	SUCCESS_PASSED_ON, /* to an SMTP server that took NOTIFY: it reports, not tern (RFC 3461 5.2.2) */
};

struct delivery_rcpt {
	int64_t id;
	char *address;
	enum store_route route;
	char *mailbox;    /* MAILBOX, LMTP: the mailbox; else "" */
	char *route_key;  /* RELAY: the rule; else NULL */
	int64_t attempts; /* before this one */
	unsigned notify;  /* STORE_NOTIFY_* */
	char *orcpt;      /* or NULL */
	bool warned;      /* the sender was told of the delay already */
	enum delivery_status status;
	enum delivery_success success; /* with DELIVERY_OK */
	char error[160];               /* the reason; with DELIVERY_OK the peer's reply, if any */
};

struct delivery_job {
	int64_t msg_id;
	bool maildir; /* every recipient's route is STORE_ROUTE_MAILBOX (the store hands out no mixed job) */
	char qid[ID_LEN + 1];
	char *sender;
	bool ret_hdrs;
	char *envid; /* or NULL */
	int64_t arrival_ms;
	struct evbuffer *body; /* NULL: the worker reads it with store_reader_body */
	struct delivery_rcpt *rcpts;
	size_t rcpt_count;
	struct delivery_job *next;
};

typedef void store_dispatch(struct delivery_job *job, void *arg);

void store_job_free(struct delivery_job *job);

/* ---- The store thread ---- */

/* What the store does with failures, which a reload may change (store_set_policy). */
struct store_policy {
	uint64_t retry_initial_ms;
	uint64_t retry_max_ms;
	uint64_t max_queue_lifetime_ms;
	uint64_t delay_warning_ms;    /* warn the sender of a recipient deferred this long; 0: never */
	bool suppression;             /* hard bounces of remote recipients go on the suppression list */
	uint64_t suppression_ttl_ms;  /* a bounce entry lasts this long after its last bounce; 0: until deleted */
	uint64_t bounce_retention_ms; /* bounced recipients are deleted this long after they bounced; 0: kept */
	uint64_t queue_min_free;      /* bytes to keep free on DATA_DIR's file system (store_space_ok); 0: no check */
};

/*
 * What the store needs of the routing configuration, for the recipients
 * it makes itself (notices to senders) and to route waiting recipients
 * again when that configuration changes. routes is the caller's object (a
 * configuration); the store holds it from store_start or store_set_routes
 * until it is replaced or the store stops, then releases it, on the store
 * thread. remote() may be called on the store thread at any time meanwhile.
 */
struct store_router {
	/*
	 * The route of a domain that is not local (lower case): STORE_ROUTE_MX
	 * or STORE_ROUTE_RELAY, with the configuration rule that chose it in
	 * key ("" for the default, the domain's own MX hosts).
	 */
	enum store_route (*remote)(const void *routes, const char *domain, char *key, size_t keysize);
	void (*release)(void *routes);
};

struct store_settings {
	const char *data_dir;
	size_t max_inflight; /* messages handed to delivery at once */
	bool local_lmtp;     /* local mailboxes are reached through LMTP (local_delivery), not Maildir */
	const struct store_router *router;
	void *routes; /* the store's from store_start on (released by it, even when the start fails) */
	/* For bounces: who we are and where their recipients go. The strings
	 * must stay as they are until store_stop. */
	const char *hostname;
	char *const *local_domains; /* lower-cased */
	size_t local_domain_count;
	const char *postmaster;
	const char *recipient_delimiter;
	struct store_policy policy;
};

struct store;

/*
 * store_start - open (creating or migrating) the database, recover what a
 * crash left behind, start the store thread. Completions run on base.
 * Returns NULL with a message in err on failure.
 */
struct store *store_start(const struct store_settings *settings, struct event_base *base, store_commit_done *done,
                          void *done_arg, store_dispatch *dispatch, void *dispatch_arg, char *err, size_t errlen);

/* store_commit - queue msg for the next group commit; done runs later. */
void store_commit(struct store *store, struct store_message *msg);

/* store_delivery_done - any thread: record the outcome of every recipient of job (takes it). */
void store_delivery_done(struct store *store, struct delivery_job *job);

/*
 * store_user_add_scram - any thread: at the next turn, give user address
 * (lower-cased) the SCRAM-SHA-256 secret scram, made from the password
 * whose crypt(3) hash is password_hash, unless the user has one by then or
 * the password has changed. Best effort: a failure is logged, and the
 * user's next login makes the secret again.
 */
void store_user_add_scram(struct store *store, const char *address, const char *password_hash, const char *scram);

/*
 * store_set_routes - any thread: the routing configuration is now routes
 * (taken over, as in store_settings). When changed says it differs from
 * the last, the store routes every waiting recipient in another domain
 * again at its next turn (event=rerouted), so that queued mail follows a
 * new smarthost or transport as new mail does.
 */
void store_set_routes(struct store *store, void *routes, bool changed);

/*
 * store_space_ok - loop thread, at MAIL: is there room for a message of
 * size octets (0: not declared)? No when a write of the queue failed for
 * lack of space, or with an I/O error, and neither a message has been
 * written since nor has space come back (STORE_SPACE_REGAIN more free, or
 * STORE_SPACE_RETRY_MS passed, in store_thread.c), or when the free space
 * (measured by the store thread at most a second ago) minus twice size
 * (a large message is on disk twice for a moment: the spill file and its
 * spool copy) is under policy.queue_min_free. Always yes when that is 0.
 */
bool store_space_ok(struct store *store, uint64_t size);

/* store_set_policy - loop thread: the store uses policy from its next turn on. */
void store_set_policy(struct store *store, const struct store_policy *policy);

/* store_stop - write what is waiting, stop the thread, close the database. */
void store_stop(struct store *store);

/* ---- Readers (any thread, one reader per thread) ---- */

struct store_reader;

struct store_reader *store_reader_open(const char *data_dir, char *err, size_t errlen);
void store_reader_close(struct store_reader *reader);

/* store_reader_body - append message msg_id's content to out. */
bool store_reader_body(struct store_reader *reader, int64_t msg_id, struct evbuffer *out);

/*
 * Directory: where mail for a local address goes. address is lower-cased
 * "local@domain" of a local domain. Aliases are expanded (to a depth of
 * STORE_ALIAS_DEPTH), then users; with a delimiter, "user+tag" falls back to
 * "user". postmaster@ any local domain falls back to postmaster_mailbox.
 * Returns the number of mailboxes written to out (at most max), 0 when the
 * address is unknown, -1 on a database error.
 */
#define STORE_ALIAS_DEPTH 8
#define STORE_ADDRESS_MAX 320
int store_dir_resolve(struct store_reader *reader, const char *address, const char *delimiter,
                      const char *postmaster_mailbox, char (*out)[STORE_ADDRESS_MAX], int max);

/* What AUTH needs of a user: "" where there is none. */
#define STORE_SECRET_MAX 256
struct store_user_secrets {
	char password[STORE_SECRET_MAX]; /* crypt(3) hash */
	char scram[STORE_SECRET_MAX];    /* RFC 5803 SCRAM-SHA-256 secret */
	char cram[STORE_SECRET_MAX];     /* CRAM-MD5 secret */
};

/* store_dir_secrets - 1 and the secrets of user address, 0 if no such user, -1 on error. */
int store_dir_secrets(struct store_reader *reader, const char *address, struct store_user_secrets *out);

/*
 * store_dir_may_send_as - may user (an address, lower-cased) send as sender
 * (lower-cased)? Yes when mail to sender reaches user's mailbox (their own
 * address, with a +tag, or an alias leading to them), or when sender
 * matches one of the user's sender patterns (an address, or "@domain").
 * 1 yes, 0 no, -1 on a database error.
 */
int store_dir_may_send_as(struct store_reader *reader, const char *user, const char *sender, const char *delimiter);

/*
 * store_dir_suppressed - is address (as the client wrote it; compared
 * without regard to ASCII case) on the suppression list? Entries added by a
 * bounce count until ttl_ms after that bounce (0: until deleted); entries
 * an operator added count until deleted. 1 yes, 0 no, -1 on a database error.
 */
int store_dir_suppressed(struct store_reader *reader, const char *address, uint64_t ttl_ms, int64_t now_ms);

#endif
