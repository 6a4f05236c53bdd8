#include <string.h>

#include <glib/gstdio.h>

#include "config.h"
#include "healer-error.h"
#include "test-util.h"

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
	expect_error(f, "[daemon]\nlog-level=info\n[mqtt]\nbroker=x\n", 3,
	             "[mqtt]: unknown group (known groups: daemon, serial, usb, particle, store, healer, upstream)");
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
	g_test_add_func("/config/retry-delay", test_retry_delay);
	g_test_add_func("/config/nul-byte", test_nul_byte);
	g_test_add_func("/config/log-levels", test_log_levels);
	return g_test_run();
}
