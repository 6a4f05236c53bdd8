/*
 * Firmware distribution from an upstream end to end (docs/upstream.md): real
 * healerd processes against a real nginx over TLS (nginx-server.c, a
 * throwaway CA) serving a copy of the firmware build's modules directory
 * (every module, releases.json, catalog.json and its signature by the
 * development key).  Each gateway's own module directory is empty; its
 * device (weather: release 2.0.0, app sensor, which needs 2.1.0) can only heal
 * with modules fetched from the upstream.
 *
 * - on-demand: the catalog is accepted, the 2.1.0 modules are fetched (200),
 *   the device heals; `healerctl refresh` gets a 304: "(unchanged)".
 * - cut: tests/tools/cut-proxy cuts the first connections; the cut module
 *   is resumed (206), stored with the right SHA-256, the device heals.
 * - down-then-up: no server at first: retries, the device blocked; nginx
 *   starts on the port: the catalog is accepted, the device heals.
 * - tampered module: "SHA-256 mismatch", never stored, the device blocked;
 *   the file is fixed on the server: the next retry heals it.
 * - tampered catalog: "altered after signing", nothing fetched, blocked.
 *
 * Waits are on healerd's journal lines, bounded generously (healerd may run
 * under valgrind); no case depends on timing.
 */
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "gateway-harness.h"
#include "healerd-process.h"
#include "nginx-server.h"
#include "test-util.h"

#define LOG_TIMEOUT_MS  120000
#define HEAL_TIMEOUT_MS 240000

static char *tmpdir;

typedef struct {
	char *dir;     /* the gateway's: ports, state, config, log */
	char *state;   /* its state directory */
	char *modules; /* its own module directory: empty */
	char *www;     /* the upstream tree nginx serves */
	NginxServer *nginx;
	HealerdProcess *healerd;
	Device device;
	const char *upstream_extra; /* more [upstream] lines, or NULL */
	Bus bus;
} Gateway;

static void
gateway_clear(Gateway *g)
{
	g_clear_pointer(&g->healerd, healerd_process_free);
	device_clear(&g->device);
	g_clear_pointer(&g->nginx, nginx_server_free);
	bus_stop(&g->bus);
	g_clear_pointer(&g->dir, g_free);
	g_clear_pointer(&g->state, g_free);
	g_clear_pointer(&g->modules, g_free);
	g_clear_pointer(&g->www, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Gateway, gateway_clear)

/* The case's directory, an empty module directory, and the upstream tree: a copy of the firmware build's. */
static void
gateway_init(Gateway *g, const char *name)
{
	g->dir = g_build_filename(tmpdir, name, NULL);
	g->state = g_build_filename(g->dir, "state", NULL);
	g->modules = g_build_filename(g->dir, "no-modules", NULL);
	g->www = g_build_filename(g->dir, "upstream", NULL);
	g_assert_cmpint(g_mkdir_with_parents(g->modules, 0755), ==, 0);
	test_copy_tree(test_program("HEALER_FIRMWARE_MODULES"), g->www, NULL);
	g->nginx = nginx_server_new(g->www, NULL);
}

/* healerd with [upstream] url (and the test CA), the device on its port; on the private bus when `bus`. */
static void
gateway_start(Gateway *g, const char *url, gboolean bus)
{
	g_autofree char *lines =
	        g_strdup_printf("[upstream]\n"
	                        "url=%s\n"
	                        "ca-file=%s\n"
	                        "proxy=\n"
	                        "retry-min-seconds=1\n"
	                        "retry-max-seconds=2\n"
	                        "%s",
	                        url, g->nginx->ca_file, g->upstream_extra != NULL ? g->upstream_extra : "");

	g->healerd = healerd_process_new(g->dir, g->modules, lines);
	if (bus)
		g->healerd->bus_args = g_strdup(""); /* the system bus: the private one */
	start_device(&g->device, g->dir, "weather", "2.0.0", "sensor");
	healerd_process_start(g->healerd);
}

/* ---- diagnostics ---- */

static void
show_logs(Gateway *g)
{
	g_autofree char *log = NULL, *access = NULL, *errors = NULL;

	if (g->healerd != NULL)
		g_file_get_contents(g->healerd->log, &log, NULL, NULL);
	if (g->nginx != NULL) {
		g_file_get_contents(g->nginx->access_log, &access, NULL, NULL);
		g_file_get_contents(g->nginx->error_log, &errors, NULL, NULL);
	}
	g_test_message("healerd's log:\n%s", log != NULL ? log : "(none)");
	g_test_message("nginx's access log (method uri status bytes range):\n%s", access != NULL ? access : "(none)");
	g_test_message("nginx's error log:\n%s", errors != NULL ? errors : "(none)");
}

/* Fails the test showing healerd's and nginx's logs. */
#define check(g, cond)                                                                                                 \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			show_logs(g);                                                                                  \
			g_error("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);                                 \
		}                                                                                                      \
	} while (0)

/* ---- healerd's log ---- */

static GPtrArray *
strings_of(const char *first, va_list ap)
{
	GPtrArray *all = g_ptr_array_new();

	for (const char *s = first; s != NULL; s = va_arg(ap, const char *))
		g_ptr_array_add(all, (gpointer)s);
	g_ptr_array_add(all, NULL);
	return all;
}

/* Waits until `count` lines have every string (NULL-terminated); fails showing the log after timeout_ms. */
G_GNUC_NULL_TERMINATED static void
wait_lines(Gateway *g, guint count, guint timeout_ms, const char *first, ...)
{
	g_autoptr(GPtrArray) all = NULL;
	va_list ap;

	va_start(ap, first);
	all = strings_of(first, ap);
	va_end(ap);
	healerd_process_wait(g->healerd, (const char *const *)all->pdata, count, timeout_ms);
}

G_GNUC_NULL_TERMINATED static guint
count_lines(Gateway *g, const char *first, ...)
{
	g_autoptr(GPtrArray) all = NULL;
	va_list ap;

	va_start(ap, first);
	all = strings_of(first, ap);
	va_end(ap);
	return healerd_process_count(g->healerd, (const char *const *)all->pdata);
}

/* The index of the first line of the log with every string, -1 when none. */
G_GNUC_NULL_TERMINATED static int
first_line(Gateway *g, const char *first, ...)
{
	const char *none[] = {NULL};
	g_autoptr(GPtrArray) lines = healerd_process_lines(g->healerd, none);
	g_autoptr(GPtrArray) all = NULL;
	va_list ap;

	va_start(ap, first);
	all = strings_of(first, ap);
	va_end(ap);
	for (guint i = 0; i < lines->len; i++) {
		const char *line = g_ptr_array_index(lines, i);
		gboolean match = TRUE;

		for (guint k = 0; k + 1 < all->len; k++)
			match = match && strstr(line, g_ptr_array_index(all, k)) != NULL;
		if (match)
			return (int)i;
	}
	return -1;
}

/* ---- nginx's access log ---- */

/* Requests whose URI matches the glob `uri` with `status` (0: any). */
static guint
count_requests(Gateway *g, const char *uri, guint status)
{
	g_autoptr(GPtrArray) requests = nginx_server_requests(g->nginx);
	guint n = 0;

	for (guint i = 0; i < requests->len; i++) {
		const NginxRequest *r = g_ptr_array_index(requests, i);
		if (strcmp(r->method, "GET") == 0 && g_pattern_match_simple(uri, r->uri) &&
		    (status == 0 || r->status == status))
			n++;
	}
	return n;
}

/* The status of the last request of exactly `uri`, 0 when none. */
static guint
last_status(Gateway *g, const char *uri)
{
	g_autoptr(GPtrArray) requests = nginx_server_requests(g->nginx);

	for (guint i = requests->len; i > 0; i--) {
		const NginxRequest *r = g_ptr_array_index(requests, i - 1);
		if (strcmp(r->uri, uri) == 0)
			return r->status;
	}
	return 0;
}

/* Ranged requests (Range: bytes=N-, N > 0) of module files answered 206. */
static guint
count_resumed_requests(Gateway *g)
{
	g_autoptr(GPtrArray) requests = nginx_server_requests(g->nginx);
	guint n = 0;

	for (guint i = 0; i < requests->len; i++) {
		const NginxRequest *r = g_ptr_array_index(requests, i);
		if (g_str_has_suffix(r->uri, ".bin") && r->status == 206 && r->range != NULL &&
		    g_str_has_prefix(r->range, "bytes=") && strcmp(r->range, "bytes=0-") != 0)
			n++;
	}
	return n;
}

/* ---- files ---- */

static char *
sha256_of(GBytes *bytes)
{
	return g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, bytes);
}

/* SHA-256 of the firmware build's module at `path` (as the catalog lists it: its file's hash). */
static char *
original_sha256(const char *path)
{
	g_autofree char *full = g_build_filename(test_program("HEALER_FIRMWARE_MODULES"), path, NULL);
	g_autoptr(GBytes) data = test_read_file(full);

	return sha256_of(data);
}

/*
 * Every file of <state>/store named SHA.bin holds bytes with that SHA-256.
 * Returns the store's index.json ("" when there is none).
 */
static char *
check_store(Gateway *g)
{
	g_autofree char *store = g_build_filename(g->state, "store", NULL);
	g_autofree char *index_path = g_build_filename(store, "index.json", NULL);
	g_autoptr(GDir) dir = g_dir_open(store, 0, NULL);
	char *index = NULL;
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *path = g_build_filename(store, name, NULL);
		g_autoptr(GBytes) data = NULL;
		g_autofree char *sha = NULL, *expected = NULL;

		if (!g_str_has_suffix(name, ".bin"))
			continue;
		data = test_read_file(path);
		sha = sha256_of(data);
		expected = g_strndup(name, strlen(name) - strlen(".bin"));
		if (strcmp(sha, expected) != 0) {
			show_logs(g);
			g_error("store file %s has SHA-256 %s", path, sha);
		}
	}
	if (!g_file_get_contents(index_path, &index, NULL, NULL))
		index = g_strdup("");
	return index;
}

static void
write_bytes(const char *path, GBytes *bytes)
{
	test_write_file(path, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
}

/*
 * Whether healerd has `library` (a file name prefix: "libcurl.so") mapped:
 * libcurl and libarchive are loaded on first use only (agent/lib/healer-loadable.h).
 */
static gboolean
maps_library(Gateway *g, const char *library)
{
	g_autofree char *path = g_strdup_printf("/proc/%s/maps", g_subprocess_get_identifier(g->healerd->process));
	g_autofree char *maps = NULL, *needle = g_strconcat("/", library, NULL);

	check(g, g_file_get_contents(path, &maps, NULL, NULL));
	return strstr(maps, needle) != NULL;
}

/* ---- the cases ---- */

/*
 * The catalog is fetched and accepted; the modules the plan needs (2.1.0's)
 * are fetched on demand, nothing else; the device heals.  A refresh then
 * sends the validators: 304, "(unchanged)".
 */
static void
test_on_demand(void)
{
	g_auto(Gateway) g = {0};
	g_autofree char *url = NULL, *index = NULL;
	g_autofree char *sp1 = original_sha256("2.1.0/system-part1.bin");
	g_autofree char *sp2 = original_sha256("2.1.0/system-part2.bin");

	if (!have_dbus_daemon()) {
		g_test_skip("no dbus-daemon");
		return;
	}
	gateway_init(&g, "on-demand");
	nginx_server_start(g.nginx, 0);
	url = g_strdup_printf("https://127.0.0.1:%d", g.nginx->tls_port);
	bus_start(&g.bus);
	gateway_start(&g, url, TRUE);

	wait_lines(&g, 1, LOG_TIMEOUT_MS, "accepted the signed catalog", "/catalog.json", NULL);
	wait_lines(&g, 1, HEAL_TIMEOUT_MS, "heal succeeded", NULL);
	check(&g, count_lines(&g, "fetched https://", "/2.1.0/system-part1.bin", NULL) == 1);
	check(&g, count_lines(&g, "fetched https://", "/2.1.0/system-part2.bin", NULL) == 1);

	/* What nginx served: the catalog and its signature whole, the 2.1.0 modules, no other module. */
	check(&g, count_requests(&g, "/catalog.json", 200) == 1);
	check(&g, count_requests(&g, "/catalog.json.sig", 200) == 1);
	check(&g, count_requests(&g, "/2.1.0/system-part1.bin", 200) == 1);
	check(&g, count_requests(&g, "/2.1.0/system-part2.bin", 200) == 1);
	check(&g, count_requests(&g, "*.bin", 0) == count_requests(&g, "/2.1.0/*.bin", 200));
	check(&g, count_requests(&g, "*.bin", 0) == count_lines(&g, "fetched https://", "/2.1.0/", NULL));
	index = check_store(&g);
	check(&g, strstr(index, sp1) != NULL && strstr(index, sp2) != NULL);
	/* libcurl came with the first fetch; libarchive, for tar bundles, never did. */
	check(&g, maps_library(&g, "healerd-http.so") && maps_library(&g, "libcurl.so"));
	check(&g, !maps_library(&g, "libarchive.so"));

	/* A refresh: a conditional GET, answered 304. */
	{
		g_auto(TestRun) run = {0};
		healerctl(&run, "refresh", NULL);
		check(&g, run.exit_status == 0);
		check(&g, strstr(run.out, "(unchanged)") != NULL);
	}
	check(&g, count_requests(&g, "/catalog.json", 0) == 2);
	check(&g, last_status(&g, "/catalog.json") == 304);

	healerd_process_stop(g.healerd);
	assert_runs(&g.device);
}

/*
 * Connections cut mid-module (cut-proxy in front of nginx): the failed fetch
 * is retried with Range and resumed (206); what is stored has the catalog's
 * SHA-256; the device heals.
 */
static void
test_cut_and_resume(void)
{
	g_auto(Gateway) g = {0};
	g_autofree char *url = NULL, *index = NULL, *catalog = NULL;
	g_autofree char *sp1 = original_sha256("2.1.0/system-part1.bin");
	g_autofree char *sp2 = original_sha256("2.1.0/system-part2.bin");
	GStatBuf st;
	int proxy_port = 0, failed, resumed;
	GPid proxy;

	gateway_init(&g, "cut");
	nginx_server_start(g.nginx, 0);
	/*
	 * The first two connections are cut after the catalog, its signature
	 * (one connection carries both) and 20000 bytes more: inside the 2.1.0
	 * modules (47 and 58 KiB), whichever connection fetches them.
	 */
	catalog = g_build_filename(g.www, "catalog.json", NULL);
	g_assert_cmpint(g_stat(catalog, &st), ==, 0);
	proxy = test_cut_proxy_start(g.nginx->tls_port, 2, (long)st.st_size + 20000, &proxy_port);
	url = g_strdup_printf("https://127.0.0.1:%d", proxy_port);
	gateway_start(&g, url, FALSE);

	wait_lines(&g, 1, HEAL_TIMEOUT_MS, "heal succeeded", NULL);
	failed = first_line(&g, "fetching module", "next try in", NULL);
	resumed = first_line(&g, "fetched https://", "resumed", NULL);
	check(&g, failed >= 0);
	check(&g, resumed > failed);
	check(&g, count_resumed_requests(&g) >= 1);
	/* Both system parts stored, with the catalog's hashes; every store file hashes to its name. */
	check(&g, count_lines(&g, "fetched https://", "/2.1.0/system-part1.bin", NULL) == 1);
	check(&g, count_lines(&g, "fetched https://", "/2.1.0/system-part2.bin", NULL) == 1);
	index = check_store(&g);
	check(&g, strstr(index, sp1) != NULL && strstr(index, sp2) != NULL);

	healerd_process_stop(g.healerd);
	test_child_stop(proxy);
	assert_runs(&g.device);
}

/*
 * The transfer deadline does not starve a slow link: nginx sends the 2.1.0 modules at 6 KiB/s and
 * transfer-timeout-seconds=5 cuts system-part1 (57 KiB: at most about 42 KiB in 5 s at that rate)
 * with "no complete answer within 5 s"; the next try resumes with Range (206) where it stopped, the
 * module is stored with the catalog's SHA-256, and the device heals.
 */
static void
test_deadline_resumes(void)
{
	g_auto(Gateway) g = {0};
	g_autofree char *url = NULL, *index = NULL;
	g_autofree char *sp1 = original_sha256("2.1.0/system-part1.bin");
	int cut, resumed;

	gateway_init(&g, "deadline");
	g.nginx->extra = g_strdup("    location /2.1.0/ { limit_rate 6k; }\n");
	g.upstream_extra = "transfer-timeout-seconds=5\n";
	nginx_server_start(g.nginx, 0);
	url = g_strdup_printf("https://127.0.0.1:%d", g.nginx->tls_port);
	gateway_start(&g, url, FALSE);

	wait_lines(&g, 1, HEAL_TIMEOUT_MS, "heal succeeded", NULL);
	cut = first_line(&g, "fetching module", "/2.1.0/system-part1.bin: no complete answer within 5 s", NULL);
	resumed = first_line(&g, "fetched https://", "/2.1.0/system-part1.bin", "resumed", NULL);
	check(&g, cut >= 0);
	check(&g, resumed > cut);
	check(&g, count_resumed_requests(&g) >= 1);
	index = check_store(&g);
	check(&g, strstr(index, sp1) != NULL);
	healerd_process_stop(g.healerd);
	assert_runs(&g.device);
}

/*
 * No server at first: the catalog fetch fails and is retried, the device is
 * blocked; nginx starts on the configured port: the next try accepts the
 * catalog and the device heals.
 */
static void
test_down_then_up(void)
{
	g_auto(Gateway) g = {0};
	int port = test_free_port();
	g_autofree char *url = g_strdup_printf("https://127.0.0.1:%d", port);

	gateway_init(&g, "down-then-up");
	gateway_start(&g, url, FALSE);

	/* Retried; the device blocked, saying why and when the next try is. */
	wait_lines(&g, 2, LOG_TIMEOUT_MS, "upstream catalog:", "connection refused", "next try in", NULL);
	wait_lines(&g, 1, LOG_TIMEOUT_MS, "cannot heal", "the upstream catalog could not be fetched",
	           "connection refused", "next try in", NULL);
	check(&g, count_lines(&g, "heal succeeded", NULL) == 0);
	check(&g, count_lines(&g, "fetched https://", NULL) == 0);

	nginx_server_start(g.nginx, port);
	wait_lines(&g, 1, LOG_TIMEOUT_MS, "accepted the signed catalog", NULL);
	wait_lines(&g, 1, HEAL_TIMEOUT_MS, "heal succeeded", NULL);
	check(&g, count_lines(&g, "fetched https://", "/2.1.0/system-part2.bin", NULL) == 1);
	healerd_process_stop(g.healerd);
	assert_runs(&g.device);
}

/*
 * healerd-http.so missing (HEALER_MODULE_DIR names an empty directory): the
 * catalog fetch fails saying which file could not be loaded and why, is
 * retried like any failed fetch, and the device is blocked saying so;
 * healerd runs on, libcurl unmapped.
 */
static void
test_module_missing(void)
{
	g_auto(Gateway) g = {0};
	g_autofree char *url = NULL, *modules = NULL;

	gateway_init(&g, "module-missing");
	nginx_server_start(g.nginx, 0);
	url = g_strdup_printf("https://127.0.0.1:%d", g.nginx->tls_port);
	modules = g_strdup(g_getenv("HEALER_MODULE_DIR"));
	g_setenv("HEALER_MODULE_DIR", g.modules, TRUE); /* the empty firmware module directory */
	gateway_start(&g, url, FALSE);
	g_setenv("HEALER_MODULE_DIR", modules, TRUE);

	wait_lines(&g, 2, LOG_TIMEOUT_MS, "upstream catalog:", "/catalog.json: cannot load ",
	           "no-modules/healerd-http.so: No such file or directory", "next try in", NULL);
	wait_lines(&g, 1, LOG_TIMEOUT_MS, "cannot heal", "the upstream catalog could not be fetched", "healerd-http.so",
	           NULL);
	check(&g, count_requests(&g, "*", 0) == 0);
	check(&g, !maps_library(&g, "libcurl.so"));
	healerd_process_stop(g.healerd);
}

/*
 * One byte of 2.1.0/system-part2.bin flipped on the server (the catalog
 * untouched): the download fails its SHA-256, is never stored, and the
 * device is blocked saying so; once the file is fixed the next retry
 * fetches it and the device heals.
 */
static void
test_tampered_module(void)
{
	g_auto(Gateway) g = {0};
	g_autofree char *url = NULL, *index = NULL, *bad_sha = NULL;
	g_autofree char *part2 = NULL;
	g_autofree char *good_sha = original_sha256("2.1.0/system-part2.bin");
	g_autoptr(GBytes) good = NULL, bad = NULL;

	gateway_init(&g, "tampered-module");
	part2 = g_build_filename(g.www, "2.1.0", "system-part2.bin", NULL);
	good = test_read_file(part2);
	{
		gsize len = 0;
		guint8 *data = g_bytes_unref_to_data(g_bytes_ref(good), &len);
		data[len / 2] ^= 0x01;
		bad = g_bytes_new_take(data, len);
	}
	bad_sha = sha256_of(bad);
	write_bytes(part2, bad);
	nginx_server_start(g.nginx, 0);
	url = g_strdup_printf("https://127.0.0.1:%d", g.nginx->tls_port);
	gateway_start(&g, url, FALSE);

	/* Refused each time it is tried, and the device says why it waits. */
	wait_lines(&g, 2, LOG_TIMEOUT_MS, "fetching module", good_sha, "SHA-256 mismatch", bad_sha, NULL);
	wait_lines(&g, 1, LOG_TIMEOUT_MS, "which failed", "SHA-256 mismatch", NULL);
	check(&g, count_lines(&g, "heal succeeded", NULL) == 0);
	check(&g, count_lines(&g, "fetched https://", "/2.1.0/system-part2.bin", NULL) == 0);
	index = check_store(&g);
	check(&g, strstr(index, bad_sha) == NULL);
	check(&g, strstr(index, good_sha) == NULL);

	/* Fixed on the server: the next retry fetches it. */
	write_bytes(part2, good);
	wait_lines(&g, 1, HEAL_TIMEOUT_MS, "heal succeeded", NULL);
	check(&g, count_lines(&g, "fetched https://", "/2.1.0/system-part2.bin", NULL) == 1);
	g_clear_pointer(&index, g_free);
	index = check_store(&g);
	check(&g, strstr(index, bad_sha) == NULL);
	check(&g, strstr(index, good_sha) != NULL);
	healerd_process_stop(g.healerd);
	assert_runs(&g.device);
}

/*
 * The served catalog's serial changed after signing: refused as altered
 * (each try), nothing fetched, the device blocked.
 */
static void
test_tampered_catalog(void)
{
	g_auto(Gateway) g = {0};
	g_autofree char *url = NULL, *index = NULL, *catalog = NULL, *text = NULL;
	char *serial;

	gateway_init(&g, "tampered-catalog");
	catalog = g_build_filename(g.www, "catalog.json", NULL);
	g_assert_true(g_file_get_contents(catalog, &text, NULL, NULL));
	serial = strstr(text, "\"serial\": 1,");
	g_assert_nonnull(serial);
	serial[strlen("\"serial\": ")] = '2';
	test_write_file(catalog, (const guint8 *)text, strlen(text));
	nginx_server_start(g.nginx, 0);
	url = g_strdup_printf("https://127.0.0.1:%d", g.nginx->tls_port);
	gateway_start(&g, url, FALSE);

	wait_lines(&g, 2, LOG_TIMEOUT_MS, "catalog not accepted", "altered after signing", NULL);
	wait_lines(&g, 1, LOG_TIMEOUT_MS, "cannot heal", "the upstream catalog could not be fetched",
	           "altered after signing", NULL);
	check(&g, count_lines(&g, "accepted the signed catalog", NULL) == 0);
	check(&g, count_lines(&g, "fetched https://", NULL) == 0);
	check(&g, count_lines(&g, "heal succeeded", NULL) == 0);
	/* Fetched whole each time (no validators kept for a refused catalog), no module asked for. */
	check(&g, count_requests(&g, "/catalog.json", 200) >= 2);
	check(&g, count_requests(&g, "/catalog.json", 304) == 0);
	check(&g, count_requests(&g, "*.bin", 0) == 0);
	index = check_store(&g);
	check(&g, strstr(index, "sha256") == NULL);
	healerd_process_stop(g.healerd);
}

int
main(int argc, char **argv)
{
	int status;

	g_test_init(&argc, &argv, NULL);
	if (!nginx_server_available()) {
		/* TAP: the whole program skipped */
		printf("1..0 # SKIP nginx or openssl not installed (scripts/setup.sh installs them)\n");
		return 0;
	}
	tmpdir = test_tmpdir_new();
	g_test_add_func("/upstream/on-demand", test_on_demand);
	g_test_add_func("/upstream/cut-and-resume", test_cut_and_resume);
	g_test_add_func("/upstream/down-then-up", test_down_then_up);
	g_test_add_func("/upstream/deadline-resumes", test_deadline_resumes);
	g_test_add_func("/upstream/tampered-module", test_tampered_module);
	g_test_add_func("/upstream/tampered-catalog", test_tampered_catalog);
	g_test_add_func("/upstream/module-missing", test_module_missing);
	status = g_test_run();
	test_tmpdir_free(tmpdir);
	return status;
}
