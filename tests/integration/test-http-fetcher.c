/*
 * The HTTP fetcher against a real nginx over TLS on 127.0.0.1 (nginx-server.c:
 * a throwaway CA and server certificate made with the openssl command, nginx
 * with every path in a temporary directory), started once for all cases and
 * killed with the test.  Cut connections go through tests/tools/cut-proxy.
 * Nothing here depends on timing: every wait is "until it happened", bounded
 * only by meson's test timeout.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "healer-error.h"
#include "http-fetcher.h"
#include "nginx-server.h"
#include "test-util.h"

#define MODULE_SIZE (200 * 1024)
#define N_MODULES   6
#define BIG_SIZE    (4 * 1024 * 1024)

static struct {
	NginxServer *nginx;
	const char *www;
	const char *ca_file;
	char *wrong_ca_file;
	int tls_port;
	int plain_port;
	GPid slow_http; /* tests/tools/slow-http, 2 bytes/s, behind nginx at /slow/ */
	GBytes *catalog;
	GBytes *modules[N_MODULES];
} server;

/* ---- the server ---- */

static void
write_text(const char *dir, const char *name, const char *text)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);

	test_write_file(path, (const guint8 *)text, strlen(text));
}

static GBytes *
random_bytes(guint32 seed, gsize size)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
	guint8 *data = g_malloc(size);

	for (gsize i = 0; i < size; i++)
		data[i] = (guint8)g_rand_int(rand);
	return g_bytes_new_take(data, size);
}

static void
write_site(void)
{
	g_autofree char *modules = g_build_filename(server.www, "modules", NULL);
	g_autoptr(GString) catalog = g_string_new("{\"modules\": [\n");

	g_assert_cmpint(g_mkdir_with_parents(modules, 0755), ==, 0);
	for (guint i = 0; i < N_MODULES; i++) {
		g_autofree char *name = g_strdup_printf("m%u.bin", i);
		g_autofree char *path = g_build_filename(modules, name, NULL);

		server.modules[i] = random_bytes(1000 + i, MODULE_SIZE);
		test_write_file(path, g_bytes_get_data(server.modules[i], NULL), MODULE_SIZE);
		g_string_append_printf(catalog, "  {\"path\": \"modules/%s\", \"size\": %d}%s\n", name, MODULE_SIZE,
		                       i + 1 < N_MODULES ? "," : "");
	}
	g_string_append(catalog, "]}\n");
	server.catalog = g_bytes_new(catalog->str, catalog->len);
	write_text(server.www, "catalog.json", catalog->str);

	/* big.bin: what a slow transfer cannot finish in a test's lifetime */
	{
		g_autofree char *path = g_build_filename(server.www, "big.bin", NULL);
		g_autofree guint8 *data = g_malloc(BIG_SIZE);

		for (gsize i = 0; i < BIG_SIZE; i++)
			data[i] = (guint8)((i * 2654435761u) >> 13);
		test_write_file(path, data, BIG_SIZE);
	}
}

static void
start_server(void)
{
	g_autofree char *extra = NULL;
	int slow_port = 0;

	/* Redirects, a copy of the site served without Range support, and a server that trickles. */
	server.slow_http = test_slow_http_start(2, BIG_SIZE, &slow_port);
	server.nginx = nginx_server_new(NULL, NULL);
	server.www = server.nginx->www;
	extra = g_strdup_printf(
	        "    location = /redirect { return 302 /catalog.json; }\n"
	        "    location = /redirect-ftp { return 302 ftp://127.0.0.1/catalog.json; }\n"
	        "    location = /redirect-loop { return 302 /redirect-loop; }\n"
	        "    location /norange/ { alias %s/; max_ranges 0; }\n"
	        "    location = /redirect-http { return 302 http://127.0.0.1:$server_port/catalog.json; }\n"
	        "    location /slow/ { proxy_pass http://127.0.0.1:%d; proxy_buffering off; }\n",
	        server.www, slow_port);
	server.nginx->extra = g_steal_pointer(&extra);
	server.ca_file = server.nginx->ca_file;
	server.wrong_ca_file = nginx_server_make_ca(server.nginx, "other-ca");
	write_site();
	nginx_server_start(server.nginx, 0);
	server.tls_port = server.nginx->tls_port;
	server.plain_port = server.nginx->plain_port;
}

static void
stop_server(void)
{
	g_clear_pointer(&server.nginx, nginx_server_free);
	test_child_stop(server.slow_http);
	g_free(server.wrong_ca_file);
	g_bytes_unref(server.catalog);
	for (guint i = 0; i < N_MODULES; i++)
		g_bytes_unref(server.modules[i]);
}

static char *
url(const char *path)
{
	return nginx_server_url(server.nginx, path);
}

static char *
module_url(guint i)
{
	g_autofree char *path = g_strdup_printf("modules/m%u.bin", i);
	return url(path);
}

static HealerHttpFetcher *
new_fetcher(const char *ca_file, guint max_parallel)
{
	HealerHttpOptions options = {
	        .ca_file = (char *)ca_file,
	        .proxy = (char *)"", /* no *_proxy from the environment */
	        .max_parallel = max_parallel,
	        .allow_http = TRUE, /* cases use plain http too (hangs, the plain cut); https only: its own case */
	};
	return healer_http_fetcher_new(&options);
}

typedef struct {
	int calls;
	guint status;
	char *etag;
	char *last_modified;
	GBytes *body;
	guint64 bytes_received;
	guint64 resumed_from;
	GError *error;
	/* for callbacks that act on the fetcher */
	HealerHttpFetcher **fetcher;
	guint cancel_id;
	gboolean free_fetcher;
} Outcome;

static void
outcome_clear(Outcome *o)
{
	g_clear_pointer(&o->etag, g_free);
	g_clear_pointer(&o->last_modified, g_free);
	g_clear_pointer(&o->body, g_bytes_unref);
	g_clear_error(&o->error);
}

static void
on_done(const HealerHttpResult *result, const GError *error, gpointer user_data)
{
	Outcome *o = user_data;

	o->calls++;
	g_assert_cmpint(o->calls, ==, 1);
	g_assert_true((result == NULL) != (error == NULL));
	if (error != NULL) {
		o->error = g_error_copy(error);
		g_test_message("error: %s", error->message);
	} else {
		o->status = result->status;
		o->etag = g_strdup(result->etag);
		o->last_modified = g_strdup(result->last_modified);
		o->body = result->body != NULL ? g_bytes_ref(result->body) : NULL;
		o->bytes_received = result->bytes_received;
		o->resumed_from = result->resumed_from;
	}
	if (o->cancel_id != 0)
		healer_http_fetcher_cancel(*o->fetcher, o->cancel_id);
	if (o->free_fetcher)
		g_clear_pointer(o->fetcher, healer_http_fetcher_free);
}

static void
wait_for(Outcome *o)
{
	while (o->calls == 0)
		g_main_context_iteration(NULL, TRUE);
}

static gboolean
on_flag(gpointer user_data)
{
	*(gboolean *)user_data = TRUE;
	return G_SOURCE_REMOVE;
}

/* Runs the loop until `ms` passed: only to give wrong callbacks a chance to show up. */
static void
spin(guint ms)
{
	gboolean flag = FALSE;

	g_timeout_add(ms, on_flag, &flag);
	while (!flag)
		g_main_context_iteration(NULL, TRUE);
}

static void
assert_file_equals(const char *path, GBytes *expected)
{
	g_autoptr(GBytes) data = test_read_file(path);

	g_assert_true(g_bytes_equal(data, expected));
}

static guint64
file_size(const char *path)
{
	GStatBuf st;

	g_assert_cmpint(g_stat(path, &st), ==, 0);
	return (guint64)st.st_size;
}

static void
assert_message(const GError *error, const char *expected)
{
	g_assert_nonnull(error);
	if (strstr(error->message, expected) == NULL)
		g_error("\"%s\" does not contain \"%s\"", error->message, expected);
}

/* ---- to memory ---- */

static void
fetch_catalog(const char *etag, const char *last_modified, Outcome *o)
{
	g_autoptr(HealerHttpFetcher) f = new_fetcher(server.ca_file, 0);
	g_autofree char *u = url("catalog.json");

	g_assert_cmpuint(healer_http_fetch_to_memory(f, u, etag, last_modified, 1 << 20, on_done, o), !=, 0);
	wait_for(o);
}

static void
test_memory_etag(void)
{
	Outcome o = {0};

	fetch_catalog(NULL, NULL, &o);
	g_assert_no_error(o.error);
	g_assert_cmpuint(o.status, ==, 200);
	g_assert_nonnull(o.etag);
	g_assert_true(o.etag[0] == '"');
	g_assert_nonnull(o.last_modified);
	g_assert_nonnull(o.body);
	g_assert_true(g_bytes_equal(o.body, server.catalog));
	g_assert_cmpuint(o.bytes_received, ==, g_bytes_get_size(server.catalog));
	g_assert_cmpuint(o.resumed_from, ==, 0);
	outcome_clear(&o);
}

static void
test_memory_if_none_match(void)
{
	Outcome first = {0}, second = {0}, stale = {0};

	fetch_catalog(NULL, NULL, &first);
	g_assert_no_error(first.error);

	fetch_catalog(first.etag, NULL, &second);
	g_assert_no_error(second.error);
	g_assert_cmpuint(second.status, ==, 304);
	g_assert_null(second.body);
	g_assert_cmpuint(second.bytes_received, ==, 0);
	g_assert_cmpstr(second.etag, ==, first.etag);

	fetch_catalog("\"not-the-etag\"", NULL, &stale);
	g_assert_no_error(stale.error);
	g_assert_cmpuint(stale.status, ==, 200);
	g_assert_true(g_bytes_equal(stale.body, server.catalog));

	outcome_clear(&first);
	outcome_clear(&second);
	outcome_clear(&stale);
}

static void
test_memory_if_modified_since(void)
{
	Outcome first = {0}, second = {0};

	fetch_catalog(NULL, NULL, &first);
	g_assert_no_error(first.error);
	fetch_catalog(NULL, first.last_modified, &second);
	g_assert_no_error(second.error);
	g_assert_cmpuint(second.status, ==, 304);
	g_assert_null(second.body);
	outcome_clear(&first);
	outcome_clear(&second);
}

static void
test_memory_too_large(void)
{
	g_autoptr(HealerHttpFetcher) f = new_fetcher(server.ca_file, 0);
	g_autofree char *u = module_url(0);
	g_autofree char *expected = g_strdup_printf("%s: body larger than 1000 bytes", u);
	Outcome o = {0};

	healer_http_fetch_to_memory(f, u, NULL, NULL, 1000, on_done, &o);
	wait_for(&o);
	g_assert_error(o.error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	g_assert_cmpstr(o.error->message, ==, expected);
	outcome_clear(&o);
}

static void
test_redirects(void)
{
	g_autoptr(HealerHttpFetcher) f = new_fetcher(server.ca_file, 0);
	g_autofree char *ok = url("redirect");
	g_autofree char *ftp = url("redirect-ftp");
	g_autofree char *loop = url("redirect-loop");
	Outcome o1 = {0}, o2 = {0}, o3 = {0};

	healer_http_fetch_to_memory(f, ok, NULL, NULL, 1 << 20, on_done, &o1);
	healer_http_fetch_to_memory(f, ftp, NULL, NULL, 1 << 20, on_done, &o2);
	healer_http_fetch_to_memory(f, loop, NULL, NULL, 1 << 20, on_done, &o3);
	wait_for(&o1);
	wait_for(&o2);
	wait_for(&o3);
	g_assert_no_error(o1.error);
	g_assert_cmpuint(o1.status, ==, 200);
	g_assert_true(g_bytes_equal(o1.body, server.catalog));
	g_assert_error(o2.error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	assert_message(o2.error, ftp);
	g_assert_error(o3.error, HEALER_ERROR, HEALER_ERROR_FAILED);
	assert_message(o3.error, loop);
	outcome_clear(&o1);
	outcome_clear(&o2);
	outcome_clear(&o3);
}

/*
 * https only (allow_http FALSE, healerd's default): an http URL is refused before any connection,
 * saying why, to memory and to file; a redirect from https to http is refused too.
 */
static void
test_https_only(void)
{
	HealerHttpOptions options = {.ca_file = (char *)server.ca_file, .proxy = (char *)""};
	g_autoptr(HealerHttpFetcher) f = healer_http_fetcher_new(&options);
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *path = g_build_filename(dir, "m.partial", NULL);
	g_autofree char *plain = g_strdup_printf("http://127.0.0.1:%d/catalog.json", server.plain_port);
	g_autofree char *redirect = url("redirect-http");
	g_autofree char *expected = g_strdup_printf("%s: plain http is not allowed, only https", plain);
	g_autofree char *tls = url("catalog.json");
	g_autofree char *redirected =
	        g_strdup_printf(": redirected to http://127.0.0.1:%d/catalog.json: ", server.tls_port);
	Outcome o1 = {0}, o2 = {0}, o3 = {0}, o4 = {0};

	healer_http_fetch_to_memory(f, plain, NULL, NULL, 1 << 20, on_done, &o1);
	healer_http_fetch_to_file(f, plain, path, 0, on_done, &o2);
	wait_for(&o1);
	wait_for(&o2);
	g_assert_error(o1.error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_assert_cmpstr(o1.error->message, ==, expected);
	g_assert_error(o2.error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_assert_cmpstr(o2.error->message, ==, expected);
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));

	healer_http_fetch_to_memory(f, redirect, NULL, NULL, 1 << 20, on_done, &o3);
	wait_for(&o3);
	/* Refused by scheme (followed, plain http to the TLS port would be nginx's HTTP 400: FAILED). */
	g_assert_error(o3.error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	assert_message(o3.error, redirect);
	assert_message(o3.error, redirected);

	/* https itself is fine. */
	healer_http_fetch_to_memory(f, tls, NULL, NULL, 1 << 20, on_done, &o4);
	wait_for(&o4);
	g_assert_no_error(o4.error);
	g_assert_true(g_bytes_equal(o4.body, server.catalog));
	outcome_clear(&o1);
	outcome_clear(&o2);
	outcome_clear(&o3);
	outcome_clear(&o4);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/*
 * The deadline: tests/tools/slow-http behind nginx answers at once and sends its body at 2 bytes/s,
 * never below curl's stall limit (1 byte/s), so only transfer_timeout_s ends it: "URL: no complete
 * answer within N s", IO (worth retrying), to memory and to file.  With one transfer at a time, the
 * fetch queued behind the slow one starts when the deadline ends it, and completes.
 */
static void
test_deadline(void)
{
	HealerHttpOptions options = {
	        .ca_file = (char *)server.ca_file,
	        .proxy = (char *)"",
	        .max_parallel = 1,
	        .transfer_timeout_s = 2,
	};
	g_autoptr(HealerHttpFetcher) f = healer_http_fetcher_new(&options);
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *path = g_build_filename(dir, "big.partial", NULL);
	g_autofree char *slow = url("slow/catalog.json");
	g_autofree char *expected = g_strdup_printf("%s: no complete answer within 2 s", slow);
	g_autofree char *catalog = url("catalog.json");
	Outcome o1 = {0}, o2 = {0}, o3 = {0};

	healer_http_fetch_to_memory(f, slow, NULL, NULL, BIG_SIZE, on_done, &o1);
	healer_http_fetch_to_file(f, slow, path, BIG_SIZE, on_done, &o2);
	healer_http_fetch_to_memory(f, catalog, NULL, NULL, 1 << 20, on_done, &o3);
	wait_for(&o1);
	g_assert_error(o1.error, HEALER_ERROR, HEALER_ERROR_IO);
	g_assert_cmpstr(o1.error->message, ==, expected);
	g_assert_cmpint(o2.calls, ==, 0);
	g_assert_cmpint(o3.calls, ==, 0);
	wait_for(&o2);
	g_assert_error(o2.error, HEALER_ERROR, HEALER_ERROR_IO);
	g_assert_cmpstr(o2.error->message, ==, expected);
	g_assert_cmpuint(file_size(path), <, BIG_SIZE);
	wait_for(&o3);
	g_assert_no_error(o3.error);
	g_assert_true(g_bytes_equal(o3.body, server.catalog));
	g_assert_cmpuint(healer_http_fetcher_get_n_running(f), ==, 0);
	outcome_clear(&o1);
	outcome_clear(&o2);
	outcome_clear(&o3);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* ---- to file ---- */

static void
fetch_file(HealerHttpFetcher *f, const char *u, const char *path, guint64 expected_size, Outcome *o)
{
	g_assert_cmpuint(healer_http_fetch_to_file(f, u, path, expected_size, on_done, o), !=, 0);
	wait_for(o);
}

static void
test_file_fresh(void)
{
	g_autoptr(HealerHttpFetcher) f = new_fetcher(server.ca_file, 0);
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *path = g_build_filename(dir, "m0.partial", NULL);
	g_autofree char *u = module_url(0);
	Outcome o = {0};

	fetch_file(f, u, path, MODULE_SIZE, &o);
	g_assert_no_error(o.error);
	g_assert_cmpuint(o.status, ==, 200);
	g_assert_cmpuint(o.resumed_from, ==, 0);
	g_assert_cmpuint(o.bytes_received, ==, MODULE_SIZE);
	g_assert_null(o.body);
	assert_file_equals(path, server.modules[0]);
	outcome_clear(&o);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_file_resume(void)
{
	g_autoptr(HealerHttpFetcher) f = new_fetcher(server.ca_file, 0);
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *path = g_build_filename(dir, "m1.partial", NULL);
	g_autofree char *u = module_url(1);
	const gsize k = 70001;
	Outcome o = {0};

	test_write_file(path, g_bytes_get_data(server.modules[1], NULL), k);
	fetch_file(f, u, path, 0, &o);
	g_assert_no_error(o.error);
	g_assert_cmpuint(o.status, ==, 206);
	g_assert_cmpuint(o.resumed_from, ==, k);
	g_assert_cmpuint(o.bytes_received, ==, MODULE_SIZE - k);
	assert_file_equals(path, server.modules[1]);
	outcome_clear(&o);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* A server that ignores Range answers 200: the partial file starts over. */
static void
test_file_restart_on_200(void)
{
	g_autoptr(HealerHttpFetcher) f = new_fetcher(server.ca_file, 0);
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *path = g_build_filename(dir, "m2.partial", NULL);
	g_autofree char *u = url("norange/modules/m2.bin");
	Outcome o = {0};

	test_write_file(path, (const guint8 *)"garbage that is not the module", 30);
	fetch_file(f, u, path, MODULE_SIZE, &o);
	g_assert_no_error(o.error);
	g_assert_cmpuint(o.status, ==, 200);
	g_assert_cmpuint(o.resumed_from, ==, 0);
	g_assert_cmpuint(o.bytes_received, ==, MODULE_SIZE);
	assert_file_equals(path, server.modules[2]);
	outcome_clear(&o);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* The file is all there already: the 416 counts as done, with the expected size or the server's total. */
static void
test_file_already_complete(void)
{
	g_autoptr(HealerHttpFetcher) f = new_fetcher(server.ca_file, 0);
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *path = g_build_filename(dir, "m3.partial", NULL);
	g_autofree char *u = module_url(3);
	Outcome o1 = {0}, o2 = {0};

	test_write_file(path, g_bytes_get_data(server.modules[3], NULL), MODULE_SIZE);
	fetch_file(f, u, path, MODULE_SIZE, &o1);
	g_assert_no_error(o1.error);
	g_assert_cmpuint(o1.status, ==, 416);
	g_assert_cmpuint(o1.bytes_received, ==, 0);
	g_assert_cmpuint(o1.resumed_from, ==, MODULE_SIZE);
	fetch_file(f, u, path, 0, &o2);
	g_assert_no_error(o2.error);
	g_assert_cmpuint(o2.status, ==, 416);
	assert_file_equals(path, server.modules[3]);
	outcome_clear(&o1);
	outcome_clear(&o2);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_file_more_than_expected(void)
{
	g_autoptr(HealerHttpFetcher) f = new_fetcher(server.ca_file, 0);
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *path = g_build_filename(dir, "m4.partial", NULL);
	g_autofree char *big = g_build_filename(dir, "big.partial", NULL);
	g_autofree char *u = module_url(4);
	Outcome o1 = {0}, o2 = {0};

	fetch_file(f, u, path, MODULE_SIZE - 1, &o1);
	g_assert_error(o1.error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	assert_message(o1.error, "more than the expected");
	g_assert_cmpuint(file_size(path), <, MODULE_SIZE);

	/* a partial file already too big is refused before anything is sent */
	test_write_file(big, g_bytes_get_data(server.modules[4], NULL), 1000);
	fetch_file(f, u, big, 999, &o2);
	g_assert_error(o2.error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	assert_message(o2.error, big);
	g_assert_cmpuint(file_size(big), ==, 1000);
	outcome_clear(&o1);
	outcome_clear(&o2);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* ---- cut connections ---- */

static void
check_cut_and_resume(const char *scheme, int target_port, guint module, const char *expected_message)
{
	g_autoptr(HealerHttpFetcher) f = new_fetcher(server.ca_file, 0);
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *path = g_build_filename(dir, "cut.partial", NULL);
	int proxy_port = 0;
	GPid proxy = test_cut_proxy_start(target_port, 1, 100000, &proxy_port);
	g_autofree char *u = g_strdup_printf("%s://127.0.0.1:%d/modules/m%u.bin", scheme, proxy_port, module);
	Outcome first = {0}, second = {0};
	guint64 partial;

	fetch_file(f, u, path, MODULE_SIZE, &first);
	g_assert_error(first.error, HEALER_ERROR, HEALER_ERROR_IO);
	assert_message(first.error, u);
	if (expected_message != NULL)
		assert_message(first.error, expected_message);
	partial = file_size(path);
	g_assert_cmpuint(partial, >, 0);
	g_assert_cmpuint(partial, <, MODULE_SIZE);

	fetch_file(f, u, path, MODULE_SIZE, &second);
	g_assert_no_error(second.error);
	g_assert_cmpuint(second.status, ==, 206);
	g_assert_cmpuint(second.resumed_from, ==, partial);
	g_assert_cmpuint(second.bytes_received, ==, MODULE_SIZE - partial);
	assert_file_equals(path, server.modules[module]);

	test_child_stop(proxy);
	outcome_clear(&first);
	outcome_clear(&second);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_cut_plain(void)
{
	check_cut_and_resume("http", server.plain_port, 5, "transfer closed with ");
}

static void
test_cut_tls(void)
{
	check_cut_and_resume("https", server.tls_port, 4, NULL);
}

/* ---- errors ---- */

static void
test_wrong_ca(void)
{
	g_autoptr(HealerHttpFetcher) f = new_fetcher(server.wrong_ca_file, 0);
	g_autofree char *u = url("catalog.json");
	g_autofree char *expected = g_strdup_printf("%s: TLS certificate verify failed: ", u);
	Outcome o = {0};

	healer_http_fetch_to_memory(f, u, NULL, NULL, 1 << 20, on_done, &o);
	wait_for(&o);
	g_assert_error(o.error, HEALER_ERROR, HEALER_ERROR_FAILED);
	g_assert_true(g_str_has_prefix(o.error->message, expected));
	outcome_clear(&o);
}

static void
test_not_found(void)
{
	g_autoptr(HealerHttpFetcher) f = new_fetcher(server.ca_file, 0);
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *path = g_build_filename(dir, "missing.partial", NULL);
	g_autofree char *u = url("missing.json");
	g_autofree char *expected = g_strdup_printf("%s: HTTP 404", u);
	Outcome o1 = {0}, o2 = {0};

	healer_http_fetch_to_memory(f, u, NULL, NULL, 1 << 20, on_done, &o1);
	wait_for(&o1);
	g_assert_error(o1.error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
	g_assert_cmpstr(o1.error->message, ==, expected);

	/* to a file: the error page is not written */
	fetch_file(f, u, path, 0, &o2);
	g_assert_error(o2.error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
	g_assert_cmpstr(o2.error->message, ==, expected);
	g_assert_cmpuint(file_size(path), ==, 0);
	outcome_clear(&o1);
	outcome_clear(&o2);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_connection_refused(void)
{
	g_autoptr(HealerHttpFetcher) f = new_fetcher(server.ca_file, 0);
	g_autofree char *u = g_strdup_printf("https://127.0.0.1:%d/catalog.json", test_free_port());
	g_autofree char *expected = g_strdup_printf("%s: connection refused", u);
	Outcome o = {0};

	healer_http_fetch_to_memory(f, u, NULL, NULL, 1 << 20, on_done, &o);
	wait_for(&o);
	g_assert_error(o.error, HEALER_ERROR, HEALER_ERROR_IO);
	g_assert_cmpstr(o.error->message, ==, expected);
	outcome_clear(&o);
}

/* Errors found before anything is sent still reach `done` from the main loop, not from the call. */
static void
test_immediate_errors(void)
{
	g_autoptr(HealerHttpFetcher) f = new_fetcher(server.ca_file, 0);
	g_autofree char *u = url("catalog.json");
	Outcome o1 = {0}, o2 = {0};

	healer_http_fetch_to_file(f, u, "/nonexistent-dir/x.partial", 0, on_done, &o1);
	healer_http_fetch_to_memory(f, u, "\"a\"\r\nX-Injected: 1", NULL, 1 << 20, on_done, &o2);
	g_assert_cmpint(o1.calls, ==, 0);
	g_assert_cmpint(o2.calls, ==, 0);
	wait_for(&o1);
	wait_for(&o2);
	g_assert_error(o1.error, HEALER_ERROR, HEALER_ERROR_IO);
	assert_message(o1.error, "/nonexistent-dir/x.partial");
	g_assert_error(o2.error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	outcome_clear(&o1);
	outcome_clear(&o2);
}

/* ---- parallelism, cancelling, freeing ---- */

static void
test_max_parallel(void)
{
	g_autoptr(HealerHttpFetcher) f = new_fetcher(server.ca_file, 2);
	g_autofree char *dir = test_tmpdir_new();
	Outcome o[N_MODULES] = {0};
	char *paths[N_MODULES];

	for (guint i = 0; i < N_MODULES; i++) {
		g_autofree char *name = g_strdup_printf("m%u.partial", i);
		g_autofree char *u = module_url(i);

		paths[i] = g_build_filename(dir, name, NULL);
		g_assert_cmpuint(healer_http_fetch_to_file(f, u, paths[i], MODULE_SIZE, on_done, &o[i]), !=, 0);
		g_assert_cmpuint(healer_http_fetcher_get_n_running(f), <=, 2);
	}
	for (guint i = 0; i < N_MODULES; i++)
		wait_for(&o[i]);
	for (guint i = 0; i < N_MODULES; i++) {
		g_assert_no_error(o[i].error);
		g_assert_cmpuint(o[i].status, ==, 200);
		assert_file_equals(paths[i], server.modules[i]);
		outcome_clear(&o[i]);
		g_free(paths[i]);
	}
	g_assert_cmpuint(healer_http_fetcher_get_max_running_seen(f), ==, 2);
	g_assert_cmpuint(healer_http_fetcher_get_n_running(f), ==, 0);
	test_tmpdir_free(g_steal_pointer(&dir));
}

typedef struct {
	HealerHttpFetcher *fetcher;
	guint id;
} CancelLater;

static gboolean
on_cancel_later(gpointer user_data)
{
	CancelLater *c = user_data;

	healer_http_fetcher_cancel(c->fetcher, c->id);
	return G_SOURCE_REMOVE;
}

static void
test_cancel(void)
{
	g_autoptr(HealerHttpFetcher) f = new_fetcher(server.ca_file, 1);
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *path = g_build_filename(dir, "hang.partial", NULL);
	g_autofree char *catalog = url("catalog.json");
	g_autofree char *hang = NULL;
	Outcome running = {0}, queued = {0}, after = {0};
	CancelLater later = {.fetcher = f};
	int port, blackhole = test_blackhole_listen(&port);

	hang = g_strdup_printf("http://127.0.0.1:%d/never", port);
	/* with one transfer at a time: one running (its server never answers), two queued */
	later.id = healer_http_fetch_to_file(f, hang, path, 0, on_done, &running);
	guint queued_id = healer_http_fetch_to_memory(f, catalog, NULL, NULL, 1 << 20, on_done, &queued);
	healer_http_fetch_to_memory(f, catalog, NULL, NULL, 1 << 20, on_done, &after);
	g_assert_cmpuint(healer_http_fetcher_get_n_running(f), ==, 1);

	healer_http_fetcher_cancel(f, queued_id);
	healer_http_fetcher_cancel(f, queued_id); /* twice: ignored */
	healer_http_fetcher_cancel(f, 999999);    /* unknown: ignored */
	g_timeout_add(50, on_cancel_later, &later);
	wait_for(&after);
	g_assert_no_error(after.error);
	g_assert_true(g_bytes_equal(after.body, server.catalog));
	spin(50);
	g_assert_cmpint(running.calls, ==, 0);
	g_assert_cmpint(queued.calls, ==, 0);
	g_assert_cmpuint(file_size(path), ==, 0);
	close(blackhole);
	outcome_clear(&after);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* From a `done`: cancelling another fetch, then freeing the fetcher with fetches still in flight. */
static void
test_cancel_and_free_from_done(void)
{
	HealerHttpFetcher *f = new_fetcher(server.ca_file, 2);
	g_autofree char *catalog = url("catalog.json");
	g_autofree char *hang = NULL;
	Outcome first = {0}, second = {0}, hanging = {0}, hanging2 = {0}, queued = {0};
	int port, blackhole = test_blackhole_listen(&port);

	hang = g_strdup_printf("http://127.0.0.1:%d/never", port);
	first.fetcher = &f;
	first.cancel_id = healer_http_fetch_to_memory(f, hang, NULL, NULL, 1 << 20, on_done, &hanging);
	healer_http_fetch_to_memory(f, catalog, NULL, NULL, 1 << 20, on_done, &first);
	wait_for(&first);
	g_assert_no_error(first.error);
	g_assert_nonnull(f);

	second.fetcher = &f;
	second.free_fetcher = TRUE;
	healer_http_fetch_to_memory(f, hang, NULL, NULL, 1 << 20, on_done, &hanging2);
	healer_http_fetch_to_memory(f, catalog, NULL, NULL, 1 << 20, on_done, &second);
	healer_http_fetch_to_memory(f, catalog, NULL, NULL, 1 << 20, on_done, &queued);
	wait_for(&second);
	g_assert_null(f);
	spin(50);
	g_assert_cmpint(hanging.calls, ==, 0);
	g_assert_cmpint(hanging2.calls, ==, 0);
	g_assert_cmpint(queued.calls, ==, 0);
	close(blackhole);
	outcome_clear(&first);
	outcome_clear(&second);
}

static gboolean
on_free_later(gpointer user_data)
{
	g_clear_pointer((HealerHttpFetcher **)user_data, healer_http_fetcher_free);
	return G_SOURCE_REMOVE;
}

/*
 * Freed with transfers connecting, receiving (4 MiB at 4 KiB/s: curl reads
 * a first burst, then waits) and queued: no callback after the free, nothing
 * leaked.
 */
static void
test_free_in_flight(void)
{
	HealerHttpOptions options = {
	        .ca_file = (char *)server.ca_file,
	        .proxy = (char *)"",
	        .max_parallel = 3,
	        .max_bytes_per_second = 4096,
	        .allow_http = TRUE,
	};
	HealerHttpFetcher *f = healer_http_fetcher_new(&options);
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *big = url("big.bin");
	Outcome o[5] = {0};
	int port, blackhole = test_blackhole_listen(&port);
	g_autofree char *hang = g_strdup_printf("http://127.0.0.1:%d/never", port);
	int calls_before = 0, calls_after = 0;

	for (guint i = 0; i < 3; i++) {
		g_autofree char *name = g_strdup_printf("big%u.partial", i);
		g_autofree char *path = g_build_filename(dir, name, NULL);
		healer_http_fetch_to_file(f, big, path, BIG_SIZE, on_done, &o[i]);
	}
	healer_http_fetch_to_memory(f, hang, NULL, NULL, 1 << 20, on_done, &o[3]);
	healer_http_fetch_to_memory(f, big, NULL, NULL, BIG_SIZE, on_done, &o[4]);
	g_assert_cmpuint(healer_http_fetcher_get_n_running(f), ==, 3);
	g_timeout_add(100, on_free_later, &f);
	while (f != NULL)
		g_main_context_iteration(NULL, TRUE);
	for (guint i = 0; i < 5; i++)
		calls_before += o[i].calls;
	spin(50);
	for (guint i = 0; i < 5; i++) {
		calls_after += o[i].calls;
		outcome_clear(&o[i]);
	}
	g_assert_cmpint(calls_after, ==, calls_before);
	g_assert_cmpint(calls_before, ==, 0);
	close(blackhole);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* Runs the main loop until nothing is left to dispatch. */
static void
drain_main_loop(void)
{
	while (g_main_context_iteration(NULL, FALSE))
		;
}

/*
 * Without healerd-http.so (libcurl is loaded through it on the first fetch):
 * each fetch fails with "URL: cannot load PATH: ...", from the main loop
 * like any error; cancelling or freeing keeps such a failure silent; and the
 * next fetch tries the load again, so a module that turns up later is used.
 * In a subprocess, since a module once loaded stays loaded.
 */
static void
test_module_missing(void)
{
	if (g_test_subprocess()) {
		g_autofree char *dir = test_tmpdir_new();
		g_autofree char *partial = g_build_filename(dir, "x.partial", NULL);
		g_autofree char *modules = g_strdup(g_getenv("HEALER_MODULE_DIR"));
		const char *refused = "http://127.0.0.1:1/catalog.json";
		HealerHttpFetcher *f = new_fetcher(NULL, 0);
		HealerHttpFetcher *dropped = new_fetcher(NULL, 0);
		Outcome o1 = {0}, o2 = {0}, o3 = {0}, o4 = {0}, o5 = {0};
		guint id1, id2, id3;

		g_assert_nonnull(modules);
		g_setenv("HEALER_MODULE_DIR", dir, TRUE);
		id1 = healer_http_fetch_to_memory(f, refused, NULL, NULL, 1024, on_done, &o1);
		id2 = healer_http_fetch_to_file(f, refused, partial, 0, on_done, &o2);
		id3 = healer_http_fetch_to_memory(f, refused, NULL, NULL, 1024, on_done, &o3);
		g_assert_cmpuint(id1, !=, 0);
		g_assert_cmpuint(id2, !=, id1);
		g_assert_cmpuint(id3, !=, id2);
		healer_http_fetcher_cancel(f, id3);
		healer_http_fetch_to_memory(dropped, refused, NULL, NULL, 1024, on_done, &o5);
		healer_http_fetcher_free(dropped);
		g_assert_cmpint(o1.calls, ==, 0);
		wait_for(&o1);
		wait_for(&o2);
		drain_main_loop();
		g_assert_error(o1.error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
		assert_message(o1.error, "http://127.0.0.1:1/catalog.json: cannot load ");
		assert_message(o1.error, "healerd-http.so: No such file or directory");
		g_assert_error(o2.error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
		g_assert_false(g_file_test(partial, G_FILE_TEST_EXISTS));
		g_assert_cmpint(o3.calls, ==, 0);
		g_assert_cmpint(o5.calls, ==, 0);
		g_assert_cmpuint(healer_http_fetcher_get_n_running(f), ==, 0);

		/* The module is back: the same fetcher reaches libcurl (and port 1 refuses). */
		g_setenv("HEALER_MODULE_DIR", modules, TRUE);
		g_assert_cmpuint(healer_http_fetch_to_memory(f, refused, NULL, NULL, 1024, on_done, &o4), >, id3);
		wait_for(&o4);
		g_assert_error(o4.error, HEALER_ERROR, HEALER_ERROR_IO);
		g_assert_null(strstr(o4.error->message, "cannot load"));
		healer_http_fetcher_free(f);
		outcome_clear(&o1);
		outcome_clear(&o2);
		outcome_clear(&o4);
		test_tmpdir_free(g_steal_pointer(&dir));
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
	g_test_trap_assert_passed();
}

int
main(int argc, char **argv)
{
	int result;

	g_test_init(&argc, &argv, NULL);
	if (!nginx_server_available()) {
		/* TAP: the whole program skipped */
		printf("1..0 # SKIP nginx or openssl not installed (scripts/setup.sh installs them)\n");
		return 0;
	}
	/* A subprocess runs only test_module_missing, which needs no server. */
	if (!g_test_subprocess())
		start_server();

	g_test_add_func("/http/memory/etag", test_memory_etag);
	g_test_add_func("/http/memory/if-none-match", test_memory_if_none_match);
	g_test_add_func("/http/memory/if-modified-since", test_memory_if_modified_since);
	g_test_add_func("/http/memory/too-large", test_memory_too_large);
	g_test_add_func("/http/memory/redirects", test_redirects);
	g_test_add_func("/http/https-only", test_https_only);
	g_test_add_func("/http/deadline", test_deadline);
	g_test_add_func("/http/file/fresh", test_file_fresh);
	g_test_add_func("/http/file/resume", test_file_resume);
	g_test_add_func("/http/file/restart-on-200", test_file_restart_on_200);
	g_test_add_func("/http/file/already-complete", test_file_already_complete);
	g_test_add_func("/http/file/more-than-expected", test_file_more_than_expected);
	g_test_add_func("/http/cut/plain", test_cut_plain);
	g_test_add_func("/http/cut/tls", test_cut_tls);
	g_test_add_func("/http/error/wrong-ca", test_wrong_ca);
	g_test_add_func("/http/error/not-found", test_not_found);
	g_test_add_func("/http/error/connection-refused", test_connection_refused);
	g_test_add_func("/http/error/immediate", test_immediate_errors);
	g_test_add_func("/http/parallel/max-parallel", test_max_parallel);
	g_test_add_func("/http/cancel/cancel", test_cancel);
	g_test_add_func("/http/cancel/from-done", test_cancel_and_free_from_done);
	g_test_add_func("/http/cancel/free-in-flight", test_free_in_flight);

	g_test_add_func("/http/module-missing", test_module_missing);

	result = g_test_run();
	if (!g_test_subprocess())
		stop_server();
	return result;
}
