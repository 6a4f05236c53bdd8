#include <string.h>

#include <glib/gstdio.h>
#include <systemd/sd-id128.h>

#include "config.h"
#include "healer-error.h"
#include "mqtt-gateway-id.h"
#include "test-util.h"

/*
 * The machine id every test here derives the default [mqtt] gateway-id from (main() sets it), and
 * that gateway id: HMAC-SHA256 keyed with the machine id's 16 bytes over the application id's
 * (HEALER_MQTT_GATEWAY_APP_ID), the first 16 bytes marked as a version 4 UUID, computed apart
 * from healerd with Python's hmac module:
 *
 *   h = bytearray(hmac.new(bytes.fromhex(MACHINE), bytes.fromhex(APP), hashlib.sha256).digest()[:16])
 *   h[6] = h[6] & 0x0F | 0x40; h[8] = h[8] & 0x3F | 0x80; print(h.hex())
 *
 * and checked against `systemd-id128 machine-id --app-specific=APP` on a machine with that id.
 */
#define TEST_MACHINE_ID "4a8c1e2f9b7d4c6e8f0a1b2c3d4e5f60"
#define TEST_GATEWAY_ID "586baacf5c8f401f8056d8d71c8d92ea"

typedef struct {
	char *dir;
	char *path; /* dir/healerd.conf */
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	(void)data;
	f->dir = test_tmpdir_new();
	f->path = g_build_filename(f->dir, "healerd.conf", NULL);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	(void)data;
	test_tmpdir_free(f->dir);
	g_free(f->path);
}

static void
write_text(const char *path, const char *text)
{
	test_write_file(path, (const guint8 *)text, strlen(text));
}

static void
write_drop_in(Fixture *f, const char *name, const char *text)
{
	g_autofree char *dir = g_build_filename(f->dir, "healerd.conf.d", NULL);
	g_autofree char *path = g_build_filename(dir, name, NULL);

	g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
	write_text(path, text);
}

static void
assert_strv(GStrv got, const char *const *expected)
{
	g_assert_nonnull(got);
	g_assert_cmpuint(g_strv_length(got), ==, g_strv_length((GStrv)expected));
	for (guint i = 0; expected[i] != NULL; i++)
		g_assert_cmpstr(got[i], ==, expected[i]);
}

static void
assert_defaults(const HealerConfig *config)
{
	const char *ports[] = {"/dev/ttyACM*", "/dev/ttyUSB*", NULL};
	const char *dirs[] = {healer_config_default_module_dir(), NULL};

	g_assert_cmpstr(config->state_dir, ==, "/var/lib/healerd");
	g_assert_cmpint(config->log_level, ==, G_LOG_LEVEL_INFO);
	assert_strv(config->serial_ports, ports);
	g_assert_cmpuint(config->baud, ==, 115200);
	g_assert_true(config->serial_watch);
	g_assert_true(config->usb_enable);
	g_assert_nonnull(config->usb_ignore);
	g_assert_null(config->usb_ignore[0]);
	g_assert_cmpstr(config->particle_install, ==, "control");
	g_assert_null(config->particle_install_platforms[0]);
	assert_strv(config->module_dirs, dirs);
	g_assert_cmpuint(config->max_concurrent_jobs, ==, 0);
	g_assert_cmpuint(config->reset_timeout_s, ==, 30);
	g_assert_cmpuint(config->response_timeout_s, ==, 10);
	g_assert_cmpuint(config->max_attempts, ==, 5);
	g_assert_cmpuint(config->retry_backoff_s, ==, 10);
	g_assert_false(config->allow_prerelease);
	g_assert_true(config->auto_heal);
	g_assert_cmpstr(config->trusted_key_dirs[0], ==, "/etc/healerd/trusted-keys.d");
	g_assert_true(g_str_has_suffix(config->trusted_key_dirs[1], "/healerd/trusted-keys.d"));
	g_assert_null(config->trusted_key_dirs[2]);
	g_assert_false(config->allow_unsigned);
	g_assert_null(config->upstream_url);
	g_assert_null(config->upstream_ca_file);
	g_assert_null(config->upstream_proxy);
	g_assert_cmpuint(config->upstream_max_parallel, ==, 2);
	g_assert_cmpuint(config->upstream_refresh_s, ==, 21600);
	g_assert_cmpuint(config->upstream_transfer_timeout_s, ==, 120);
	g_assert_false(config->upstream_allow_insecure_http);
	/* [mqtt]: off, and nothing derived from the machine. */
	g_assert_null(config->mqtt_broker);
	g_assert_null(config->mqtt_host);
	g_assert_false(config->mqtt_tls);
	g_assert_cmpstr(config->mqtt_topic_prefix, ==, "healerd");
	g_assert_null(config->mqtt_gateway_id);
	g_assert_null(config->mqtt_client_id);
	g_assert_null(config->mqtt_username);
	g_assert_null(config->mqtt_password_file);
	g_assert_null(config->mqtt_ca_file);
	g_assert_null(config->mqtt_cert_file);
	g_assert_null(config->mqtt_key_file);
	g_assert_cmpuint(config->mqtt_keepalive_s, ==, 60);
	g_assert_false(config->mqtt_accept_commands);
	g_assert_cmpuint(config->mqtt_outbox_max_bytes, ==, 16 * 1024 * 1024);
}

/* No file, or an empty one: every default. */
static void
test_defaults(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerConfig) defaults = healer_config_new_defaults();
	g_autoptr(HealerConfig) empty = NULL;
	g_autoptr(HealerConfig) missing = NULL;
	g_autoptr(GError) error = NULL;

	(void)data;
	assert_defaults(defaults);
	g_assert_cmpuint(g_strv_length(defaults->files), ==, 0);
	g_assert_true(g_path_is_absolute(healer_config_default_module_dir()));

	write_text(f->path, "# nothing but a comment\n");
	empty = healer_config_load(f->path, &error);
	g_assert_no_error(error);
	assert_defaults(empty);
	g_assert_cmpuint(g_strv_length(empty->files), ==, 1);
	g_assert_cmpstr(empty->files[0], ==, f->path);

	/* A file named explicitly (--config) must exist. */
	g_unlink(f->path);
	missing = healer_config_load(f->path, &error);
	g_assert_null(missing);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
}

static void
test_full_file(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *mods = g_build_filename(f->dir, "mods", NULL);
	g_autofree char *table = g_build_filename(f->dir, "t.json", NULL);
	g_autofree char *text = NULL;
	const char *ports[] = {"/dev/ttyACM*", "/run/healer-sim/*/tty", NULL};
	const char *dirs[] = {mods, "/srv/firmware;extra", NULL};
	const char *tables[] = {table, NULL};

	(void)data;
	text = g_strdup_printf("# healerd test configuration\n"
	                       "[daemon]\n"
	                       "state-directory = /tmp/healerd-state\n"
	                       "log-level = debug\n"
	                       "\n"
	                       "[serial]\n"
	                       "ports=/dev/ttyACM*;/run/healer-sim/*/tty;\n"
	                       "baud=921600\n"
	                       "watch=false\n"
	                       "[usb]\n"
	                       "enable=false\n"
	                       "ignore=usb:1-1.4; usb:2B04:d006;usb:255-255.1.2.3.4.5.6;\n"
	                       "[store]\n"
	                       "module-directories = %s;/srv/firmware\\;extra\n"
	                       "release-tables = %s\n"
	                       "[healer]\n"
	                       "max-concurrent-jobs=8\n"
	                       "reset-timeout-seconds=45\n"
	                       "response-timeout-seconds = 3  \n"
	                       "max-attempts=100\n"
	                       "retry-backoff-seconds=1\n"
	                       "allow-prerelease=true\n"
	                       "auto-heal=false\n"
	                       "[store]\n"
	                       "trusted-keys=/etc/k;/usr/share/k\n"
	                       "allow-unsigned=true\n"
	                       "[upstream]\n"
	                       "url=https://firmware.example.com/healer/stable//\n"
	                       "ca-file=/etc/ssl/test-ca.pem\n"
	                       "proxy=\n"
	                       "max-parallel-downloads=4\n"
	                       "max-bytes-per-second=65536\n"
	                       "refresh-interval-seconds=0\n"
	                       "retry-min-seconds=2\n"
	                       "retry-max-seconds=60\n"
	                       "transfer-timeout-seconds=30\n"
	                       "allow-insecure-http=false\n",
	                       mods, table);
	write_text(f->path, text);
	config = healer_config_load(f->path, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(config->state_dir, ==, "/tmp/healerd-state");
	g_assert_cmpint(config->log_level, ==, G_LOG_LEVEL_DEBUG);
	assert_strv(config->serial_ports, ports);
	g_assert_cmpuint(config->baud, ==, 921600);
	g_assert_false(config->serial_watch);
	g_assert_false(config->usb_enable);
	{
		const char *ignore[] = {"usb:1-1.4", "usb:2B04:d006", "usb:255-255.1.2.3.4.5.6", NULL};
		assert_strv(config->usb_ignore, ignore);
	}
	assert_strv(config->module_dirs, dirs);
	assert_strv(config->release_tables, tables);
	g_assert_cmpuint(config->max_concurrent_jobs, ==, 8);
	g_assert_cmpuint(config->reset_timeout_s, ==, 45);
	g_assert_cmpuint(config->response_timeout_s, ==, 3);
	g_assert_cmpuint(config->max_attempts, ==, 100);
	g_assert_cmpuint(config->retry_backoff_s, ==, 1);
	g_assert_true(config->allow_prerelease);
	g_assert_false(config->auto_heal);
	{
		const char *key_dirs[] = {"/etc/k", "/usr/share/k", NULL};
		assert_strv(config->trusted_key_dirs, key_dirs);
	}
	g_assert_true(config->allow_unsigned);
	g_assert_cmpstr(config->upstream_url, ==, "https://firmware.example.com/healer/stable");
	g_assert_cmpstr(config->upstream_ca_file, ==, "/etc/ssl/test-ca.pem");
	g_assert_cmpstr(config->upstream_proxy, ==, "");
	g_assert_cmpuint(config->upstream_max_parallel, ==, 4);
	g_assert_cmpuint(config->upstream_max_bytes_per_s, ==, 65536);
	g_assert_cmpuint(config->upstream_refresh_s, ==, 0);
	g_assert_cmpuint(config->upstream_retry_min_s, ==, 2);
	g_assert_cmpuint(config->upstream_retry_max_s, ==, 60);
	g_assert_cmpuint(config->upstream_transfer_timeout_s, ==, 30);
	g_assert_false(config->upstream_allow_insecure_http);
}

/* Release tables default to releases.json of each module directory that has one. */
static void
test_default_release_tables(Fixture *f, gconstpointer data)
{
	g_autofree char *a = g_build_filename(f->dir, "a", NULL);
	g_autofree char *b = g_build_filename(f->dir, "b", NULL);
	g_autofree char *table = g_build_filename(b, "releases.json", NULL);
	g_autofree char *text = g_strdup_printf("[store]\nmodule-directories=%s;%s\n", a, b);
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(HealerConfig) none = NULL;
	g_autoptr(GError) error = NULL;
	const char *tables[] = {table, NULL};
	const char *empty[] = {NULL};

	(void)data;
	g_assert_cmpint(g_mkdir(a, 0755), ==, 0);
	g_assert_cmpint(g_mkdir(b, 0755), ==, 0);
	write_text(table, "{}");
	write_text(f->path, text);
	config = healer_config_load(f->path, &error);
	g_assert_no_error(error);
	assert_strv(config->release_tables, tables);

	/* "key=" is the empty list, and then there are none. */
	write_text(f->path, "[store]\nmodule-directories=\n[serial]\nports=\n");
	none = healer_config_load(f->path, &error);
	g_assert_no_error(error);
	assert_strv(none->module_dirs, empty);
	assert_strv(none->release_tables, empty);
	assert_strv(none->serial_ports, empty);
}

/* Drop-ins apply in lexical order over the main file; other names are ignored. */
static void
test_drop_ins(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *first = g_build_filename(f->dir, "healerd.conf.d", "10-first.conf", NULL);
	g_autofree char *second = g_build_filename(f->dir, "healerd.conf.d", "20-second.conf", NULL);

	(void)data;
	write_text(f->path, "[serial]\nbaud=9600\n[healer]\nmax-attempts=7\nauto-heal=false\n");
	write_drop_in(f, "20-second.conf", "[serial]\nbaud=38400\n");
	write_drop_in(f, "10-first.conf", "[serial]\nbaud=19200\n[healer]\nmax-attempts=3\n");
	write_drop_in(f, "30-ignored.conf.disabled", "[serial]\nbaud=1200\n");
	write_drop_in(f, "README", "not a configuration file");
	config = healer_config_load(f->path, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(config->baud, ==, 38400);
	g_assert_cmpuint(config->max_attempts, ==, 3);
	g_assert_false(config->auto_heal);
	g_assert_cmpuint(g_strv_length(config->files), ==, 3);
	g_assert_cmpstr(config->files[0], ==, f->path);
	g_assert_cmpstr(config->files[1], ==, first);
	g_assert_cmpstr(config->files[2], ==, second);
}

static void
expect_error(Fixture *f, const char *text, guint line, const char *expected)
{
	const char *file = f->path;
	g_autofree char *where = g_strdup_printf("%s:%u: %s", file, line, expected);
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(GError) error = NULL;

	write_text(file, text);
	config = healer_config_load(f->path, &error);
	g_assert_null(config);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	if (strstr(error->message, where) == NULL)
		g_error("expected '%s' in '%s'", where, error->message);
}

static void
test_invalid(Fixture *f, gconstpointer data)
{
	(void)data;
	expect_error(f, "[healer]\nmax-attempts=lots\n", 2,
	             "[healer] max-attempts: 'lots' is not a whole number 1..100");
	expect_error(f, "[healer]\nmax-attempts=0\n", 2, "[healer] max-attempts: '0' is not");
	expect_error(f, "[healer]\nmax-attempts=101\n", 2, "[healer] max-attempts: '101' is not");
	expect_error(f, "[healer]\nmax-attempts=-1\n", 2, "[healer] max-attempts: '-1' is not");
	expect_error(f, "[healer]\nreset-timeout-seconds=1.5\n", 2,
	             "[healer] reset-timeout-seconds: '1.5' is not a whole number 1..3600");
	expect_error(f, "[healer]\nretry-backoff-seconds=601\n", 2,
	             "[healer] retry-backoff-seconds: '601' is not a whole number 1..600");
	expect_error(f, "[healer]\nmax-concurrent-jobs=\n", 2,
	             "[healer] max-concurrent-jobs: '' is not a whole number 0..1024");
	expect_error(f, "# comment\n\n[healer]\nauto-heal=true\n  allow-prerelease = maybe\n", 5,
	             "[healer] allow-prerelease: 'maybe' is not a boolean");
	expect_error(f, "[serial]\nbaud=115201\n", 2, "[serial] baud: '115201' is not a supported baud rate");
	expect_error(f, "[serial]\nwatch=yes please\n", 2, "[serial] watch: 'yes please'");
	expect_error(f, "[serial]\nports=/dev/ttyACM*;ttyUSB*\n", 2,
	             "[serial] ports: 'ttyUSB*' is not an absolute path");
	expect_error(f, "[daemon]\nlog-level=verbose\n", 2,
	             "[daemon] log-level: 'verbose' is not a log level (error, warning, info or debug)");
	expect_error(f, "[daemon]\nstate-directory=var/lib\n", 2,
	             "[daemon] state-directory: 'var/lib' is not an absolute path");
	expect_error(f, "[store]\nmodule-directories=relative/dir\n", 2,
	             "[store] module-directories: 'relative/dir' is not an absolute path");
	expect_error(f, "[upstream]\nurl=ftp://example.com/x\n", 2,
	             "[upstream] url: 'ftp://example.com/x' is not an http:// or https:// URL with a host");
	expect_error(f, "[upstream]\nurl=firmware.example.com\n", 2, "[upstream] url: 'firmware.example.com' is not");
	expect_error(f, "[upstream]\nca-file=ca.pem\n", 2, "[upstream] ca-file: 'ca.pem' is not an absolute path");
	expect_error(f, "[upstream]\nmax-parallel-downloads=0\n", 2,
	             "[upstream] max-parallel-downloads: '0' is not a whole number 1..32");
	expect_error(f, "[store]\nallow-unsigned=perhaps\n", 2, "[store] allow-unsigned: 'perhaps' is not a boolean");
	/* Escapes are checked before GLib sees them (GLib 2.74 warns on some: found by the fuzzer). */
	expect_error(f, "[daemon]\nstate-directory=/a\\q\\\n", 2,
	             "[daemon] state-directory: '\\q' is not an escape (\\s \\n \\t \\r \\\\)");
	expect_error(f, "[serial]\nports=/dev/x\\\n", 2, "[serial] ports: a backslash ends the value");
	/* Unknown keys and groups, with the line of the key or the header. */
	expect_error(f, "[daemon]\nlog-level=info\n\n[healer]\nmax-atempts=3\n", 5,
	             "[healer] max-atempts: unknown key (known keys in [healer]: max-concurrent-jobs,");
	expect_error(f, "[daemon]\nlog-level=info\n[mqtt-bridge]\nbroker=x\n", 3,
	             "[mqtt-bridge]: unknown group (known groups: daemon, serial, usb, particle, store, healer, "
	             "upstream, mqtt)");
	/* [particle]: a route, for every platform or one named as healerd names it. */
	expect_error(f, "[particle]\ninstall=usb\n", 2, "[particle] install: 'usb': expected control or dfu");
	expect_error(f, "[particle]\ninstall.photon=DFU\n", 2,
	             "[particle] install.photon: 'DFU': expected control or dfu");
	expect_error(f, "[particle]\ninstall=dfu\ninstall.potato=dfu\n", 3,
	             "[particle] install.potato: unknown platform 'potato' (a name as healerctl platforms lists it:");
	expect_error(f, "[particle]\ninstal=dfu\n", 2,
	             "[particle] instal: unknown key (known keys in [particle]: install)");
	/* [usb]: booleans, and selectors of devices to leave alone, each refused with what is wrong. */
	expect_error(f, "[usb]\nenable=on\n", 2, "[usb] enable: 'on' is not a boolean");
	expect_error(f, "[usb]\nignore=usb:1-1.4;1-1.5\n", 2,
	             "[usb] ignore: '1-1.5' does not start with 'usb:' (usb:BUS-PORT[.PORT...]");
	expect_error(f, "[usb]\nignore=usb:2b04:d06\n", 2,
	             "[usb] ignore: 'usb:2b04:d06': the product id is not 4 hexadecimal digits");
	expect_error(f, "[usb]\nignore=usb:2b0g:d006\n", 2,
	             "[usb] ignore: 'usb:2b0g:d006': the vendor id is not 4 hexadecimal digits");
	expect_error(f, "[usb]\nignore=usb:0-1\n", 2,
	             "[usb] ignore: 'usb:0-1': expected a bus number 1..255 and '-' after 'usb:'");
	expect_error(f, "[usb]\nignore=usb:256-1\n", 2, "[usb] ignore: 'usb:256-1': expected a bus number");
	expect_error(f, "[usb]\nignore=usb:1\n", 2, "[usb] ignore: 'usb:1': expected a bus number");
	expect_error(f, "[usb]\nignore=usb:1-\n", 2, "[usb] ignore: 'usb:1-': expected a port number 1..255 after '-'");
	expect_error(f, "[usb]\nignore=usb:1-1..2\n", 2,
	             "[usb] ignore: 'usb:1-1..2': expected a port number 1..255 after '.'");
	expect_error(f, "[usb]\nignore=usb:1-01\n", 2, "[usb] ignore: 'usb:1-01': expected a port number");
	expect_error(f, "[usb]\nignore=usb:1-1.4x\n", 2, "[usb] ignore: 'usb:1-1.4x': unexpected 'x' after the ports");
	expect_error(f, "[usb]\nignore=usb:1-1.2.3.4.5.6.7.8\n", 2,
	             "[usb] ignore: 'usb:1-1.2.3.4.5.6.7.8': more than 7 ports");
	expect_error(f, "[usb]\nignore=usb:1-1\\q\n", 2, "[usb] ignore: '\\q' is not an escape");
	expect_error(f, "[usb]\nports=usb:1-1\n", 2, "[usb] ports: unknown key (known keys in [usb]: enable, ignore)");
	expect_error(f, "[healer]\nmax-attempts[de]=3\n", 2, "[healer] max-attempts[de]: unknown key");
	expect_error(f, "[upstream]\ntransfer-timeout-seconds=4\n", 2,
	             "[upstream] transfer-timeout-seconds: '4' is not a whole number 5..3600");
	expect_error(f, "[upstream]\ntransfer-timeout-seconds=3601\n", 2,
	             "[upstream] transfer-timeout-seconds: '3601' is not a whole number 5..3600");
	expect_error(f, "[upstream]\nallow-insecure-http=yes\n", 2,
	             "[upstream] allow-insecure-http: 'yes' is not a boolean");
}

/*
 * A key set twice in one file is refused at its second line, naming the first (GKeyFile alone keeps the
 * last without a word), also when its group is opened twice or blanks differ; the first value is not
 * silently replaced, and nothing of the file applies.
 */
static void
test_duplicate_keys(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(GError) error = NULL;

	(void)data;
	expect_error(f, "[serial]\nports=/dev/ttyUSB*\nbaud=9600\nports=/dev/*\n", 4,
	             "[serial] ports: set twice in one file (first at line 2); set each key once");
	expect_error(f, "[healer]\nmax-attempts=1\n[serial]\nbaud=9600\n[healer]\nmax-attempts=x\n", 6,
	             "[healer] max-attempts: set twice in one file (first at line 2)");
	expect_error(f, "# c\n[upstream]\n  url = https://a.example\n\n\turl=https://b.example\n", 5,
	             "[upstream] url: set twice in one file (first at line 3)");
	/* Before the value checks: the second line is the news, whatever it says. */
	expect_error(f, "[healer]\nmax-attempts=3\nmax-attempts=lots\n", 3,
	             "[healer] max-attempts: set twice in one file (first at line 2)");

	/* The same key in two groups, a translation beside its key (refused as unknown, not as twice), a drop-in. */
	expect_error(f, "[healer]\nmax-attempts=3\nmax-attempts[de]=3\n", 3, "[healer] max-attempts[de]: unknown key");
	write_text(f->path, "[serial]\nwatch=false\n[store]\nallow-unsigned=false\n# watch=true\n");
	write_drop_in(f, "10-watch.conf", "[serial]\nwatch=true\n");
	config = healer_config_load(f->path, &error);
	g_assert_no_error(error);
	g_assert_true(config->serial_watch);
}

/* An http:// url needs allow-insecure-http=true (in any file); the error names the url's file and line. */
static void
test_insecure_http(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(HealerConfig) allowed = NULL;
	g_autoptr(HealerConfig) https = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *drop_in = g_build_filename(f->dir, "healerd.conf.d", "20-url.conf", NULL);
	g_autofree char *where =
	        g_strdup_printf("%s:3: [upstream] url: 'http://firmware.example.com' is plain http", drop_in);

	(void)data;
	expect_error(f, "[upstream]\nurl=http://firmware.example.com/\n", 2,
	             "[upstream] url: 'http://firmware.example.com' is plain http: anyone on the network path "
	             "could withhold new catalogs or replay old ones (signatures protect content, not "
	             "freshness); use https://, or set allow-insecure-http=true in [upstream] to accept that");
	expect_error(f, "[upstream]\nurl=HTTP://firmware.example.com\nallow-insecure-http=false\n", 2,
	             "[upstream] url: 'HTTP://firmware.example.com' is plain http");

	/* The url in a drop-in: its line there. */
	write_text(f->path, "[upstream]\nurl=https://firmware.example.com\n");
	write_drop_in(f, "20-url.conf", "# mirror\n[upstream]\nurl=http://firmware.example.com\n");
	config = healer_config_load(f->path, &error);
	g_assert_null(config);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	if (strstr(error->message, where) == NULL)
		g_error("expected '%s' in '%s'", where, error->message);
	g_clear_error(&error);

	/* Allowed in another file than the url's. */
	write_drop_in(f, "30-insecure.conf", "[upstream]\nallow-insecure-http=true\n");
	allowed = healer_config_load(f->path, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(allowed->upstream_url, ==, "http://firmware.example.com");
	g_assert_true(allowed->upstream_allow_insecure_http);

	/* https needs nothing. */
	https = healer_config_load_from_data("x.conf", "[upstream]\nurl=https://a.example\n",
	                                     strlen("[upstream]\nurl=https://a.example\n"), &error);
	g_assert_no_error(error);
	g_assert_cmpstr(https->upstream_url, ==, "https://a.example");
}

/* An error in a drop-in names the drop-in, after a valid main file and an earlier valid drop-in. */
static void
test_invalid_drop_in(Fixture *f, gconstpointer data)
{
	g_autofree char *drop_in = g_build_filename(f->dir, "healerd.conf.d", "50-bad.conf", NULL);
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *where = g_strdup_printf("%s:3: [serial] baud: 'fast' is not", drop_in);

	(void)data;
	write_text(f->path, "[healer]\nmax-attempts=3\n");
	write_drop_in(f, "10-good.conf", "[serial]\nbaud=9600\n");
	write_drop_in(f, "50-bad.conf", "# bad\n[serial]\nbaud=fast\n");
	config = healer_config_load(f->path, &error);
	g_assert_null(config);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	if (strstr(error->message, where) == NULL)
		g_error("expected '%s' in '%s'", where, error->message);
}

/* GKeyFile's own syntax errors name the file. */
static void
test_syntax_error(Fixture *f, gconstpointer data)
{
	const char *bad[] = {
	        "[healer]\nthis line is not a key\n",
	        "max-attempts=3\n", /* a key before any group */
	        "[healer\nmax-attempts=3\n",
	};

	(void)data;
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(HealerConfig) config = NULL;
		g_autoptr(GError) error = NULL;
		g_autofree char *prefix = g_strdup_printf("%s: ", f->path);

		write_text(f->path, bad[i]);
		config = healer_config_load(f->path, &error);
		g_assert_null(config);
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
		if (!g_str_has_prefix(error->message, prefix))
			g_error("expected '%s' at the start of '%s'", prefix, error->message);
	}
}

static HealerConfig *
load_text(Fixture *f, const char *text)
{
	g_autoptr(GError) error = NULL;
	HealerConfig *config;

	write_text(f->path, text);
	config = healer_config_load(f->path, &error);
	g_assert_no_error(error);
	return config;
}

/* Every [mqtt] key set: each value as written (paths, names) or parsed (the broker). */
static void
test_mqtt_full(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerConfig) config = NULL;

	(void)data;
	config = load_text(f, "[mqtt]\n"
	                      "broker = mqtts://broker.example.com:8884\n"
	                      "topic-prefix=site-7/healer\n"
	                      "gateway-id=hall-3\n"
	                      "client-id=gw-hall-3\n"
	                      "username=gateway\\s7\n"
	                      "password-file=/etc/healerd/mqtt-password\n"
	                      "ca-file=/etc/healerd/mqtt-ca.pem\n"
	                      "cert-file=/etc/healerd/mqtt-cert.pem\n"
	                      "key-file=/etc/healerd/mqtt-key.pem\n"
	                      "keepalive=30\n"
	                      "accept-commands=true\n"
	                      "outbox-max-bytes=1048576\n");
	g_assert_cmpstr(config->mqtt_broker, ==, "mqtts://broker.example.com:8884");
	g_assert_cmpstr(config->mqtt_host, ==, "broker.example.com");
	g_assert_cmpuint(config->mqtt_port, ==, 8884);
	g_assert_true(config->mqtt_tls);
	g_assert_cmpstr(config->mqtt_topic_prefix, ==, "site-7/healer");
	g_assert_cmpstr(config->mqtt_gateway_id, ==, "hall-3");
	g_assert_cmpstr(config->mqtt_client_id, ==, "gw-hall-3");
	g_assert_cmpstr(config->mqtt_username, ==, "gateway 7");
	g_assert_cmpstr(config->mqtt_password_file, ==, "/etc/healerd/mqtt-password");
	g_assert_cmpstr(config->mqtt_ca_file, ==, "/etc/healerd/mqtt-ca.pem");
	g_assert_cmpstr(config->mqtt_cert_file, ==, "/etc/healerd/mqtt-cert.pem");
	g_assert_cmpstr(config->mqtt_key_file, ==, "/etc/healerd/mqtt-key.pem");
	g_assert_cmpuint(config->mqtt_keepalive_s, ==, 30);
	g_assert_true(config->mqtt_accept_commands);
	g_assert_cmpuint(config->mqtt_outbox_max_bytes, ==, 1048576);
}

/* The broker's forms: scheme in any case, default ports, IPv4, IPv6 in brackets (with a zone), a lone '/'. */
static void
test_mqtt_broker(Fixture *f, gconstpointer data)
{
	const struct {
		const char *broker;
		const char *host;
		guint port;
		gboolean tls;
	} good[] = {
	        {"mqtt://broker.example.com", "broker.example.com", 1883, FALSE},
	        {"mqtts://broker.example.com", "broker.example.com", 8883, TRUE},
	        {"MQTTS://Broker.Example.com:443/", "Broker.Example.com", 443, TRUE},
	        {"mqtt://localhost:1", "localhost", 1, FALSE},
	        {"mqtt://10.0.0.7:65535", "10.0.0.7", 65535, FALSE},
	        {"mqtt://mosquitto_1", "mosquitto_1", 1883, FALSE},
	        {"mqtt://[::1]:1884", "::1", 1884, FALSE},
	        {"mqtts://[2001:db8::10]", "2001:db8::10", 8883, TRUE},
	        {"mqtt://[fe80::1%25eth0]:1883", "fe80::1%eth0", 1883, FALSE},
	};

	(void)data;
	for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
		g_autofree char *text = g_strdup_printf("[mqtt]\nbroker=%s\ngateway-id=gw\n", good[i].broker);
		g_autoptr(HealerConfig) config = load_text(f, text);
		g_assert_cmpstr(config->mqtt_broker, ==, good[i].broker);
		g_assert_cmpstr(config->mqtt_host, ==, good[i].host);
		g_assert_cmpuint(config->mqtt_port, ==, good[i].port);
		g_assert_cmpint(config->mqtt_tls, ==, good[i].tls);
	}
	{
		/* Empty: MQTT off. */
		g_autoptr(HealerConfig) off = load_text(f, "[mqtt]\nbroker=\n");
		g_assert_null(off->mqtt_broker);
		g_assert_null(off->mqtt_host);
		g_assert_null(off->mqtt_gateway_id);
	}
}

static void
test_mqtt_invalid_broker(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(GError) error = NULL;

	(void)data;
	expect_error(f, "[mqtt]\nbroker=tcp://broker.example.com:1883\n", 2,
	             "[mqtt] broker: 'tcp://broker.example.com:1883': the scheme 'tcp' is not mqtt or mqtts "
	             "(expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT])");
	expect_error(f, "[mqtt]\nbroker=broker.example.com:1883\n", 2,
	             "[mqtt] broker: 'broker.example.com:1883' is not a broker URL (expected mqtt://HOST[:PORT] "
	             "or mqtts://HOST[:PORT])");
	expect_error(f, "[mqtt]\nbroker=mqtt://broker.example.com/healerd\n", 2,
	             "[mqtt] broker: 'mqtt://broker.example.com/healerd': a path, query or fragment ('/healerd') "
	             "has no meaning in MQTT");
	expect_error(f, "[mqtt]\nbroker=mqtt://b.example?x=1\n", 2, "[mqtt] broker: 'mqtt://b.example?x=1': a path");
	expect_error(f, "[mqtt]\nbroker=mqtt://b.example#top\n", 2, "[mqtt] broker: 'mqtt://b.example#top': a path");
	expect_error(f, "[mqtt]\nbroker=mqtt://b.example:0\n", 2,
	             "[mqtt] broker: 'mqtt://b.example:0': the port '0' is not a whole number 1..65535");
	expect_error(f, "[mqtt]\nbroker=mqtt://b.example:65536\n", 2,
	             "[mqtt] broker: 'mqtt://b.example:65536': the port");
	expect_error(f, "[mqtt]\nbroker=mqtt://b.example:\n", 2,
	             "[mqtt] broker: 'mqtt://b.example:': the port '' is not a whole number 1..65535");
	expect_error(f, "[mqtt]\nbroker=mqtt://b.example:+1\n", 2, "[mqtt] broker: 'mqtt://b.example:+1': the port");
	expect_error(f, "[mqtt]\nbroker=mqtt://b.example:18x3\n", 2,
	             "[mqtt] broker: 'mqtt://b.example:18x3': the port");
	expect_error(f, "[mqtt]\nbroker=mqtt://\n", 2,
	             "[mqtt] broker: 'mqtt://' has no host (expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT])");
	expect_error(f, "[mqtt]\nbroker=mqtts://:8883\n", 2, "[mqtt] broker: 'mqtts://:8883' has no host");
	expect_error(f, "[mqtt]\nbroker=mqtt://b example\n", 2,
	             "[mqtt] broker: 'mqtt://b example': 'b example' is not a host name or IP address");
	expect_error(f, "[mqtt]\nbroker=mqtt://::1\n", 2,
	             "[mqtt] broker: 'mqtt://::1': an IPv6 address goes in brackets (mqtt://[ADDRESS]:PORT)");
	expect_error(f, "[mqtt]\nbroker=mqtt://[::1\n", 2,
	             "[mqtt] broker: 'mqtt://[::1': the IPv6 address lacks its ']'");
	expect_error(f, "[mqtt]\nbroker=mqtt://[10.0.0.1]\n", 2,
	             "[mqtt] broker: 'mqtt://[10.0.0.1]': '10.0.0.1' in brackets is not an IPv6 address");
	expect_error(f, "[mqtt]\nbroker=mqtt://[::1]1883\n", 2,
	             "[mqtt] broker: 'mqtt://[::1]1883': '1883' after the IPv6 address");

	/* Credentials in the URL: refused, pointing to their keys, and the password is not repeated. */
	expect_error(f, "# site\n[mqtt]\nbroker=mqtts://gw:s3cr3t@broker.example.com\n", 3,
	             "[mqtt] broker: the URL holds user information (USER@ or USER:PASSWORD@): credentials belong in "
	             "username= and password-file=, never in the broker URL");
	write_text(f->path, "[mqtt]\nbroker=mqtts://gw:s3cr3t@broker.example.com\n");
	config = healer_config_load(f->path, &error);
	g_assert_null(config);
	g_assert_nonnull(error);
	g_assert_null(strstr(error->message, "s3cr3t"));
	expect_error(f, "[mqtt]\nbroker=mqtt://gw@broker.example.com:1883\n", 2, "[mqtt] broker: the URL holds user");
}

/* Topic names: the prefix, the gateway id and the client id, each refused with what it must be. */
static void
test_mqtt_names(Fixture *f, gconstpointer data)
{
	g_autofree char *level_128 = g_strnfill(128, 'g');
	g_autofree char *client_128 = g_strnfill(128, 'c');
	g_autofree char *long_prefix = g_strdup_printf("[mqtt]\ntopic-prefix=site/%s/x\n", level_128);
	g_autofree char *long_gateway = g_strdup_printf("[mqtt]\ngateway-id=%s\n", level_128);
	g_autofree char *long_client = g_strdup_printf("[mqtt]\nclient-id=%s\n", client_128);
	g_autofree char *too_long_prefix = g_strdup_printf("[mqtt]\ntopic-prefix=site/%sg\n", level_128);
	g_autofree char *too_long_gateway = g_strdup_printf("[mqtt]\ngateway-id=%sg\n", level_128);
	g_autofree char *too_long_client = g_strdup_printf("[mqtt]\nclient-id=%sc\n", client_128);
	g_autofree char *username_65536 = g_strnfill(65536, 'u');
	g_autofree char *long_username = g_strdup_printf("[mqtt]\nusername=%s\n", username_65536);

	(void)data;
	{
		g_autoptr(HealerConfig) a = load_text(f, long_prefix);
		g_autoptr(HealerConfig) b = load_text(f, long_gateway);
		g_autoptr(HealerConfig) c = load_text(f, long_client);
		g_autoptr(HealerConfig) d = load_text(f, "[mqtt]\ngateway-id=Halle 3 Süd\ntopic-prefix=fabrik/Süd\n");
		g_assert_cmpuint(strlen(a->mqtt_topic_prefix), ==, 135);
		g_assert_cmpstr(b->mqtt_gateway_id, ==, level_128);
		g_assert_cmpstr(c->mqtt_client_id, ==, client_128);
		g_assert_cmpstr(d->mqtt_gateway_id, ==, "Halle 3 Süd");
		g_assert_cmpstr(d->mqtt_topic_prefix, ==, "fabrik/Süd");
	}
	expect_error(f, "[mqtt]\ntopic-prefix=\n", 2,
	             "[mqtt] topic-prefix: '' is not a topic prefix (topic levels separated by single '/': none "
	             "empty or over 128 bytes, no '+', '#' or control character, no leading '$')");
	expect_error(f, "[mqtt]\ntopic-prefix=site//healerd\n", 2,
	             "[mqtt] topic-prefix: 'site//healerd' is not a topic");
	expect_error(f, "[mqtt]\ntopic-prefix=/healerd\n", 2, "[mqtt] topic-prefix: '/healerd' is not a topic prefix");
	expect_error(f, "[mqtt]\ntopic-prefix=healerd/\n", 2, "[mqtt] topic-prefix: 'healerd/' is not a topic prefix");
	expect_error(f, "[mqtt]\ntopic-prefix=site/+\n", 2, "[mqtt] topic-prefix: 'site/+' is not a topic prefix");
	expect_error(f, "[mqtt]\ntopic-prefix=#\n", 2, "[mqtt] topic-prefix: '#' is not a topic prefix");
	expect_error(f, "[mqtt]\ntopic-prefix=$SYS/healerd\n", 2, "[mqtt] topic-prefix: '$SYS/healerd' is not");
	expect_error(f, too_long_prefix, 2, "[mqtt] topic-prefix: 'site/ggg");
	expect_error(f, "[mqtt]\ngateway-id=hall/3\n", 2,
	             "[mqtt] gateway-id: 'hall/3' is not one topic level (1..128 bytes of UTF-8, no '/', '+', '#' "
	             "or control character, no leading '$')");
	expect_error(f, "[mqtt]\ngateway-id=+\n", 2, "[mqtt] gateway-id: '+' is not one topic level");
	expect_error(f, "[mqtt]\ngateway-id=gw#1\n", 2, "[mqtt] gateway-id: 'gw#1' is not one topic level");
	expect_error(f, "[mqtt]\ngateway-id=$gw\n", 2, "[mqtt] gateway-id: '$gw' is not one topic level");
	expect_error(f, "[mqtt]\ngateway-id=gw\\t1\n", 2, "[mqtt] gateway-id: 'gw\t1' is not one topic level");
	expect_error(f, too_long_gateway, 2, "[mqtt] gateway-id: 'ggg");
	expect_error(f, "[mqtt]\nclient-id=gw 1\n", 2,
	             "[mqtt] client-id: 'gw 1' is not a client id (1..128 printable ASCII characters, no spaces)");
	expect_error(f, "[mqtt]\nclient-id=gw-ü\n", 2, "[mqtt] client-id: 'gw-ü' is not a client id");
	expect_error(f, too_long_client, 2, "[mqtt] client-id: 'ccc");
	expect_error(f, "[mqtt]\nusername=gw\\n7\n", 2,
	             "[mqtt] username: a control character (U+000A) at byte 2: only printable text");
	expect_error(f, "[mqtt]\nusername=gw\x7f\n", 2, "[mqtt] username: a control character (U+007F) at byte 2");
	expect_error(f, "[mqtt]\nusername=gw\\q\n", 2, "[mqtt] username: '\\q' is not an escape");
	expect_error(f, "[mqtt]\nusername=gw\xff\n", 2, "[mqtt] username: ");
	expect_error(f, long_username, 2, "[mqtt] username: 65536 bytes is longer than an MQTT string (65535 bytes)");
}

/* Numbers, the boolean and the paths. */
static void
test_mqtt_values(Fixture *f, gconstpointer data)
{
	(void)data;
	{
		g_autoptr(HealerConfig) low = load_text(f, "[mqtt]\nkeepalive=5\noutbox-max-bytes=65536\n");
		g_autoptr(HealerConfig) high = load_text(f, "[mqtt]\nkeepalive=65535\noutbox-max-bytes=1073741824\n");
		g_assert_cmpuint(low->mqtt_keepalive_s, ==, 5);
		g_assert_cmpuint(low->mqtt_outbox_max_bytes, ==, 65536);
		g_assert_cmpuint(high->mqtt_keepalive_s, ==, 65535);
		g_assert_cmpuint(high->mqtt_outbox_max_bytes, ==, 1073741824);
	}
	expect_error(f, "[mqtt]\nkeepalive=4\n", 2, "[mqtt] keepalive: '4' is not a whole number 5..65535");
	expect_error(f, "[mqtt]\nkeepalive=65536\n", 2, "[mqtt] keepalive: '65536' is not a whole number 5..65535");
	expect_error(f, "[mqtt]\nkeepalive=1m\n", 2, "[mqtt] keepalive: '1m' is not a whole number 5..65535");
	expect_error(f, "[mqtt]\noutbox-max-bytes=65535\n", 2,
	             "[mqtt] outbox-max-bytes: '65535' is not a whole number 65536..1073741824");
	expect_error(f, "[mqtt]\noutbox-max-bytes=1073741825\n", 2,
	             "[mqtt] outbox-max-bytes: '1073741825' is not a whole number 65536..1073741824");
	expect_error(f, "[mqtt]\noutbox-max-bytes=16M\n", 2, "[mqtt] outbox-max-bytes: '16M' is not a whole number");
	expect_error(f, "[mqtt]\noutbox-max-bytes=-1\n", 2, "[mqtt] outbox-max-bytes: '-1' is not a whole number");
	expect_error(f, "[mqtt]\naccept-commands=yes\n", 2,
	             "[mqtt] accept-commands: 'yes' is not a boolean (true or false)");
	expect_error(f, "[mqtt]\npassword-file=mqtt-password\n", 2,
	             "[mqtt] password-file: 'mqtt-password' is not an absolute path");
	expect_error(f, "[mqtt]\nca-file=ca.pem\n", 2, "[mqtt] ca-file: 'ca.pem' is not an absolute path");
	expect_error(f, "[mqtt]\ncert-file=./cert.pem\n", 2, "[mqtt] cert-file: './cert.pem' is not an absolute path");
	expect_error(f, "[mqtt]\nkey-file=~/key.pem\n", 2, "[mqtt] key-file: '~/key.pem' is not an absolute path");
	expect_error(f, "[mqtt]\nbroker=mqtt://b.example\nport=1883\n", 3,
	             "[mqtt] port: unknown key (known keys in [mqtt]: broker, topic-prefix, gateway-id, client-id, "
	             "username, password-file, ca-file, cert-file, key-file, keepalive, accept-commands, "
	             "outbox-max-bytes)");
	expect_error(f, "[mqtt]\nkeepalive=30\nkeepalive=60\n", 3,
	             "[mqtt] keepalive: set twice in one file (first at line 2)");
}

/* Keys that go together, checked once every file is read: the error names the file and line of the key at fault. */
static void
test_mqtt_across_keys(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *drop_in = g_build_filename(f->dir, "healerd.conf.d", "50-tls.conf", NULL);
	g_autofree char *where = g_strdup_printf("%s:3: [mqtt] ca-file: a TLS file, but broker 'mqtt://b.example' is "
	                                         "plain mqtt://",
	                                         drop_in);

	(void)data;
	expect_error(f, "[mqtt]\nbroker=mqtts://b.example\ncert-file=/etc/c.pem\n", 3,
	             "[mqtt] cert-file: set without key-file: a client certificate goes with its private key (set "
	             "both, or neither)");
	expect_error(f, "[mqtt]\nkey-file=/etc/k.pem\n", 2, "[mqtt] key-file: set without cert-file");
	expect_error(f, "[mqtt]\nbroker=mqtts://b.example\n\npassword-file=/etc/p\n", 4,
	             "[mqtt] password-file: set without username: MQTT sends a password only with a user name (set "
	             "username=)");
	expect_error(f, "[mqtt]\nbroker=mqtt://b.example\nca-file=/etc/ca.pem\n", 3,
	             "[mqtt] ca-file: a TLS file, but broker 'mqtt://b.example' is plain mqtt:// (use "
	             "mqtts://HOST[:PORT], or leave ca-file, cert-file and key-file unset)");
	expect_error(f, "[mqtt]\nbroker=mqtt://b.example\ncert-file=/etc/c.pem\nkey-file=/etc/k.pem\n", 3,
	             "[mqtt] cert-file: a TLS file, but broker");
	{
		/* A username alone is fine; so are TLS files while MQTT is off. */
		g_autoptr(HealerConfig) user = load_text(f, "[mqtt]\nbroker=mqtt://b.example\nusername=gw\n");
		g_autoptr(HealerConfig) off = load_text(f, "[mqtt]\nca-file=/etc/ca.pem\n");
		g_assert_cmpstr(user->mqtt_username, ==, "gw");
		g_assert_null(user->mqtt_password_file);
		g_assert_cmpstr(off->mqtt_ca_file, ==, "/etc/ca.pem");
	}

	/* The TLS file in a drop-in, the plain broker in the main file: the drop-in's line. */
	write_text(f->path, "[mqtt]\nbroker=mqtt://b.example\n");
	write_drop_in(f, "50-tls.conf", "# TLS\n[mqtt]\nca-file=/etc/ca.pem\n");
	config = healer_config_load(f->path, &error);
	g_assert_null(config);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	if (strstr(error->message, where) == NULL)
		g_error("expected '%s' in '%s'", where, error->message);
	g_clear_error(&error);

	/* A later drop-in making it mqtts:// mends it. */
	write_drop_in(f, "60-mqtts.conf", "[mqtt]\nbroker=mqtts://b.example\n");
	config = healer_config_load(f->path, &error);
	g_assert_no_error(error);
	g_assert_true(config->mqtt_tls);
	g_assert_cmpstr(config->mqtt_ca_file, ==, "/etc/ca.pem");
}

/*
 * Drop-ins override [mqtt] keys one by one; an empty value puts a key back to none (broker: MQTT off)
 * or its default (gateway-id, client-id).
 */
static void
test_mqtt_drop_ins(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(HealerConfig) off = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *off_path = g_build_filename(f->dir, "healerd.conf.d", "90-off.conf", NULL);

	(void)data;
	write_text(f->path, "[mqtt]\nbroker=mqtt://old.example\ngateway-id=old\nclient-id=old-client\nkeepalive=30\n"
	                    "username=gw\npassword-file=/etc/p\n");
	write_drop_in(f, "10-site.conf",
	              "[mqtt]\nbroker=mqtts://new.example:9999\ngateway-id=\nclient-id=\n"
	              "accept-commands=true\n");
	write_drop_in(f, "20-user.conf", "[mqtt]\nusername=\npassword-file=\n");
	config = healer_config_load(f->path, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(config->mqtt_broker, ==, "mqtts://new.example:9999");
	g_assert_cmpstr(config->mqtt_host, ==, "new.example");
	g_assert_cmpuint(config->mqtt_port, ==, 9999);
	g_assert_true(config->mqtt_tls);
	g_assert_cmpstr(config->mqtt_gateway_id, ==, TEST_GATEWAY_ID);
	g_assert_cmpstr(config->mqtt_client_id, ==, "healerd-" TEST_GATEWAY_ID);
	g_assert_cmpuint(config->mqtt_keepalive_s, ==, 30);
	g_assert_true(config->mqtt_accept_commands);
	g_assert_null(config->mqtt_username);
	g_assert_null(config->mqtt_password_file);

	g_assert_true(g_file_set_contents(off_path, "[mqtt]\nbroker=\n", -1, NULL));
	off = healer_config_load(f->path, &error);
	g_assert_no_error(error);
	g_assert_null(off->mqtt_broker);
	g_assert_null(off->mqtt_host);
	g_assert_false(off->mqtt_tls);
	g_assert_null(off->mqtt_gateway_id);
	g_assert_null(off->mqtt_client_id);
}

/*
 * The default gateway id comes from the machine id, only when MQTT is on; without one the load fails at
 * the broker's line, telling the administrator to set gateway-id.
 */
static void
test_mqtt_gateway_default(Fixture *f, gconstpointer data)
{
	g_autofree char *long_gateway = NULL;

	(void)data;
	{
		g_autoptr(HealerConfig) config = load_text(f, "[mqtt]\nbroker=mqtt://b.example\n");
		g_autoptr(HealerConfig) own = load_text(f, "[mqtt]\nbroker=mqtt://b.example\ngateway-id=gw-1\n");
		g_autoptr(HealerConfig) named = NULL;
		g_assert_cmpstr(config->mqtt_gateway_id, ==, TEST_GATEWAY_ID);
		g_assert_cmpstr(config->mqtt_client_id, ==, "healerd-" TEST_GATEWAY_ID);
		g_assert_cmpstr(own->mqtt_gateway_id, ==, "gw-1");
		g_assert_cmpstr(own->mqtt_client_id, ==, "healerd-gw-1");
		named = load_text(f, "[mqtt]\nbroker=mqtt://b.example\nclient-id=mine\n");
		g_assert_cmpstr(named->mqtt_gateway_id, ==, TEST_GATEWAY_ID);
		g_assert_cmpstr(named->mqtt_client_id, ==, "mine");
	}

	/* No machine id (a container): MQTT off never asks for it; on, the load fails unless gateway-id is set. */
	healer_mqtt_gateway_id_set_machine_id_for_tests("");
	{
		g_autoptr(HealerConfig) off = load_text(f, "[mqtt]\nkeepalive=30\n");
		g_autoptr(HealerConfig) own = load_text(f, "[mqtt]\nbroker=mqtt://b.example\ngateway-id=gw-1\n");
		g_assert_null(off->mqtt_gateway_id);
		g_assert_cmpstr(own->mqtt_gateway_id, ==, "gw-1");
	}
	expect_error(f, "[daemon]\nlog-level=info\n[mqtt]\nbroker = mqtt://b.example\n", 4,
	             "[mqtt] broker: gateway-id is not set, and there is no machine id to derive it from "
	             "(/etc/machine-id: missing): set gateway-id= in [mqtt] (a name for this gateway, unique among "
	             "those on the broker, such as its serial number)");
	healer_mqtt_gateway_id_set_machine_id_for_tests(TEST_MACHINE_ID);

	/* A gateway id the default client id cannot be made of. */
	expect_error(f, "[mqtt]\nbroker=mqtt://b.example\ngateway-id=Halle 3\n", 3,
	             "[mqtt] gateway-id: the default client id from it, 'healerd-Halle 3', is not a client id "
	             "(1..128 printable ASCII characters, no spaces): set client-id= in [mqtt]");
	long_gateway = g_strdup_printf("[mqtt]\nbroker=mqtt://b.example\ngateway-id=%0128d\n", 7);
	expect_error(f, long_gateway, 3, "[mqtt] gateway-id: the default client id from it, 'healerd-0000");
}

/* The derivation, against values computed apart from healerd (TEST_GATEWAY_ID's comment). */
static void
test_mqtt_gateway_id_derivation(void)
{
	const struct {
		const char *machine;
		const char *gateway;
	} known[] = {
	        {TEST_MACHINE_ID, TEST_GATEWAY_ID},
	        {"4A8C1E2F9B7D4C6E8F0A1B2C3D4E5F60", TEST_GATEWAY_ID},
	        {"4a8c1e2f-9b7d-4c6e-8f0a-1b2c3d4e5f60", TEST_GATEWAY_ID},
	        {"0123456789abcdef0123456789abcdef", "a5cafd96e3e54ce69da54b02b787758c"},
	};
	const char *bad[] = {"",
	                     "4a8c1e2f9b7d4c6e8f0a1b2c3d4e5f6",
	                     "4a8c1e2f9b7d4c6e8f0a1b2c3d4e5f600",
	                     "4a8c1e2f9b7d4c6e8f0a1b2c3d4e5fxx",
	                     "00000000000000000000000000000000",
	                     "uninitialized"};

	for (gsize i = 0; i < G_N_ELEMENTS(known); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *id = healer_mqtt_gateway_id_from_machine_id(known[i].machine, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(id, ==, known[i].gateway);
	}
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *id = healer_mqtt_gateway_id_from_machine_id(bad[i], &error);
		g_assert_null(id);
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	}
}

/*
 * This machine, through libsystemd: with a machine id, sd_id128_get_machine_app_specific()'s id (what
 * config.c uses) is what the derivation above computes from the same machine id; without one, the
 * default fails, saying so.  Either way the real /etc/machine-id path runs.
 */
static void
test_mqtt_gateway_id_host(void)
{
	sd_id128_t machine;
	char machine_text[SD_ID128_STRING_MAX];
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) derive_error = NULL;
	g_autofree char *id = NULL;
	g_autofree char *expected = NULL;

	healer_mqtt_gateway_id_set_machine_id_for_tests(NULL);
	id = healer_mqtt_gateway_id_default(&error);
	healer_mqtt_gateway_id_set_machine_id_for_tests(TEST_MACHINE_ID);
	if (sd_id128_get_machine(&machine) < 0) {
		g_test_message("this machine has no machine id: the default must fail");
		g_assert_null(id);
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
		g_assert_true(g_str_has_prefix(error->message, "no machine id to derive it from (/etc/machine-id: "));
		return;
	}
	g_assert_no_error(error);
	expected = healer_mqtt_gateway_id_from_machine_id(sd_id128_to_string(machine, machine_text), &derive_error);
	g_assert_no_error(derive_error);
	g_assert_cmpstr(id, ==, expected);
	g_assert_cmpuint(strlen(id), ==, 32);
}

/* The shipped config/healerd.conf is valid and, all commented, means the defaults. */
static void
test_shipped_file(Fixture *f, gconstpointer data)
{
	g_autofree char *shipped = g_build_filename(g_getenv("HEALER_SOURCE_DIR"), "config", "healerd.conf", NULL);
	g_autoptr(GBytes) text = test_read_file(shipped);
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(HealerConfig) all = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) s = g_string_new(NULL);
	g_auto(GStrv) lines = NULL;

	(void)data;
	test_write_file(f->path, g_bytes_get_data(text, NULL), g_bytes_get_size(text));
	config = healer_config_load(f->path, &error);
	g_assert_no_error(error);
	assert_defaults(config);

	/* Every "#key=value" line uncommented still loads, and gives the defaults. */
	lines = g_strsplit(g_bytes_get_data(text, NULL), "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		const char *l = lines[i];
		if (l[0] == '#' && l[1] != ' ' && l[1] != '#' && l[1] != '\0' && strchr(l, '=') != NULL)
			l++;
		g_string_append_printf(s, "%s\n", l);
	}
	write_text(f->path, s->str);
	all = healer_config_load(f->path, &error);
	g_assert_no_error(error);
	/* The module directory line names the installed path, not this build's. */
	g_assert_cmpstr(all->state_dir, ==, "/var/lib/healerd");
	g_assert_cmpuint(all->baud, ==, 115200);
	g_assert_cmpuint(all->max_attempts, ==, 5);
	g_assert_cmpuint(all->retry_backoff_s, ==, 10);
	g_assert_true(all->auto_heal);
	g_assert_cmpuint(g_strv_length(all->serial_ports), ==, 2);
	g_assert_null(all->mqtt_broker);
	g_assert_null(all->mqtt_gateway_id);
	g_assert_cmpstr(all->mqtt_topic_prefix, ==, "healerd");
	g_assert_cmpuint(all->mqtt_keepalive_s, ==, 60);
	g_assert_false(all->mqtt_accept_commands);
	g_assert_cmpuint(all->mqtt_outbox_max_bytes, ==, 16 * 1024 * 1024);
}

/* A NUL byte is refused (GKeyFile alone would stop reading there without a word). */
static void
test_nul_byte(void)
{
	static const char text[] = "[healer]\nmax-attempts=3\n\0[healer]\nmax-attempts=lots\n";
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerConfig) config = healer_config_load_from_data("x.conf", text, sizeof text - 1, &error);
	g_autoptr(HealerConfig) good = NULL;

	g_assert_null(config);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_assert_cmpstr(error->message, ==, "x.conf: contains a NUL byte (not a text file)");
	g_clear_error(&error);
	good = healer_config_load_from_data("x.conf", text, strlen(text), &error);
	g_assert_no_error(error);
	g_assert_cmpuint(good->max_attempts, ==, 3);
}

static void
test_retry_delay(void)
{
	g_autoptr(HealerConfig) config = healer_config_new_defaults();

	g_assert_cmpuint(healer_config_retry_delay(config, 1), ==, 0);
	g_assert_cmpuint(healer_config_retry_delay(config, 2), ==, 10);
	g_assert_cmpuint(healer_config_retry_delay(config, 3), ==, 20);
	g_assert_cmpuint(healer_config_retry_delay(config, 4), ==, 40);
	g_assert_cmpuint(healer_config_retry_delay(config, 7), ==, 320);
	g_assert_cmpuint(healer_config_retry_delay(config, 8), ==, 600);
	g_assert_cmpuint(healer_config_retry_delay(config, 100), ==, 600);
	config->retry_backoff_s = 600;
	g_assert_cmpuint(healer_config_retry_delay(config, 2), ==, 600);
	g_assert_cmpuint(healer_config_retry_delay(config, 3), ==, 600);
}

static void
test_log_levels(void)
{
	GLogLevelFlags level = 0;

	g_assert_true(healer_log_level_from_string("error", &level));
	g_assert_cmpint(level, ==, G_LOG_LEVEL_CRITICAL);
	g_assert_true(healer_log_level_from_string("Warning", &level));
	g_assert_cmpint(level, ==, G_LOG_LEVEL_WARNING);
	g_assert_true(healer_log_level_from_string("debug", &level));
	g_assert_cmpint(level, ==, G_LOG_LEVEL_DEBUG);
	g_assert_false(healer_log_level_from_string("notice", &level));
	g_assert_cmpstr(healer_log_level_to_string(G_LOG_LEVEL_CRITICAL), ==, "error");
	g_assert_cmpstr(healer_log_level_to_string(G_LOG_LEVEL_INFO), ==, "info");
}

/* [particle] install routes: the default, and per platform, a later drop-in replacing one platform's. */
static void
test_particle_routes(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(GError) error = NULL;
	const char *routes[] = {"electron=control", "photon=control", "boron=dfu", NULL};

	(void)data;
	write_text(f->path, "[particle]\ninstall=dfu\ninstall.photon=dfu\ninstall.electron=control\n");
	write_drop_in(f, "10-photon.conf", "[particle]\ninstall.photon=control\ninstall.boron=dfu\n");
	config = healer_config_load(f->path, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(config->particle_install, ==, "dfu");
	assert_strv(config->particle_install_platforms, routes);
}

#define ADD(name, func) g_test_add(name, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* No test here reads this machine's /etc/machine-id, but /config/mqtt/gateway-id-host. */
	healer_mqtt_gateway_id_set_machine_id_for_tests(TEST_MACHINE_ID);
	ADD("/config/defaults", test_defaults);
	ADD("/config/full-file", test_full_file);
	ADD("/config/default-release-tables", test_default_release_tables);
	ADD("/config/drop-ins", test_drop_ins);
	ADD("/config/invalid", test_invalid);
	ADD("/config/invalid-drop-in", test_invalid_drop_in);
	ADD("/config/duplicate-keys", test_duplicate_keys);
	ADD("/config/insecure-http", test_insecure_http);
	ADD("/config/syntax-error", test_syntax_error);
	ADD("/config/shipped-file", test_shipped_file);
	ADD("/config/particle-routes", test_particle_routes);
	ADD("/config/mqtt/full", test_mqtt_full);
	ADD("/config/mqtt/broker", test_mqtt_broker);
	ADD("/config/mqtt/invalid-broker", test_mqtt_invalid_broker);
	ADD("/config/mqtt/names", test_mqtt_names);
	ADD("/config/mqtt/values", test_mqtt_values);
	ADD("/config/mqtt/across-keys", test_mqtt_across_keys);
	ADD("/config/mqtt/drop-ins", test_mqtt_drop_ins);
	ADD("/config/mqtt/gateway-default", test_mqtt_gateway_default);
	g_test_add_func("/config/mqtt/gateway-id-derivation", test_mqtt_gateway_id_derivation);
	g_test_add_func("/config/mqtt/gateway-id-host", test_mqtt_gateway_id_host);
	g_test_add_func("/config/retry-delay", test_retry_delay);
	g_test_add_func("/config/nul-byte", test_nul_byte);
	g_test_add_func("/config/log-levels", test_log_levels);
	return g_test_run();
}
