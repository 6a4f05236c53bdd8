/*
 * healerd-http.so (http-module.h): HTTP(S) fetches with libcurl's multi
 * socket API on the GLib main loop.  Only this module links libcurl;
 * http-fetcher.c loads it on the first fetch.
 *
 * curl tells us which sockets to watch (on_curl_socket: one GUnixFDSource
 * per socket, re-created when the condition changes) and when to wake it
 * (on_curl_timer: one timeout source); both call curl_multi_socket_action()
 * and then collect finished transfers (process_messages).  A finished
 * transfer is put on the `completed` queue and its `done` is called from an
 * idle source (on_dispatch), never from inside curl, so a `done` may start,
 * cancel and free at will.  Each running transfer has its own deadline, a
 * timeout source (on_deadline) that ends it however its bytes trickle in:
 * curl's stall check (CURLOPT_LOW_SPEED_*) only catches a server sending
 * less than 1 byte/s.  While a `done` runs, engine_free()
 * only cancels everything and leaves the final free to on_dispatch.
 */
#include "http-module.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <glib-unix.h>
#include <gmodule.h>

#include "healer-error.h"

#define DEFAULT_MAX_PARALLEL      4
#define DEFAULT_CONNECT_TIMEOUT_S 30
#define DEFAULT_STALL_TIMEOUT_S   60
/* As [upstream] transfer-timeout-seconds' default (config.c says why). */
#define DEFAULT_TRANSFER_TIMEOUT_S 120
#define MAX_REDIRECTS              5L
#define USER_AGENT                 "healerd/" HEALER_VERSION

#ifndef CURL_WRITEFUNC_ERROR
#define CURL_WRITEFUNC_ERROR 0xFFFFFFFF
#endif

typedef enum {
	KIND_MEMORY,
	KIND_FILE,
} TransferKind;

typedef enum {
	STATE_QUEUED,  /* in fetcher->queued, no easy handle in the multi */
	STATE_RUNNING, /* in the multi */
	STATE_DONE,    /* in fetcher->completed, waiting for on_dispatch */
} TransferState;

typedef struct {
	HealerHttpEngine *fetcher;
	guint id;
	TransferKind kind;
	TransferState state;
	char *url;
	CURL *easy;
	GSource *deadline; /* while running: ends the transfer at transfer_timeout_s */
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
	HealerHttpDoneFunc done;
	gpointer user_data;

	/* to memory */
	guint64 max_size;
	GByteArray *body;

	/* to file */
	char *path;
	int fd;
	guint64 expected_size;
	guint64 offset; /* the file's size: where the next bytes go (O_APPEND) */
	guint64 resumed_from;
	gboolean range_sent;

	gboolean body_started; /* the status was checked, on the first body bytes */
	gboolean bad_status;   /* the body was refused for its status */
	guint64 bytes_received;
	GError *error; /* set by our own checks (callbacks, setup) */
	HealerHttpResult result;
} Transfer;

typedef struct {
	HealerHttpEngine *fetcher;
	curl_socket_t fd;
	GIOCondition condition;
	GSource *source;
} Socket;

struct _HealerHttpEngine {
	HealerHttpOptions options;
	GMainContext *context;
	CURLM *multi;
	GHashTable *transfers; /* id -> Transfer, in every state */
	GQueue queued;
	GQueue completed;
	GHashTable *sockets; /* set of Socket */
	GSource *timer;
	GSource *dispatch;
	guint n_running;
	guint max_running_seen;
	guint in_callback;
	gboolean free_requested;
};

static void
clear_source(GSource **source)
{
	if (*source == NULL)
		return;
	g_source_destroy(*source);
	g_source_unref(*source);
	*source = NULL;
}

/* Once per process: the module is never unloaded, so neither is curl cleaned up. */
static gboolean
ensure_curl_initialized(GError **error)
{
	static gsize initialized;
	static CURLcode code;

	if (g_once_init_enter(&initialized)) {
		code = curl_global_init(CURL_GLOBAL_DEFAULT);
		g_once_init_leave(&initialized, 1);
	}
	if (code != CURLE_OK) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_FAILED, "curl_global_init: %s", curl_easy_strerror(code));
		return FALSE;
	}
	return TRUE;
}

/* ---- transfers ---- */

static void
transfer_free(Transfer *t)
{
	clear_source(&t->deadline);
	if (t->easy != NULL)
		curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->headers);
	if (t->fd >= 0)
		close(t->fd);
	if (t->body != NULL)
		g_byte_array_unref(t->body);
	g_free(t->url);
	g_free(t->path);
	g_free(t->result.etag);
	g_free(t->result.last_modified);
	g_clear_pointer(&t->result.body, g_bytes_unref);
	g_clear_error(&t->error);
	g_free(t);
}

static void transfer_set_error(Transfer *t, HealerError code, const char *format, ...) G_GNUC_PRINTF(3, 4);

/* Records the first error only: "URL: cause". */
static void
transfer_set_error(Transfer *t, HealerError code, const char *format, ...)
{
	g_autofree char *cause = NULL;
	va_list args;

	if (t->error != NULL)
		return;
	va_start(args, format);
	cause = g_strdup_vprintf(format, args);
	va_end(args);
	t->error = g_error_new(HEALER_ERROR, code, "%s: %s", t->url, cause);
}

static gboolean on_dispatch(gpointer user_data);

static void
schedule_dispatch(HealerHttpEngine *f)
{
	if (f->dispatch != NULL)
		return;
	f->dispatch = g_idle_source_new();
	g_source_set_callback(f->dispatch, on_dispatch, f, NULL);
	g_source_set_static_name(f->dispatch, "healer-http-dispatch");
	g_source_attach(f->dispatch, f->context);
}

static void
transfer_complete(Transfer *t)
{
	t->state = STATE_DONE;
	g_queue_push_tail(&t->fetcher->completed, t);
	schedule_dispatch(t->fetcher);
}

static char *
response_header(Transfer *t, const char *name)
{
	struct curl_header *header = NULL;

	if (curl_easy_header(t->easy, name, 0, CURLH_HEADER, -1, &header) != CURLHE_OK || header == NULL)
		return NULL;
	return g_strdup(header->value);
}

static long
response_status(Transfer *t)
{
	long status = 0;

	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

static gboolean
parse_number(const char **p, guint64 *out)
{
	char *end = NULL;

	if (!g_ascii_isdigit(**p))
		return FALSE;
	errno = 0;
	*out = g_ascii_strtoull(*p, &end, 10);
	if (errno != 0)
		return FALSE;
	*p = end;
	return TRUE;
}

/*
 * Content-Range: "bytes FIRST-LAST/TOTAL", or "bytes" then "*" for the
 * range (a 416) or for the total: first and total are -1 for "*".
 */
static gboolean
parse_content_range(const char *value, gint64 *first, gint64 *total)
{
	const char *p = value;
	guint64 a, b, c;

	if (value == NULL || g_ascii_strncasecmp(p, "bytes", 5) != 0)
		return FALSE;
	p += 5;
	while (*p == ' ')
		p++;
	if (*p == '*') {
		*first = -1;
		p++;
	} else {
		if (!parse_number(&p, &a) || *p++ != '-' || !parse_number(&p, &b) || b < a || a > G_MAXINT64)
			return FALSE;
		*first = (gint64)a;
	}
	if (*p++ != '/')
		return FALSE;
	if (*p == '*') {
		*total = -1;
		p++;
	} else {
		if (!parse_number(&p, &c) || c > G_MAXINT64)
			return FALSE;
		*total = (gint64)c;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == '\0';
}

/* The statuses whose body we take. */
static gboolean
status_has_wanted_body(Transfer *t, long status)
{
	if (t->kind == KIND_MEMORY)
		return status == 200;
	return status == 200 || (status == 206 && t->range_sent);
}

static gboolean
status_is_success(Transfer *t, long status)
{
	return status_has_wanted_body(t, status) || (t->kind == KIND_MEMORY && status == 304);
}

/* On the first body bytes (or at the end, when there were none): checks the status and prepares the sink. */
static gboolean
transfer_begin_body(Transfer *t)
{
	long status = response_status(t);
	curl_off_t length = -1;

	t->body_started = TRUE;
	if (!status_has_wanted_body(t, status)) {
		t->bad_status = TRUE;
		return FALSE;
	}
	curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);

	if (t->kind == KIND_MEMORY) {
		if (length > 0 && (guint64)length > t->max_size) {
			transfer_set_error(t, HEALER_ERROR_INVALID_DATA, "body larger than %" G_GUINT64_FORMAT " bytes",
			                   t->max_size);
			return FALSE;
		}
		return TRUE;
	}

	if (status == 206) {
		g_autofree char *range = response_header(t, "Content-Range");
		gint64 first = -1, total = -1;

		if (!parse_content_range(range, &first, &total) || first < 0) {
			transfer_set_error(t, HEALER_ERROR_INVALID_DATA, "HTTP 206 with Content-Range \"%s\"",
			                   range != NULL ? range : "");
			return FALSE;
		}
		if ((guint64)first != t->offset) {
			transfer_set_error(t, HEALER_ERROR_INVALID_DATA,
			                   "asked for bytes from %" G_GUINT64_FORMAT ", got from %" G_GINT64_FORMAT,
			                   t->offset, first);
			return FALSE;
		}
	} else if (t->offset > 0) {
		/* a 200: the whole resource again */
		if (ftruncate(t->fd, 0) != 0) {
			t->error = g_error_new(HEALER_ERROR, HEALER_ERROR_IO, "%s: cannot truncate: %s", t->path,
			                       g_strerror(errno));
			return FALSE;
		}
		t->offset = 0;
		t->resumed_from = 0;
	}
	if (t->expected_size > 0 && length > 0 && t->offset + (guint64)length > t->expected_size) {
		transfer_set_error(t, HEALER_ERROR_INVALID_DATA,
		                   "%" G_GUINT64_FORMAT " bytes, more than the expected %" G_GUINT64_FORMAT,
		                   t->offset + (guint64)length, t->expected_size);
		return FALSE;
	}
	return TRUE;
}

/* write(2) until all is written: regular files may take less than asked. */
static int
write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (n == 0)
			return ENOSPC;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static size_t
on_curl_write(char *data, size_t size, size_t nmemb, void *user_data)
{
	Transfer *t = user_data;
	size_t len = size * nmemb;

	if (!t->body_started && !transfer_begin_body(t))
		return CURL_WRITEFUNC_ERROR;
	if (t->error != NULL || t->bad_status)
		return CURL_WRITEFUNC_ERROR;

	if (t->kind == KIND_MEMORY) {
		if ((guint64)t->body->len + len > t->max_size) {
			transfer_set_error(t, HEALER_ERROR_INVALID_DATA, "body larger than %" G_GUINT64_FORMAT " bytes",
			                   t->max_size);
			return CURL_WRITEFUNC_ERROR;
		}
		g_byte_array_append(t->body, (const guint8 *)data, (guint)len);
	} else {
		int saved;

		if (t->expected_size > 0 && t->offset + len > t->expected_size) {
			transfer_set_error(t, HEALER_ERROR_INVALID_DATA,
			                   "more than the expected %" G_GUINT64_FORMAT " bytes", t->expected_size);
			return CURL_WRITEFUNC_ERROR;
		}
		saved = write_all(t->fd, data, len);
		if (saved != 0) {
			t->error = g_error_new(HEALER_ERROR, HEALER_ERROR_IO, "%s: write failed: %s", t->path,
			                       g_strerror(saved));
			return CURL_WRITEFUNC_ERROR;
		}
		t->offset += len;
	}
	t->bytes_received += len;
	return len;
}

/* ---- errors ---- */

static void
set_http_status_error(Transfer *t, long status)
{
	HealerError code = HEALER_ERROR_FAILED;

	if (status == 404 || status == 410)
		code = HEALER_ERROR_NOT_FOUND;
	else if (status == 408 || status == 429 || status >= 500)
		code = HEALER_ERROR_IO;
	transfer_set_error(t, code, "HTTP %ld", status);
}

static void
set_curl_error(Transfer *t, CURLcode result)
{
	const char *detail = t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(result);
	long os_errno = 0;

	switch (result) {
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno == ECONNREFUSED)
			transfer_set_error(t, HEALER_ERROR_IO, "connection refused");
		else
			transfer_set_error(t, HEALER_ERROR_IO, "cannot connect: %s", detail);
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		transfer_set_error(t, HEALER_ERROR_IO, "cannot resolve: %s", detail);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		transfer_set_error(t, HEALER_ERROR_IO, "timed out: %s", detail);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		transfer_set_error(t, HEALER_ERROR_FAILED, "TLS certificate verify failed: %s", detail);
		break;
	case CURLE_SSL_CONNECT_ERROR:
		transfer_set_error(t, HEALER_ERROR_IO, "TLS handshake failed: %s", detail);
		break;
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ENGINE_INITFAILED:
		transfer_set_error(t, HEALER_ERROR_FAILED, "TLS setup failed: %s", detail);
		break;
	case CURLE_UNSUPPORTED_PROTOCOL: {
		char *effective = NULL;
		/* Refused while following a redirect: say where it led (curl only says which scheme). */
		curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &effective);
		if (effective != NULL && strcmp(effective, t->url) != 0)
			transfer_set_error(t, HEALER_ERROR_INVALID_ARGUMENT, "redirected to %s: %s", effective, detail);
		else
			transfer_set_error(t, HEALER_ERROR_INVALID_ARGUMENT, "%s", detail);
		break;
	}
	case CURLE_URL_MALFORMAT:
		transfer_set_error(t, HEALER_ERROR_INVALID_ARGUMENT, "%s", detail);
		break;
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_OUT_OF_MEMORY:
		transfer_set_error(t, HEALER_ERROR_FAILED, "%s", detail);
		break;
	default:
		/* transport faults: cut connections (CURLE_PARTIAL_FILE), resets, proxies, HTTP/2 */
		transfer_set_error(t, HEALER_ERROR_IO, "%s", detail);
		break;
	}
}

/*
 * A 416 answering "Range: bytes=N-" means we have it all when N reaches the
 * expected size, or with no expected size, when the server says its
 * resource has N bytes.
 */
static gboolean
range_already_complete(Transfer *t)
{
	g_autofree char *range = NULL;
	gint64 first = -1, total = -1;

	if (!t->range_sent)
		return FALSE;
	if (t->expected_size > 0)
		return t->offset >= t->expected_size;
	range = response_header(t, "Content-Range");
	return parse_content_range(range, &first, &total) && total >= 0 && (guint64)total == t->offset;
}

/* The easy handle is out of the multi: decides success or error and queues the transfer for `done`. */
static void
transfer_finish(Transfer *t, CURLcode result)
{
	long status = response_status(t);
	gboolean range_done = FALSE;

	if (t->error != NULL) {
		/* ours: already set */
	} else if (t->bad_status || (result == CURLE_OK && !status_is_success(t, status))) {
		if (t->kind == KIND_FILE && status == 416 && range_already_complete(t))
			range_done = TRUE;
		else
			set_http_status_error(t, status);
	} else if (result != CURLE_OK) {
		set_curl_error(t, result);
	} else if (!t->body_started && status != 304) {
		/* an empty body: a 200 must still truncate a partial file */
		if (!transfer_begin_body(t) && t->error == NULL)
			set_http_status_error(t, status);
	}

	if (t->error == NULL && t->kind == KIND_FILE) {
		if (fsync(t->fd) != 0) {
			t->error = g_error_new(HEALER_ERROR, HEALER_ERROR_IO, "%s: fsync failed: %s", t->path,
			                       g_strerror(errno));
		}
	}
	if (t->kind == KIND_FILE) {
		if (close(t->fd) != 0 && t->error == NULL)
			t->error = g_error_new(HEALER_ERROR, HEALER_ERROR_IO, "%s: close failed: %s", t->path,
			                       g_strerror(errno));
		t->fd = -1;
	}

	if (t->error == NULL) {
		t->result.status = (guint)status;
		t->result.etag = response_header(t, "ETag");
		t->result.last_modified = response_header(t, "Last-Modified");
		t->result.bytes_received = t->bytes_received;
		t->result.resumed_from = t->kind == KIND_FILE ? t->resumed_from : 0;
		if (t->kind == KIND_MEMORY && status == 200)
			t->result.body = g_byte_array_free_to_bytes(g_steal_pointer(&t->body));
		g_debug("%s: HTTP %ld, %" G_GUINT64_FORMAT " bytes%s", t->url, status, t->bytes_received,
		        range_done ? " (already complete)" : "");
	} else {
		g_debug("%s", t->error->message);
	}
	curl_easy_cleanup(g_steal_pointer(&t->easy));
	transfer_complete(t);
}

/* ---- the multi ---- */

static void start_queued(HealerHttpEngine *f);

static void
process_messages(HealerHttpEngine *f)
{
	CURLMsg *message;
	int left = 0;

	while ((message = curl_multi_info_read(f->multi, &left)) != NULL) {
		CURL *easy = message->easy_handle;
		CURLcode result = message->data.result;
		char *private = NULL;

		if (message->msg != CURLMSG_DONE)
			continue;
		/* `message` does not survive curl_multi_remove_handle() */
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &private);
		curl_multi_remove_handle(f->multi, easy);
		f->n_running--;
		clear_source(&((Transfer *)private)->deadline);
		transfer_finish((Transfer *)private, result);
	}
	start_queued(f);
}

static gboolean
on_socket_ready(int fd, GIOCondition condition, gpointer user_data)
{
	Socket *s = user_data;
	HealerHttpEngine *f = s->fetcher; /* `s` may be freed by the action */
	int mask = 0, running = 0;

	if (condition & G_IO_NVAL) {
		/* closed behind our back: stop polling it rather than spin; curl's timer still runs */
		clear_source(&s->source);
		return G_SOURCE_REMOVE;
	}
	if (condition & (G_IO_IN | G_IO_HUP))
		mask |= CURL_CSELECT_IN;
	if (condition & G_IO_OUT)
		mask |= CURL_CSELECT_OUT;
	if (condition & G_IO_ERR)
		mask |= CURL_CSELECT_ERR;
	curl_multi_socket_action(f->multi, fd, mask, &running);
	process_messages(f);
	return G_SOURCE_CONTINUE;
}

static void
socket_free(Socket *s)
{
	clear_source(&s->source);
	g_free(s);
}

static int
on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *user_data, void *socket_data)
{
	HealerHttpEngine *f = user_data;
	Socket *s = socket_data;
	GIOCondition condition = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			g_hash_table_remove(f->sockets, s);
			socket_free(s);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		condition |= G_IO_IN;
	if (what & CURL_POLL_OUT)
		condition |= G_IO_OUT;
	if (s == NULL) {
		s = g_new0(Socket, 1);
		s->fetcher = f;
		s->fd = fd;
		g_hash_table_add(f->sockets, s);
		curl_multi_assign(f->multi, fd, s);
	}
	if (s->source == NULL || s->condition != condition) {
		clear_source(&s->source);
		s->condition = condition;
		s->source = g_unix_fd_source_new(fd, condition);
		g_source_set_callback(s->source, G_SOURCE_FUNC(on_socket_ready), s, NULL);
		g_source_set_static_name(s->source, "healer-http-socket");
		g_source_attach(s->source, f->context);
	}
	return 0;
}

static gboolean
on_timeout(gpointer user_data)
{
	HealerHttpEngine *f = user_data;
	int running = 0;

	clear_source(&f->timer); /* the action may set a new one */
	curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	process_messages(f);
	return G_SOURCE_REMOVE;
}

static int
on_curl_timer(CURLM *multi, long timeout_ms, void *user_data)
{
	HealerHttpEngine *f = user_data;

	(void)multi;
	clear_source(&f->timer);
	if (timeout_ms >= 0) {
		f->timer = g_timeout_source_new((guint)MIN(timeout_ms, (long)G_MAXINT));
		g_source_set_callback(f->timer, on_timeout, f, NULL);
		g_source_set_static_name(f->timer, "healer-http-timer");
		g_source_attach(f->timer, f->context);
	}
	return 0;
}

/* The transfer's time is up: it ends here, with whatever curl was doing. */
static gboolean
on_deadline(gpointer user_data)
{
	Transfer *t = user_data;
	HealerHttpEngine *f = t->fetcher;

	clear_source(&t->deadline);
	transfer_set_error(t, HEALER_ERROR_IO, "no complete answer within %u s", f->options.transfer_timeout_s);
	/* From a GLib source, not a curl callback: removing the handle is allowed here. */
	curl_multi_remove_handle(f->multi, t->easy);
	f->n_running--;
	transfer_finish(t, CURLE_OPERATION_TIMEDOUT);
	start_queued(f);
	return G_SOURCE_REMOVE;
}

/* ---- starting ---- */

#define SETOPT(option, value)                                                                                          \
	do {                                                                                                           \
		CURLcode code_ = curl_easy_setopt(e, option, value);                                                   \
		if (code_ != CURLE_OK) {                                                                               \
			transfer_set_error(t, HEALER_ERROR_FAILED, "cannot set %s: %s", #option,                       \
			                   curl_easy_strerror(code_));                                                 \
			return FALSE;                                                                                  \
		}                                                                                                      \
	} while (0)

static gboolean
transfer_setup_easy(Transfer *t)
{
	const HealerHttpOptions *o = &t->fetcher->options;
	CURL *e = curl_easy_init();

	if (e == NULL) {
		transfer_set_error(t, HEALER_ERROR_FAILED, "curl_easy_init failed");
		return FALSE;
	}
	t->easy = e;
	SETOPT(CURLOPT_URL, t->url);
	SETOPT(CURLOPT_PRIVATE, (void *)t);
	SETOPT(CURLOPT_ERRORBUFFER, t->errbuf);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_USERAGENT, USER_AGENT);
	SETOPT(CURLOPT_HTTPGET, 1L);
	SETOPT(CURLOPT_PROTOCOLS_STR, o->allow_http ? "http,https" : "https");
	SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, o->allow_http ? "http,https" : "https");
	SETOPT(CURLOPT_FOLLOWLOCATION, 1L);
	SETOPT(CURLOPT_MAXREDIRS, MAX_REDIRECTS);
	SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->ca_file != NULL) {
		SETOPT(CURLOPT_CAINFO, o->ca_file);
		SETOPT(CURLOPT_CAPATH, (char *)NULL); /* only this file's CAs */
	}
	if (o->proxy != NULL)
		SETOPT(CURLOPT_PROXY, o->proxy); /* "" disables proxies, environment included */
	SETOPT(CURLOPT_CONNECTTIMEOUT, (long)o->connect_timeout_s);
	SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SETOPT(CURLOPT_LOW_SPEED_TIME, (long)o->stall_timeout_s);
	if (o->max_bytes_per_second > 0)
		SETOPT(CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)MIN(o->max_bytes_per_second, (guint64)G_MAXINT64));
	SETOPT(CURLOPT_WRITEFUNCTION, on_curl_write);
	SETOPT(CURLOPT_WRITEDATA, (void *)t);
	if (t->headers != NULL)
		SETOPT(CURLOPT_HTTPHEADER, t->headers);
	if (t->range_sent) {
		g_autofree char *range = g_strdup_printf("%" G_GUINT64_FORMAT "-", t->offset);
		SETOPT(CURLOPT_RANGE, range); /* copied by curl */
	}
	return TRUE;
}

#undef SETOPT

static gboolean
transfer_open_file(Transfer *t)
{
	struct stat st;

	t->fd = open(t->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (t->fd < 0 || fstat(t->fd, &st) != 0) {
		t->error = g_error_new(HEALER_ERROR, HEALER_ERROR_IO, "%s: %s", t->path, g_strerror(errno));
		return FALSE;
	}
	t->offset = (guint64)st.st_size;
	if (t->expected_size > 0 && t->offset > t->expected_size) {
		t->error =
		        g_error_new(HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		                    "%s: holds %" G_GUINT64_FORMAT " bytes, more than the expected %" G_GUINT64_FORMAT,
		                    t->path, t->offset, t->expected_size);
		return FALSE;
	}
	t->resumed_from = t->offset;
	t->range_sent = t->offset > 0;
	return TRUE;
}

static gboolean
transfer_start(Transfer *t)
{
	HealerHttpEngine *f = t->fetcher;
	CURLMcode code;

	if (t->kind == KIND_FILE && !transfer_open_file(t))
		return FALSE;
	if (!transfer_setup_easy(t))
		return FALSE;
	code = curl_multi_add_handle(f->multi, t->easy);
	if (code != CURLM_OK) {
		transfer_set_error(t, HEALER_ERROR_FAILED, "cannot start: %s", curl_multi_strerror(code));
		return FALSE;
	}
	t->deadline = g_timeout_source_new_seconds(f->options.transfer_timeout_s);
	g_source_set_callback(t->deadline, on_deadline, t, NULL);
	g_source_set_static_name(t->deadline, "healer-http-deadline");
	g_source_attach(t->deadline, f->context);
	g_debug("GET %s%s", t->url, t->range_sent ? " (resuming)" : "");
	return TRUE;
}

static void
start_queued(HealerHttpEngine *f)
{
	while (f->n_running < f->options.max_parallel && !g_queue_is_empty(&f->queued)) {
		Transfer *t = g_queue_pop_head(&f->queued);

		if (!transfer_start(t)) {
			if (t->kind == KIND_FILE && t->fd >= 0) {
				close(t->fd);
				t->fd = -1;
			}
			g_clear_pointer(&t->easy, curl_easy_cleanup);
			transfer_complete(t);
			continue;
		}
		t->state = STATE_RUNNING;
		f->n_running++;
		f->max_running_seen = MAX(f->max_running_seen, f->n_running);
	}
}

static Transfer *
transfer_new(HealerHttpEngine *f, guint id, TransferKind kind, const char *url, HealerHttpDoneFunc done,
             gpointer user_data)
{
	Transfer *t = g_new0(Transfer, 1);

	t->fetcher = f;
	t->kind = kind;
	t->url = g_strdup(url);
	t->fd = -1;
	t->done = done;
	t->user_data = user_data;
	t->id = id;
	g_hash_table_insert(f->transfers, GUINT_TO_POINTER(t->id), t);
	return t;
}

/* Queues `t`, or when it already failed, sends it to `done`. */
static void
transfer_submit(Transfer *t)
{
	HealerHttpEngine *f = t->fetcher;

	if (t->error != NULL) {
		transfer_complete(t);
		return;
	}
	t->state = STATE_QUEUED;
	g_queue_push_tail(&f->queued, t);
	start_queued(f);
}

static gboolean
header_value_ok(const char *value)
{
	return strpbrk(value, "\r\n") == NULL;
}

/* Refused here with a message saying why, rather than by curl's "Protocol "http" disabled". */
static void
check_scheme(Transfer *t)
{
	if (!t->fetcher->options.allow_http && g_ascii_strncasecmp(t->url, "http://", 7) == 0)
		transfer_set_error(t, HEALER_ERROR_INVALID_ARGUMENT, "plain http is not allowed, only https");
}

static void
engine_fetch_to_memory(HealerHttpEngine *fetcher, guint id, const char *url, const char *etag,
                       const char *last_modified, guint64 max_size, HealerHttpDoneFunc done, gpointer user_data)
{
	Transfer *t;

	g_return_if_fail(fetcher != NULL && !fetcher->free_requested);
	g_return_if_fail(id != 0 && !g_hash_table_contains(fetcher->transfers, GUINT_TO_POINTER(id)));
	g_return_if_fail(url != NULL && done != NULL);

	t = transfer_new(fetcher, id, KIND_MEMORY, url, done, user_data);
	t->max_size = max_size;
	t->body = g_byte_array_new();
	check_scheme(t);
	if (etag != NULL) {
		g_autofree char *line = g_strdup_printf("If-None-Match: %s", etag);
		if (!header_value_ok(etag))
			transfer_set_error(t, HEALER_ERROR_INVALID_ARGUMENT, "line break in the ETag");
		t->headers = curl_slist_append(t->headers, line);
	}
	if (last_modified != NULL) {
		g_autofree char *line = g_strdup_printf("If-Modified-Since: %s", last_modified);
		if (!header_value_ok(last_modified))
			transfer_set_error(t, HEALER_ERROR_INVALID_ARGUMENT, "line break in Last-Modified");
		t->headers = curl_slist_append(t->headers, line);
	}
	transfer_submit(t);
}

static void
engine_fetch_to_file(HealerHttpEngine *fetcher, guint id, const char *url, const char *partial_path,
                     guint64 expected_size, HealerHttpDoneFunc done, gpointer user_data)
{
	Transfer *t;

	g_return_if_fail(fetcher != NULL && !fetcher->free_requested);
	g_return_if_fail(id != 0 && !g_hash_table_contains(fetcher->transfers, GUINT_TO_POINTER(id)));
	g_return_if_fail(url != NULL && partial_path != NULL && done != NULL);

	t = transfer_new(fetcher, id, KIND_FILE, url, done, user_data);
	t->path = g_strdup(partial_path);
	t->expected_size = expected_size;
	check_scheme(t);
	transfer_submit(t);
}

/* Takes `t` out of wherever it is and frees it: its `done` is never called. */
static void
transfer_abort(Transfer *t)
{
	HealerHttpEngine *f = t->fetcher;

	switch (t->state) {
	case STATE_QUEUED:
		g_queue_remove(&f->queued, t);
		break;
	case STATE_RUNNING:
		clear_source(&t->deadline);
		curl_multi_remove_handle(f->multi, t->easy);
		f->n_running--;
		break;
	case STATE_DONE:
		g_queue_remove(&f->completed, t);
		break;
	}
	g_hash_table_remove(f->transfers, GUINT_TO_POINTER(t->id));
	g_debug("%s: cancelled", t->url);
	transfer_free(t);
}

static void
engine_cancel(HealerHttpEngine *fetcher, guint id)
{
	Transfer *t;

	g_return_if_fail(fetcher != NULL);
	t = g_hash_table_lookup(fetcher->transfers, GUINT_TO_POINTER(id));
	if (t == NULL)
		return;
	transfer_abort(t);
	if (!fetcher->free_requested)
		start_queued(fetcher);
}

/* ---- dispatch and lifetime ---- */

static void
fetcher_destroy(HealerHttpEngine *f)
{
	GHashTableIter iter;
	gpointer key;

	g_assert(g_hash_table_size(f->transfers) == 0);
	/* may still call on_curl_socket and on_curl_timer, closing cached connections */
	curl_multi_cleanup(f->multi);
	g_hash_table_iter_init(&iter, f->sockets);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		g_hash_table_iter_remove(&iter);
		socket_free(key);
	}
	clear_source(&f->timer);
	clear_source(&f->dispatch);
	g_hash_table_unref(f->sockets);
	g_hash_table_unref(f->transfers);
	g_main_context_unref(f->context);
	g_free(f->options.ca_file);
	g_free(f->options.proxy);
	g_free(f);
}

static gboolean
on_dispatch(gpointer user_data)
{
	HealerHttpEngine *f = user_data;
	Transfer *t = g_queue_pop_head(&f->completed);

	if (t == NULL) {
		clear_source(&f->dispatch);
		return G_SOURCE_REMOVE;
	}
	g_hash_table_remove(f->transfers, GUINT_TO_POINTER(t->id));
	f->in_callback++;
	t->done(t->error == NULL ? &t->result : NULL, t->error, t->user_data);
	f->in_callback--;
	transfer_free(t);

	if (f->free_requested) {
		if (f->in_callback == 0)
			fetcher_destroy(f);
		return G_SOURCE_REMOVE;
	}
	if (g_queue_is_empty(&f->completed)) {
		clear_source(&f->dispatch);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static HealerHttpEngine *
engine_new(const HealerHttpOptions *options, GError **error)
{
	HealerHttpEngine *f;
	CURLM *multi;

	if (!ensure_curl_initialized(error))
		return NULL;
	multi = curl_multi_init();
	if (multi == NULL) {
		g_set_error_literal(error, HEALER_ERROR, HEALER_ERROR_FAILED, "curl_multi_init failed");
		return NULL;
	}
	f = g_new0(HealerHttpEngine, 1);
	f->multi = multi;
	if (options != NULL) {
		f->options = *options;
		f->options.ca_file = g_strdup(options->ca_file);
		f->options.proxy = g_strdup(options->proxy);
	}
	if (f->options.max_parallel == 0)
		f->options.max_parallel = DEFAULT_MAX_PARALLEL;
	if (f->options.connect_timeout_s == 0)
		f->options.connect_timeout_s = DEFAULT_CONNECT_TIMEOUT_S;
	if (f->options.stall_timeout_s == 0)
		f->options.stall_timeout_s = DEFAULT_STALL_TIMEOUT_S;
	if (f->options.transfer_timeout_s == 0)
		f->options.transfer_timeout_s = DEFAULT_TRANSFER_TIMEOUT_S;

	f->context = g_main_context_ref_thread_default();
	f->transfers = g_hash_table_new(NULL, NULL);
	f->sockets = g_hash_table_new(NULL, NULL);
	g_queue_init(&f->queued);
	g_queue_init(&f->completed);

	curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
	return f;
}

static void
engine_free(HealerHttpEngine *fetcher)
{
	GList *all;

	if (fetcher == NULL || fetcher->free_requested)
		return;
	fetcher->free_requested = TRUE;
	all = g_hash_table_get_values(fetcher->transfers);
	for (GList *l = all; l != NULL; l = l->next)
		transfer_abort(l->data);
	g_list_free(all);
	/* inside a `done`: on_dispatch finishes the job when it returns */
	if (fetcher->in_callback == 0)
		fetcher_destroy(fetcher);
}

static guint
engine_get_n_running(HealerHttpEngine *fetcher)
{
	g_return_val_if_fail(fetcher != NULL, 0);
	return fetcher->n_running;
}

static guint
engine_get_max_running_seen(HealerHttpEngine *fetcher)
{
	g_return_val_if_fail(fetcher != NULL, 0);
	return fetcher->max_running_seen;
}

static const HealerHttpFuncs funcs = {
        .abi_version = HEALER_HTTP_ABI_VERSION,
        .engine_new = engine_new,
        .engine_free = engine_free,
        .fetch_to_memory = engine_fetch_to_memory,
        .fetch_to_file = engine_fetch_to_file,
        .cancel = engine_cancel,
        .get_n_running = engine_get_n_running,
        .get_max_running_seen = engine_get_max_running_seen,
};

/* The module's one exported symbol (the rest is hidden: -fvisibility=hidden in meson.build). */
G_MODULE_EXPORT const HealerHttpFuncs *healer_http_module_get_funcs(void);

const HealerHttpFuncs *
healer_http_module_get_funcs(void)
{
	return &funcs;
}
