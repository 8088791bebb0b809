/*
 * cli_serve.c - `tern serve`: put the parts together and run.
 *
 * Order matters: listeners are bound first (ports below 1024 need root;
 * the local submission socket lives in the data directory, which is made
 * for it), then root is given up, then the data directory, the store thread, the
 * delivery workers and the directory lookup threads are opened as the unprivileged
 * user. Shutdown runs the other way: sessions finish, delivery workers
 * finish the file they are writing, the store writes what is left.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_serve.h"
#include "config/config.h"
#include "mda/mda.h"
#include "mta/mta.h"
#include "net/net_looplag.h"
#include "net/net_tls.h"
#include "smtpd/smtpd.h"
#include "smtpd/smtpd_route.h"
#include "store/store.h"
#include "store/store_admin.h"
#include "util/util_log.h"
#include "util/util_str.h"

#define SERVE_MAX_INFLIGHT 1024

struct serve {
	struct config *config;
	struct event_base *base;
	struct smtpd *smtpd;
	struct mda *mda;
	struct mta *mta;
	struct store *store;
	struct net_looplag *looplag;
	bool local_lmtp;   /* local_delivery (a restart parameter) is LMTP: local jobs go to the mta too */
	unsigned stopping; /* SIGTERM: the parts (server, remote delivery) still finishing their work */
};

static void raise_descriptor_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* drop_privileges - become user for good, and check that root is gone. */
static bool drop_privileges(const struct config *config)
{
	if (geteuid() != 0)
		return true;
	if (!config->user[0]) {
		log_warning("event=running_as_root hint=\"set user = NAME to drop privileges\"");
		return true;
	}
	struct passwd *pw = getpwnam(config->user);
	if (!pw) {
		log_error("event=startup_failed reason=\"no such user: %s\"", config->user);
		return false;
	}
	if (mkdir(config->data_dir, 0700) != 0 && errno != EEXIST) {
		log_error("event=startup_failed reason=\"cannot create %s: %s\"", config->data_dir, strerror(errno));
		return false;
	}
	if (chown(config->data_dir, pw->pw_uid, pw->pw_gid) != 0 || setgroups(1, &pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		log_error("event=startup_failed reason=\"cannot become %s: %s\"", config->user, strerror(errno));
		return false;
	}
	if (setuid(0) == 0 || geteuid() == 0)
		fatal("privileges were not dropped");
	log_info("event=privileges_dropped user=%s uid=%u", config->user, (unsigned)pw->pw_uid);
	return true;
}

/* socket_in_dir - the socket at path is directly inside dir (compared by inode, however either is spelt). */
static bool socket_in_dir(const char *path, const char *dir)
{
	char parent[CONFIG_SOCKET_PATH_MAX + 1];
	str_copy(parent, sizeof parent, path);
	char *slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	struct stat a, b;
	return stat(slash ? parent : ".", &a) == 0 && stat(dir, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/* What an entry of the data directory may keep: its owner's permissions, no setuid, setgid or sticky bit. */
#define HIDDEN_MODE 0700

static bool more_than_hidden(mode_t mode)
{
	return (mode & 07777 & ~(mode_t)HIDDEN_MODE) != 0;
}

/*
 * hide_entry - one entry of the data directory (dir) made private. This
 * runs as root in a directory the unprivileged user owns, whose entries
 * that user may have swapped for anything: a link is never followed (the
 * entry is opened with O_NOFOLLOW, then checked and changed through its
 * descriptor, so a swap between the look and the change reaches nothing
 * else), only regular files and directories are changed, and a regular
 * file with other hard links is left alone (it may be a file from
 * elsewhere, linked in). Sockets (the local socket) keep their mode.
 */
static void hide_entry(int dir, const char *data_dir, const char *name)
{
	struct stat st;
	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) ||
	    !more_than_hidden(st.st_mode))
		return;
	int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	const char *why = NULL;
	if (fd < 0 || fstat(fd, &st) != 0)
		why = strerror(errno);
	else if (!(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
		why = "no longer a file or directory";
	else if (S_ISREG(st.st_mode) && st.st_nlink != 1)
		why = "the file has other hard links";
	else if (more_than_hidden(st.st_mode) && fchmod(fd, st.st_mode & HIDDEN_MODE) != 0)
		why = strerror(errno);
	else if (more_than_hidden(st.st_mode))
		log_info("event=mode_fixed path=%s/%s mode=%04o", data_dir, name, (unsigned)(st.st_mode & HIDDEN_MODE));
	if (why)
		log_warning("event=mode_fix_failed path=%s/%s error=\"%s\"", data_dir, name, why);
	if (fd >= 0)
		close(fd);
}

/*
 * hide_entries - take every permission but the owner's off what the data
 * directory holds (see hide_entry): files made before umask(077) was set,
 * such as a queue.db that `tern user add` made with 0644, must not become
 * readable by others or the group once the directory can be traversed.
 */
static void hide_entries(const char *data_dir)
{
	DIR *dir = opendir(data_dir);
	if (!dir) {
		log_warning("event=data_dir_unreadable path=%s error=\"%s\"", data_dir, strerror(errno));
		return;
	}
	struct dirent *e;
	while ((e = readdir(dir)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			hide_entry(dirfd(dir), data_dir, e->d_name);
	closedir(dir);
}

/*
 * open_data_dir - the data directory, before the local socket is bound in
 * it. With the socket inside (the default), the directory is 0711: every
 * local user may reach the socket by its name, nobody but tern may list or
 * read anything else there.
 */
static bool open_data_dir(const struct config *config)
{
	if (mkdir(config->data_dir, 0700) != 0 && errno != EEXIST) {
		log_error("event=startup_failed reason=\"cannot create %s: %s\"", config->data_dir, strerror(errno));
		return false;
	}
	char path[CONFIG_SOCKET_PATH_MAX + 1];
	if (config_sendmail_socket(config, path, sizeof path) <= 0 || !socket_in_dir(path, config->data_dir))
		return true;
	if (chmod(config->data_dir, 0711) != 0)
		log_warning("event=data_dir_mode_failed path=%s error=\"%s\" hint=\"local users cannot reach the "
		            "sendmail socket\"",
		            config->data_dir, strerror(errno));
	hide_entries(config->data_dir);
	return true;
}

/* prepare_data_dir - the directories, and the postmaster mailbox RFC 5321 4.5.1 requires. */
static bool prepare_data_dir(const struct config *config)
{
	char path[4096];
	if ((mkdir(config->data_dir, 0700) != 0 && errno != EEXIST) ||
	    !str_format(path, sizeof path, "%s/tmp", config->data_dir) || (mkdir(path, 0700) != 0 && errno != EEXIST)) {
		log_error("event=startup_failed reason=\"cannot create %s: %s\"", config->data_dir, strerror(errno));
		return false;
	}
	char err[256];
	struct store_admin *admin = store_admin_open(config->data_dir, err, sizeof err);
	if (!admin) {
		log_error("event=startup_failed reason=\"%s\"", err);
		return false;
	}
	if (!store_user_exists(admin, config->postmaster) &&
	    store_user_add(admin, config->postmaster, NULL, err, sizeof err))
		log_info("event=postmaster_created mailbox=%s", config->postmaster);
	store_admin_close(admin);
	return true;
}

/* part_stopped - one part has finished its work; the loop ends after the last. */
static void part_stopped(void *arg)
{
	struct serve *sv = arg;
	if (--sv->stopping == 0)
		event_base_loopexit(sv->base, NULL);
}

static void on_terminate(evutil_socket_t sig, short what, void *arg)
{
	struct serve *sv = arg;
	log_info("event=signal signal=%s", sig == SIGTERM ? "TERM" : "INT");
	if (sv->stopping)
		return;
	/* Transactions in flight finish, both ways, within shutdown_timeout. */
	sv->stopping = 2;
	smtpd_shutdown(sv->smtpd, part_stopped, sv);
	mta_shutdown(sv->mta, part_stopped, sv);
}

/* serve_dispatch - store_dispatch: recipients routed to a Maildir to the mailbox writers, the others (LMTP, MX,
 * relay) to the mta. */
static void serve_dispatch(struct delivery_job *job, void *arg)
{
	struct serve *sv = arg;
	if (job->maildir)
		mda_dispatch(job, sv->mda);
	else
		mta_dispatch(job, sv->mta);
}

/*
 * load_tls - the certificates of config: the configured ones, or else the
 * self-signed one in DATA_DIR/tls (made on first start). NULL after
 * logging why.
 */
static struct tls_server *load_tls(const struct config *config)
{
	char err[512], dir[4096], cert[4096], key[4096];
	struct tls_cert_files *files = xcalloc(config->tls_cert_count + 1, sizeof *files);
	size_t count = config->tls_cert_count;
	for (size_t i = 0; i < count; i++) {
		files[i].cert_file = config->tls_certs[i].cert_file;
		files[i].key_file = config->tls_certs[i].key_file;
	}
	struct tls_server *tls = NULL;
	if (count == 0) {
		if (str_format(dir, sizeof dir, "%s/tls", config->data_dir) &&
		    tls_selfsigned_ensure(dir, config->hostname, cert, key, sizeof cert, err, sizeof err)) {
			files[0].cert_file = cert;
			files[0].key_file = key;
			count = 1;
		}
	}
	if (count > 0)
		tls = tls_server_new(files, count, config->tls_min_version == CONFIG_TLS_1_3, err, sizeof err);
	if (!tls)
		log_error("event=tls_failed reason=\"%s\"", err);
	free(files);
	return tls;
}

/* store_policy_of - what the store does with failures and retries, from config (reloadable). */
static struct store_policy store_policy_of(const struct config *config)
{
	return (struct store_policy){
	        .retry_initial_ms = config->retry_initial * 1000,
	        .retry_max_ms = config->retry_max * 1000,
	        .max_queue_lifetime_ms = config->max_queue_lifetime * 1000,
	        .delay_warning_ms = config->delay_warning * 1000,
	        .suppression = config->suppression != 0,
	        .suppression_ttl_ms = config->suppression_ttl * 1000,
	        .bounce_retention_ms = config->bounce_retention * 1000,
	        .queue_min_free = config->queue_min_free,
	};
}

/* on_stats - SIGUSR1: the loop's longest stall since the last report (net_looplag.c). */
static void on_stats(evutil_socket_t sig, short what, void *arg)
{
	struct serve *sv = arg;
	if (sv->looplag)
		net_looplag_report(sv->looplag);
}

static void on_reload(evutil_socket_t sig, short what, void *arg)
{
	struct serve *sv = arg;
	struct config *fresh = config_load(sv->config->path, stderr);
	if (!fresh) {
		log_error("event=reload_failed path=%s reason=\"configuration has errors; keeping the old one\"",
		          sv->config->path ? sv->config->path : "(defaults)");
		return;
	}
	char names[256];
	if (config_needs_restart(sv->config, fresh, names, sizeof names))
		log_warning("event=reload_partial needs_restart=\"%s\"", names);
	/* New certificates for new sessions; if they cannot be read, keep the old. */
	struct tls_server *tls = load_tls(fresh);
	if (tls)
		smtpd_set_tls(sv->smtpd, tls);
	else
		log_error("event=reload_tls_failed reason=\"keeping the certificates in use\"");
	log_set_level(fresh->log_level);
	smtpd_reload(sv->smtpd, fresh);
	mta_reload(sv->mta, fresh);
	struct store_policy policy = store_policy_of(fresh);
	if (sv->store) {
		store_set_policy(sv->store, &policy);
		store_set_routes(sv->store, config_ref(fresh), !config_routing_equal(sv->config, fresh));
	}
	config_unref(sv->config);
	sv->config = fresh;
	log_info("event=reloaded path=%s", fresh->path ? fresh->path : "(defaults)");
}

int cli_serve(const char *config_path)
{
	struct serve sv = {0};
	/* Nothing tern writes is for other users: the data directory may be
	 * traversable (the local socket), so its files must not be readable. */
	umask(077);
	sv.config = config_load(config_path, stderr);
	if (!sv.config)
		return 1;
	sv.local_lmtp = sv.config->local_delivery.kind == CONFIG_ROUTE_LMTP;
	log_set_level(sv.config->log_level);
	signal(SIGPIPE, SIG_IGN);
	raise_descriptor_limit();
	evthread_use_pthreads();
	sv.base = event_base_new();
	if (!sv.base)
		fatal("event_base_new failed");
	/* Signals are taken from here on (a HUP or TERM during start-up must
	 * not kill the process); they are acted on once the loop runs. */
	struct event *term = evsignal_new(sv.base, SIGTERM, on_terminate, &sv);
	struct event *intr = evsignal_new(sv.base, SIGINT, on_terminate, &sv);
	struct event *hup = evsignal_new(sv.base, SIGHUP, on_reload, &sv);
	struct event *usr1 = evsignal_new(sv.base, SIGUSR1, on_stats, &sv);
	if (!term || !intr || !hup || !usr1)
		fatal("evsignal_new failed");
	event_add(term, NULL);
	event_add(intr, NULL);
	event_add(hup, NULL);
	event_add(usr1, NULL);
	sv.smtpd = open_data_dir(sv.config) ? smtpd_create(sv.base, sv.config) : NULL;
	if (!sv.smtpd)
		return 1;
	/* Configured keys are read before privileges go (they are often
	 * readable by root only); a self-signed one lives in the data
	 * directory, which is made as the unprivileged user. */
	struct tls_server *tls = sv.config->tls_cert_count > 0 ? load_tls(sv.config) : NULL;
	if ((sv.config->tls_cert_count > 0 && !tls) || !drop_privileges(sv.config) || !prepare_data_dir(sv.config))
		return 1;
	if (!tls && !(tls = load_tls(sv.config)))
		return 1;
	smtpd_set_tls(sv.smtpd, tls);

	char err[256];
	struct store_settings settings = {
	        .data_dir = sv.config->data_dir,
	        .max_inflight = SERVE_MAX_INFLIGHT,
	        .local_lmtp = sv.local_lmtp,
	        .router = &smtpd_router,
	        .hostname = sv.config->hostname,
	        .local_domains = sv.config->local_domains,
	        .local_domain_count = sv.config->local_domain_count,
	        .postmaster = sv.config->postmaster,
	        .recipient_delimiter = sv.config->recipient_delimiter,
	        .policy = store_policy_of(sv.config),
	};
	/* The store keeps pointers into this configuration until it stops. */
	struct config *store_config = config_ref(sv.config);
	err[0] = '\0';
	sv.mda = mda_create(sv.config->data_dir, sv.config->hostname, sv.config->delivery_workers);
	sv.mta = mta_create(sv.base, sv.config, err, sizeof err);
	struct store *store = NULL;
	if (sv.mta) {
		settings.routes = config_ref(sv.config); /* the store's: it releases it */
		store = store_start(&settings, sv.base, smtpd_commit_done, sv.smtpd, serve_dispatch, &sv, err,
		                    sizeof err);
	}
	struct store_reader *mta_reader = store ? store_reader_open(sv.config->data_dir, err, sizeof err) : NULL;
	if (!store || !mta_reader || !mda_run(sv.mda, store)) {
		log_error("event=startup_failed reason=\"%s\"", err);
		return 1;
	}
	sv.store = store;
	mta_run(sv.mta, store, mta_reader);
	smtpd_run(sv.smtpd, store);

	log_info("event=ready pid=%d hostname=%s data_dir=%s", (int)getpid(), sv.config->hostname, sv.config->data_dir);

	sv.looplag = net_looplag_new(sv.base);
	event_base_dispatch(sv.base);
	net_looplag_report(sv.looplag);
	net_looplag_free(sv.looplag);

	mda_stop(sv.mda);
	store_stop(store);
	mda_free(sv.mda);
	mta_free(sv.mta);
	config_unref(store_config);
	store_reader_close(mta_reader);
	smtpd_free(sv.smtpd);
	event_free(term);
	event_free(intr);
	event_free(hup);
	event_free(usr1);
	event_base_free(sv.base);
	config_unref(sv.config);
	log_info("event=stopped");
	return 0;
}
