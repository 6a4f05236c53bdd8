/*
 * HTTP(S) downloads on the main loop: libcurl's multi *socket* API driven by
 * GLib sources (one fd source per socket curl uses, one timer), so a fetch
 * never blocks the loop.  The only blocking calls made on the loop are local
 * file writes (write(2), ftruncate(2)) and one fsync(2) per finished
 * to-file fetch.
 *
 * Guarantees:
 *  - TLS is always verified (peer and host name); only https URLs are
 *    fetched unless allow_http; redirects are followed (at most 5), only to
 *    those same schemes; no signals (CURLOPT_NOSIGNAL).
 *  - No transfer takes longer than transfer_timeout_s from its start
 *    (connecting included), however slowly the server trickles bytes in.
 *  - At most max_parallel transfers run at once; the rest wait in a queue,
 *    first in, first started.
 *  - `done` is called exactly once per fetch that is neither cancelled nor
 *    freed, always from the main loop (an idle source of the thread-default
 *    context at healer_http_fetcher_new()), never from inside
 *    healer_http_fetch_*() or a libcurl callback.  From `done` it is safe to
 *    start fetches, cancel others, and free the fetcher.
 *  - healer_http_fetcher_cancel() and healer_http_fetcher_free() are
 *    synchronous and silent: a cancelled fetch's `done` is never called,
 *    and neither is any `done` after the fetcher is freed.  A to-file
 *    fetch's partial file is left as it is, ready to resume.
 *
 * Errors are HEALER_ERROR, the message "URL: cause":
 *   HEALER_ERROR_IO                network faults, worth retrying: connection refused or reset,
 *                                  cut connections ("transfer closed with N bytes remaining to
 *                                  read"), timeouts and stalls, DNS, HTTP 408/429/5xx, the
 *                                  deadline ("URL: no complete answer within N s"); also local
 *                                  file errors ("PATH: ...")
 *   HEALER_ERROR_NOT_FOUND         HTTP 404 and 410 ("URL: HTTP 404")
 *   HEALER_ERROR_FAILED            TLS failures ("URL: TLS certificate verify failed: ..."), other
 *                                  HTTP statuses ("URL: HTTP 403"), too many redirects
 *   HEALER_ERROR_INVALID_DATA      "body larger than N bytes", more than expected_size, a 206
 *                                  that does not resume where asked, a partial file already
 *                                  larger than expected_size
 *   HEALER_ERROR_INVALID_ARGUMENT  malformed URL, a scheme other than https (or http when
 *                                  allowed; also when redirected to one), CR/LF in a validator
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
	char *ca_file;                /* NULL: system default CA bundle; else only this file's CAs are trusted */
	char *proxy;                  /* NULL: libcurl's default (the *_proxy environment variables); "": no proxy;
	                                 else a proxy URL */
	guint max_parallel;           /* at most this many transfers at once (the rest queue); 0 = 4 */
	guint64 max_bytes_per_second; /* per transfer receive cap, 0 = none */
	guint connect_timeout_s;      /* 0 = 30 */
	guint stall_timeout_s;        /* abort when below 1 byte/s for this long; 0 = 60 */
	guint transfer_timeout_s;     /* abort a transfer still running this long after it started; 0 = 120 */
	gboolean allow_http;          /* also fetch (and follow redirects to) http:// URLs; FALSE: https only */
} HealerHttpOptions;

typedef struct _HealerHttpFetcher HealerHttpFetcher;

/* `options` may be NULL (all defaults); it is copied. */
HealerHttpFetcher *healer_http_fetcher_new(const HealerHttpOptions *options);

/*
 * Cancels every fetch (no `done` is called for any of them, see above) and
 * frees the fetcher.  May be called from a `done` callback.
 */
void healer_http_fetcher_free(HealerHttpFetcher *fetcher);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerHttpFetcher, healer_http_fetcher_free)

typedef struct {
	guint status;           /* final HTTP status: 200, 206, 304 or, to-file, 416 (see below) */
	char *etag;             /* the response's ETag (as sent, quotes included), or NULL */
	char *last_modified;    /* the response's Last-Modified, or NULL */
	GBytes *body;           /* to-memory fetches: the body (NULL for 304); to-file: NULL */
	guint64 bytes_received; /* this transfer's body bytes */
	guint64 resumed_from;   /* to-file fetches: where this transfer started writing (0 = from the start) */
} HealerHttpResult;

/*
 * `result` (NULL on error) and `error` (NULL on success) belong to the
 * fetcher and are valid only during the call (g_bytes_ref() the body to
 * keep it).
 */
typedef void (*HealerHttpDoneFunc)(const HealerHttpResult *result, const GError *error, gpointer user_data);

/*
 * GET `url` into memory.  Bodies larger than `max_size` are refused (as soon
 * as Content-Length or the bytes received show it).  When `etag` or
 * `last_modified` is given the request is conditional (If-None-Match,
 * If-Modified-Since; pass them as the server sent them) and a 304 is a
 * success with status 304 and no body.  Any status but 200 and 304 is an
 * error.  Returns the fetch's id (never 0); errors, even immediate ones, reach
 * `done` from the main loop.
 */
guint healer_http_fetch_to_memory(HealerHttpFetcher *fetcher, const char *url, const char *etag,
                                  const char *last_modified, guint64 max_size, HealerHttpDoneFunc done,
                                  gpointer user_data);

/*
 * GET `url` into `partial_path` (created 0644 when missing), resuming: when it
 * holds N > 0 bytes the request carries "Range: bytes=N-", and
 *   206  must start at N (Content-Range), the body is appended: resumed_from = N
 *   200  the file is truncated and written from the start: resumed_from = 0
 *   416  counts as done (status 416, nothing written, resumed_from = N) when
 *        N >= expected_size, or with expected_size unknown when the 416's
 *        Content-Range says the resource has exactly N bytes; else an error.
 * `expected_size` (0 = unknown) bounds the file: a partial file already
 * larger, or a response that would make it larger, is an error.  On success
 * the file is fsynced before `done`.  On errors the bytes written stay, for
 * the next attempt to resume.  The caller verifies the content and renames.
 */
guint healer_http_fetch_to_file(HealerHttpFetcher *fetcher, const char *url, const char *partial_path,
                                guint64 expected_size, HealerHttpDoneFunc done, gpointer user_data);

/* Cancels a fetch, queued or running: its `done` is not called.  Unknown or finished ids are ignored. */
void healer_http_fetcher_cancel(HealerHttpFetcher *fetcher, guint id);

/* For tests and status: transfers running now, and the most that ever ran at once. */
guint healer_http_fetcher_get_n_running(HealerHttpFetcher *fetcher);
guint healer_http_fetcher_get_max_running_seen(HealerHttpFetcher *fetcher);

G_END_DECLS
