#include "config.h"

#include <stddef.h>
#include <string.h>

#include "healer-error.h"
#include "healer-serial.h"
#include "port-guard.h"
#include "module-names.h"
#include "mqtt-gateway-id.h"
#include "mqtt-topic.h"
#include "usb-selector.h"

#ifndef HEALER_DEFAULT_MODULE_DIR
#define HEALER_DEFAULT_MODULE_DIR HEALER_FIRMWARE_DIR
#endif
#ifndef HEALER_VENDOR_KEYS_DIR
#define HEALER_VENDOR_KEYS_DIR "/usr/share/healerd/trusted-keys.d"
#endif

/* The administrator's keys, then the keys shipped with the package's own firmware. */
const char *const healer_config_default_trusted_key_dirs[] = {"/etc/healerd/trusted-keys.d", HEALER_VENDOR_KEYS_DIR,
                                                              NULL};

#define DEFAULT_STATE_DIR "/var/lib/healerd"
#define DROP_IN_DIR       "healerd.conf.d"
#define MAX_RETRY_DELAY_S 600

/*
 * [upstream] transfer-timeout-seconds.  The default: a catalog (KBs) and its
 * signature arrive in seconds even over a slow cellular link; 120 s leaves
 * room for that and for a 30 s connect, while a server that trickles bytes
 * (curl's stall check only catches less than 1 byte/s) holds a refresh at most
 * this long per transfer.  A module download cut by it resumes where it
 * stopped on the next try.  At least 5 s: a TLS handshake over a slow link;
 * at most an hour.
 */
#define DEFAULT_TRANSFER_TIMEOUT_S 120
#define MIN_TRANSFER_TIMEOUT_S     5
#define MAX_TRANSFER_TIMEOUT_S     3600

/*
 * [mqtt].  The keepalive's floor keeps a gateway from pinging its broker (over a metered
 * link) every second; its ceiling is MQTT's (a 16-bit field).  The outbox holds the events
 * the broker has not acknowledged, a few hundred bytes each: 16 MiB is tens of thousands,
 * 64 KiB still a hundred or so; 1 GiB is past anything a gateway's storage should give it.
 */
#define MQTT_DEFAULT_PREFIX         "healerd"
#define MQTT_DEFAULT_PORT           1883
#define MQTT_DEFAULT_TLS_PORT       8883
#define MQTT_DEFAULT_KEEPALIVE_S    60
#define MQTT_MIN_KEEPALIVE_S        5
#define MQTT_MAX_KEEPALIVE_S        65535
#define MQTT_DEFAULT_OUTBOX_BYTES   (16u * 1024 * 1024)
#define MQTT_MIN_OUTBOX_BYTES       (64u * 1024)
#define MQTT_MAX_OUTBOX_BYTES       (1024u * 1024 * 1024)
#define MQTT_MAX_CLIENT_ID          128
#define MQTT_DEFAULT_CLIENT_ID_HEAD "healerd-"

typedef enum {
	KEY_PATH,      /* one absolute path */
	KEY_PATH_OPT,  /* one absolute path, or empty for none */
	KEY_URL,       /* an http:// or https:// URL, or empty for none */
	KEY_STRING,    /* any text; set (even to "") when the key is present */
	KEY_PATH_LIST, /* absolute paths (or globs), ';'-separated */
	KEY_UINT,      /* whole number in [min, max] */
	KEY_BOOL,
	KEY_LOG_LEVEL,
	KEY_BAUD,
	KEY_USB_LIST,        /* USB selectors (usb-match.h), ';'-separated */
	KEY_UINT64,          /* whole number in [min, max], into a guint64 */
	KEY_TEXT_OPT,        /* UTF-8 text without control characters, or empty for none */
	KEY_MQTT_BROKER,     /* mqtt://HOST[:PORT] or mqtts://HOST[:PORT], or empty for none */
	KEY_MQTT_PREFIX,     /* topic levels separated by '/' (mqtt-topic.h) */
	KEY_MQTT_LEVEL_OPT,  /* one topic level, or empty for the default */
	KEY_MQTT_CLIENT_OPT, /* an MQTT client id, or empty for the default */
} KeyType;

typedef struct {
	const char *group;
	const char *key;
	KeyType type;
	guint min, max;
	gsize offset; /* of the field in HealerConfig */
} KeySpec;

#define FIELD(f) offsetof(HealerConfig, f)

static const KeySpec keys[] = {
        {"daemon", "state-directory", KEY_PATH, 0, 0, FIELD(state_dir)},
        {"daemon", "log-level", KEY_LOG_LEVEL, 0, 0, FIELD(log_level)},
        {"serial", "ports", KEY_PATH_LIST, 0, 0, FIELD(serial_ports)},
        {"serial", "baud", KEY_BAUD, 0, 0, FIELD(baud)},
        {"serial", "watch", KEY_BOOL, 0, 0, FIELD(serial_watch)},
        {"serial", "device-ids-per-minute", KEY_UINT, 1, 600, FIELD(device_ids_per_minute)},
        {"usb", "enable", KEY_BOOL, 0, 0, FIELD(usb_enable)},
        {"usb", "ignore", KEY_USB_LIST, 0, 0, FIELD(usb_ignore)},
        {"particle", "install", KEY_STRING, 0, 0, FIELD(particle_install)},
        {"store", "module-directories", KEY_PATH_LIST, 0, 0, FIELD(module_dirs)},
        {"store", "release-tables", KEY_PATH_LIST, 0, 0, FIELD(release_tables)},
        {"healer", "max-concurrent-jobs", KEY_UINT, 0, 1024, FIELD(max_concurrent_jobs)},
        {"healer", "reset-timeout-seconds", KEY_UINT, 1, 3600, FIELD(reset_timeout_s)},
        {"healer", "response-timeout-seconds", KEY_UINT, 1, 600, FIELD(response_timeout_s)},
        {"healer", "max-attempts", KEY_UINT, 1, 100, FIELD(max_attempts)},
        {"healer", "retry-backoff-seconds", KEY_UINT, 1, MAX_RETRY_DELAY_S, FIELD(retry_backoff_s)},
        {"healer", "allow-prerelease", KEY_BOOL, 0, 0, FIELD(allow_prerelease)},
        {"healer", "auto-heal", KEY_BOOL, 0, 0, FIELD(auto_heal)},
        {"store", "trusted-keys", KEY_PATH_LIST, 0, 0, FIELD(trusted_key_dirs)},
        {"store", "allow-unsigned", KEY_BOOL, 0, 0, FIELD(allow_unsigned)},
        {"upstream", "url", KEY_URL, 0, 0, FIELD(upstream_url)},
        {"upstream", "ca-file", KEY_PATH_OPT, 0, 0, FIELD(upstream_ca_file)},
        {"upstream", "proxy", KEY_STRING, 0, 0, FIELD(upstream_proxy)},
        {"upstream", "max-parallel-downloads", KEY_UINT, 1, 32, FIELD(upstream_max_parallel)},
        {"upstream", "max-bytes-per-second", KEY_UINT, 0, G_MAXINT32, FIELD(upstream_max_bytes_per_s)},
        {"upstream", "refresh-interval-seconds", KEY_UINT, 0, 7 * 24 * 3600, FIELD(upstream_refresh_s)},
        {"upstream", "retry-min-seconds", KEY_UINT, 1, 3600, FIELD(upstream_retry_min_s)},
        {"upstream", "retry-max-seconds", KEY_UINT, 1, 24 * 3600, FIELD(upstream_retry_max_s)},
        {"upstream", "transfer-timeout-seconds", KEY_UINT, MIN_TRANSFER_TIMEOUT_S, MAX_TRANSFER_TIMEOUT_S,
         FIELD(upstream_transfer_timeout_s)},
        {"upstream", "allow-insecure-http", KEY_BOOL, 0, 0, FIELD(upstream_allow_insecure_http)},
        {"mqtt", "broker", KEY_MQTT_BROKER, 0, 0, FIELD(mqtt_broker)},
        {"mqtt", "topic-prefix", KEY_MQTT_PREFIX, 0, 0, FIELD(mqtt_topic_prefix)},
        {"mqtt", "gateway-id", KEY_MQTT_LEVEL_OPT, 0, 0, FIELD(mqtt_gateway_id)},
        {"mqtt", "client-id", KEY_MQTT_CLIENT_OPT, 0, 0, FIELD(mqtt_client_id)},
        {"mqtt", "username", KEY_TEXT_OPT, 0, 0, FIELD(mqtt_username)},
        {"mqtt", "password-file", KEY_PATH_OPT, 0, 0, FIELD(mqtt_password_file)},
        {"mqtt", "ca-file", KEY_PATH_OPT, 0, 0, FIELD(mqtt_ca_file)},
        {"mqtt", "cert-file", KEY_PATH_OPT, 0, 0, FIELD(mqtt_cert_file)},
        {"mqtt", "key-file", KEY_PATH_OPT, 0, 0, FIELD(mqtt_key_file)},
        {"mqtt", "keepalive", KEY_UINT, MQTT_MIN_KEEPALIVE_S, MQTT_MAX_KEEPALIVE_S, FIELD(mqtt_keepalive_s)},
        {"mqtt", "accept-commands", KEY_BOOL, 0, 0, FIELD(mqtt_accept_commands)},
        {"mqtt", "outbox-max-bytes", KEY_UINT64, MQTT_MIN_OUTBOX_BYTES, MQTT_MAX_OUTBOX_BYTES,
         FIELD(mqtt_outbox_max_bytes)},
};

/* NULL-terminated: the unknown-group error lists them (g_strjoinv). */
static const char *const groups[] = {
        "daemon", "serial", "usb", "particle", "store", "healer", "upstream", "mqtt", NULL,
};

/* [particle] install.PLATFORM: the route for one platform, named as module-names.h names it. */
#define PARTICLE_INSTALL_PREFIX "install."

static const struct {
	const char *name;
	GLogLevelFlags level;
} log_levels[] = {
        {"error", G_LOG_LEVEL_CRITICAL},
        {"warning", G_LOG_LEVEL_WARNING},
        {"info", G_LOG_LEVEL_INFO},
        {"debug", G_LOG_LEVEL_DEBUG},
};

gboolean
healer_log_level_from_string(const char *name, GLogLevelFlags *level)
{
	for (gsize i = 0; i < G_N_ELEMENTS(log_levels); i++) {
		if (g_ascii_strcasecmp(name, log_levels[i].name) == 0) {
			*level = log_levels[i].level;
			return TRUE;
		}
	}
	return FALSE;
}

const char *
healer_log_level_to_string(GLogLevelFlags level)
{
	for (gsize i = 0; i < G_N_ELEMENTS(log_levels); i++) {
		if (log_levels[i].level == (level & G_LOG_LEVEL_MASK))
			return log_levels[i].name;
	}
	return "info";
}

const char *
healer_config_default_module_dir(void)
{
	return HEALER_DEFAULT_MODULE_DIR;
}

/* <dir>/releases.json of each module directory where that file exists. */
static void
set_default_release_tables(HealerConfig *config)
{
	g_autoptr(GPtrArray) tables = g_ptr_array_new_with_free_func(g_free);

	for (guint i = 0; config->module_dirs[i] != NULL; i++) {
		g_autofree char *table = g_build_filename(config->module_dirs[i], "releases.json", NULL);
		if (g_file_test(table, G_FILE_TEST_IS_REGULAR))
			g_ptr_array_add(tables, g_steal_pointer(&table));
	}
	g_ptr_array_add(tables, NULL);
	g_strfreev(config->release_tables);
	config->release_tables = (GStrv)g_ptr_array_steal(tables, NULL);
}

HealerConfig *
healer_config_new_defaults(void)
{
	HealerConfig *config = g_new0(HealerConfig, 1);
	const char *ports[] = {"/dev/ttyACM*", "/dev/ttyUSB*", NULL};
	const char *dirs[] = {HEALER_DEFAULT_MODULE_DIR, NULL};

	config->state_dir = g_strdup(DEFAULT_STATE_DIR);
	config->log_level = G_LOG_LEVEL_INFO;
	config->serial_ports = g_strdupv((char **)ports);
	config->baud = 115200;
	config->serial_watch = TRUE;
	config->device_ids_per_minute = PORT_GUARD_IDENTITIES;
	config->usb_enable = TRUE;
	config->usb_ignore = g_new0(char *, 1);
	config->particle_install = g_strdup("control");
	config->particle_install_platforms = g_new0(char *, 1);
	config->module_dirs = g_strdupv((char **)dirs);
	config->max_concurrent_jobs = 0;
	config->reset_timeout_s = 30;
	config->response_timeout_s = 10;
	config->max_attempts = 5;
	config->retry_backoff_s = 10;
	config->allow_prerelease = FALSE;
	config->auto_heal = TRUE;
	config->trusted_key_dirs = g_strdupv((char **)healer_config_default_trusted_key_dirs);
	config->allow_unsigned = FALSE;
	config->upstream_max_parallel = 2;
	config->upstream_max_bytes_per_s = 0;
	config->upstream_refresh_s = 6 * 3600;
	config->upstream_retry_min_s = 5;
	config->upstream_retry_max_s = 600;
	config->upstream_transfer_timeout_s = DEFAULT_TRANSFER_TIMEOUT_S;
	config->upstream_allow_insecure_http = FALSE;
	/* MQTT is off (no broker); gateway-id and client-id get their defaults only when it is on. */
	config->mqtt_topic_prefix = g_strdup(MQTT_DEFAULT_PREFIX);
	config->mqtt_keepalive_s = MQTT_DEFAULT_KEEPALIVE_S;
	config->mqtt_accept_commands = FALSE;
	config->mqtt_outbox_max_bytes = MQTT_DEFAULT_OUTBOX_BYTES;
	config->files = g_new0(char *, 1);
	set_default_release_tables(config);
	return config;
}

void
healer_config_free(HealerConfig *config)
{
	if (config == NULL)
		return;
	g_free(config->state_dir);
	g_strfreev(config->serial_ports);
	g_strfreev(config->usb_ignore);
	g_free(config->particle_install);
	g_strfreev(config->particle_install_platforms);
	g_strfreev(config->module_dirs);
	g_strfreev(config->release_tables);
	g_strfreev(config->trusted_key_dirs);
	g_free(config->upstream_url);
	g_free(config->upstream_ca_file);
	g_free(config->upstream_proxy);
	g_free(config->mqtt_broker);
	g_free(config->mqtt_host);
	g_free(config->mqtt_topic_prefix);
	g_free(config->mqtt_gateway_id);
	g_free(config->mqtt_client_id);
	g_free(config->mqtt_username);
	g_free(config->mqtt_password_file);
	g_free(config->mqtt_ca_file);
	g_free(config->mqtt_cert_file);
	g_free(config->mqtt_key_file);
	g_strfreev(config->files);
	g_free(config);
}

guint
healer_config_retry_delay(const HealerConfig *config, guint attempt)
{
	guint64 delay = config->retry_backoff_s;

	if (attempt <= 1)
		return 0;
	for (guint i = 2; i < attempt && delay < MAX_RETRY_DELAY_S; i++)
		delay *= 2;
	return (guint)MIN(delay, (guint64)MAX_RETRY_DELAY_S);
}

/*
 * GKeyFile keeps no line numbers, so find the line the way it reads the
 * file: leading blanks skipped, '#' comments, "[group]" headers, "key=value"
 * with blanks around the key.  For a key, the last occurrence in the group
 * (the one GKeyFile keeps); for a group (key NULL), its first header.
 * 0 when not found.
 */
static guint
find_line(const char *text, const char *group, const char *key)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	gboolean in_group = FALSE;
	guint found = 0;

	for (guint i = 0; lines[i] != NULL; i++) {
		const char *line = lines[i];
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '#' || *line == '\0')
			continue;
		if (*line == '[') {
			const char *end = strchr(line, ']');
			in_group = end != NULL && (gsize)(end - line - 1) == strlen(group) &&
			           strncmp(line + 1, group, end - line - 1) == 0;
			if (in_group && key == NULL)
				return i + 1;
			continue;
		}
		if (in_group && key != NULL) {
			const char *eq = strchr(line, '=');
			gsize len;
			if (eq == NULL)
				continue;
			len = eq - line;
			while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
				len--;
			if (len == strlen(key) && strncmp(line, key, len) == 0)
				found = i + 1;
		}
	}
	return found;
}

/* "FILE:LINE" of a key (or group), or "FILE" when the line cannot be found. */
static char *
key_location(const char *file, const char *text, const char *group, const char *key)
{
	guint line = find_line(text, group, key);

	return line > 0 ? g_strdup_printf("%s:%u", file, line) : g_strdup(file);
}

/* Sets "FILE:LINE: [group] key: <message>" (no LINE when it cannot be found). */
G_GNUC_PRINTF(6, 7)
static void
set_key_error(GError **error, const char *file, const char *text, const char *group, const char *key,
              const char *format, ...)
{
	g_autofree char *message = NULL;
	g_autofree char *where = key_location(file, text, group, key);
	va_list args;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	if (key != NULL)
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "%s: [%s] %s: %s", where, group, key,
		            message);
	else
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "%s: [%s]: %s", where, group, message);
}

static const KeySpec *
find_key(const char *group, const char *key)
{
	for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
		if (strcmp(keys[i].group, group) == 0 && strcmp(keys[i].key, key) == 0)
			return &keys[i];
	}
	return NULL;
}

static char *
known_keys(const char *group)
{
	g_autoptr(GString) s = g_string_new(NULL);

	for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
		if (strcmp(keys[i].group, group) != 0)
			continue;
		if (s->len > 0)
			g_string_append(s, ", ");
		g_string_append(s, keys[i].key);
	}
	return g_string_free(g_steal_pointer(&s), FALSE);
}

static gboolean
is_known_group(const char *group)
{
	for (gsize i = 0; groups[i] != NULL; i++) {
		if (strcmp(groups[i], group) == 0)
			return TRUE;
	}
	return FALSE;
}

static gboolean
parse_bool(const char *value, gboolean *out)
{
	if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0) {
		*out = TRUE;
		return TRUE;
	}
	if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0) {
		*out = FALSE;
		return TRUE;
	}
	return FALSE;
}

/*
 * GKeyFile's escapes are \s \n \t \r \\ (and, in lists, \; for a literal
 * separator): any other, or a backslash ending the value, is an error,
 * described here.  NULL when every escape is valid.
 */
static char *
find_bad_escape(const char *raw, gboolean list)
{
	for (const char *p = raw; *p != '\0'; p++) {
		if (*p != '\\')
			continue;
		p++;
		if (*p == '\0')
			return g_strdup("a backslash ends the value (write \\\\ for a backslash)");
		if (strchr("sntr\\", *p) == NULL && !(list && *p == ';'))
			return g_ascii_isprint(*p)
			               ? g_strdup_printf("'\\%c' is not an escape (\\s \\n \\t \\r \\\\%s)", *p,
			                                 list ? " \\;" : "")
			               : g_strdup_printf("a backslash before byte 0x%02x is not an escape", (guint8)*p);
	}
	return NULL;
}

#define BROKER_FORM "mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"

/* A host name or IPv4 address as a broker URL may carry it: letters, digits, '-', '.', '_'. */
static gboolean
broker_host_is_valid(const char *host)
{
	gsize len = strlen(host);

	if (len == 0 || len > 253)
		return FALSE;
	for (const char *p = host; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.' && *p != '_')
			return FALSE;
	}
	return TRUE;
}

/*
 * [mqtt] broker: "mqtt://HOST[:PORT]" or "mqtts://HOST[:PORT]" (the scheme in any case), HOST a
 * name, an IPv4 address or an IPv6 address in brackets (a zone written %25ZONE, RFC 6874).
 * Nothing else: no user information (the credentials have keys of their own, and the broker is
 * shown in logs and the status), no path, query or fragment (MQTT has none; a lone '/' is fine).
 * FALSE with *why, the text after "[mqtt] broker: ", when it is not so.
 */
static gboolean
parse_broker(const char *value, char **host_out, guint *port_out, gboolean *tls_out, char **why)
{
	g_autofree char *authority = NULL;
	g_autofree char *host = NULL;
	const char *rest;
	const char *port_text = NULL;
	gboolean tls;
	gsize len;
	guint64 port;

	if (g_ascii_strncasecmp(value, "mqtts://", 8) == 0) {
		tls = TRUE;
		rest = value + 8;
	} else if (g_ascii_strncasecmp(value, "mqtt://", 7) == 0) {
		tls = FALSE;
		rest = value + 7;
	} else {
		const char *sep = strstr(value, "://");
		*why = sep != NULL ? g_strdup_printf("'%s': the scheme '%.*s' is not mqtt or mqtts (expected %s)",
		                                     value, (int)(sep - value), value, BROKER_FORM)
		                   : g_strdup_printf("'%s' is not a broker URL (expected %s)", value, BROKER_FORM);
		return FALSE;
	}
	len = strcspn(rest, "/?#");
	/* Not quoted: it may hold a password. */
	if (memchr(rest, '@', len) != NULL) {
		*why = g_strdup(
		        "the URL holds user information (USER@ or USER:PASSWORD@): credentials belong in "
		        "username= and password-file=, never in the broker URL (it is logged); expected " BROKER_FORM);
		return FALSE;
	}
	if (rest[len] != '\0' && strcmp(rest + len, "/") != 0) {
		*why = g_strdup_printf("'%s': a path, query or fragment ('%s') has no meaning in MQTT (expected %s)",
		                       value, rest + len, BROKER_FORM);
		return FALSE;
	}
	authority = g_strndup(rest, len);
	if (authority[0] == '[') {
		const char *end = strchr(authority, ']');
		char *zone;
		if (end == NULL) {
			*why = g_strdup_printf("'%s': the IPv6 address lacks its ']' (expected %s)", value,
			                       BROKER_FORM);
			return FALSE;
		}
		host = g_strndup(authority + 1, end - authority - 1);
		zone = strstr(host, "%25");
		if (zone != NULL)
			memmove(zone + 1, zone + 3, strlen(zone + 3) + 1);
		if (strchr(host, ':') == NULL || !g_hostname_is_ip_address(host)) {
			*why = g_strdup_printf("'%s': '%.*s' in brackets is not an IPv6 address", value,
			                       (int)(end - authority - 1), authority + 1);
			return FALSE;
		}
		if (end[1] == ':') {
			port_text = end + 2;
		} else if (end[1] != '\0') {
			*why = g_strdup_printf("'%s': '%s' after the IPv6 address (expected %s)", value, end + 1,
			                       BROKER_FORM);
			return FALSE;
		}
	} else {
		const char *colon = strchr(authority, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL) {
			*why = g_strdup_printf("'%s': an IPv6 address goes in brackets (mqtt://[ADDRESS]:PORT)", value);
			return FALSE;
		}
		host = colon != NULL ? g_strndup(authority, colon - authority) : g_strdup(authority);
		port_text = colon != NULL ? colon + 1 : NULL;
		if (host[0] == '\0') {
			*why = g_strdup_printf("'%s' has no host (expected %s)", value, BROKER_FORM);
			return FALSE;
		}
		if (!broker_host_is_valid(host)) {
			*why = g_strdup_printf(
			        "'%s': '%s' is not a host name or IP address (letters, digits, '-', '.'; "
			        "an IPv6 address in brackets)",
			        value, host);
			return FALSE;
		}
	}
	if (port_text == NULL) {
		port = tls ? MQTT_DEFAULT_TLS_PORT : MQTT_DEFAULT_PORT;
	} else if (port_text[0] == '\0' || strspn(port_text, "0123456789") != strlen(port_text) ||
	           !g_ascii_string_to_unsigned(port_text, 10, 1, 65535, &port, NULL)) {
		*why = g_strdup_printf("'%s': the port '%s' is not a whole number 1..65535", value, port_text);
		return FALSE;
	}
	*host_out = g_steal_pointer(&host);
	*port_out = (guint)port;
	*tls_out = tls;
	return TRUE;
}

/*
 * An MQTT client id healerd accepts: 1..128 printable ASCII characters, no spaces.  MQTT 5 allows
 * any UTF-8, but brokers differ in what they take beyond that; a name every broker takes is asked for.
 */
static gboolean
client_id_is_valid(const char *id)
{
	gsize len = strlen(id);

	if (len == 0 || len > MQTT_MAX_CLIENT_ID)
		return FALSE;
	for (const char *p = id; *p != '\0'; p++) {
		if (!g_ascii_isgraph(*p))
			return FALSE;
	}
	return TRUE;
}

#define CLIENT_ID_FORM "1..128 printable ASCII characters, no spaces"

/*
 * UTF-8 (GKeyFile checked) without control characters, short enough for an MQTT string (a 16-bit
 * length).  NULL when it is; else what is wrong, without the text (a control character would garble
 * the message).
 */
static char *
find_mqtt_text_fault(const char *text)
{
	gsize len = strlen(text);

	if (len > G_MAXUINT16)
		return g_strdup_printf("%" G_GSIZE_FORMAT " bytes is longer than an MQTT string (65535 bytes)", len);
	for (const char *p = text; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (g_unichar_iscntrl(c))
			return g_strdup_printf("a control character (U+%04X) at byte %" G_GSIZE_FORMAT
			                       ": only printable text",
			                       c, (gsize)(p - text));
	}
	return NULL;
}

/* Reads one key of `kf` into `config`, checking it against `spec`. */
static gboolean
apply_key(HealerConfig *config, GKeyFile *kf, const KeySpec *spec, const char *file, const char *text, GError **error)
{
	guint8 *field = (guint8 *)config + spec->offset;
	g_autofree char *raw = g_key_file_get_value(kf, spec->group, spec->key, NULL);
	g_autofree char *value = g_strstrip(g_strdup(raw != NULL ? raw : ""));
	g_autoptr(GError) local_error = NULL;
	g_autofree char *bad_escape =
	        raw != NULL ? find_bad_escape(raw, spec->type == KEY_PATH_LIST || spec->type == KEY_USB_LIST) : NULL;

	/* Checked before GLib unescapes: GLib 2.74 sets its GError twice on some of these (a GLib warning). */
	if (bad_escape != NULL) {
		set_key_error(error, file, text, spec->group, spec->key, "%s", bad_escape);
		return FALSE;
	}
	switch (spec->type) {
	case KEY_PATH: {
		g_autofree char *path = g_key_file_get_string(kf, spec->group, spec->key, &local_error);
		if (path == NULL) {
			set_key_error(error, file, text, spec->group, spec->key, "%s", local_error->message);
			return FALSE;
		}
		g_strstrip(path);
		if (!g_path_is_absolute(path)) {
			set_key_error(error, file, text, spec->group, spec->key, "'%s' is not an absolute path", path);
			return FALSE;
		}
		g_free(*(char **)field);
		*(char **)field = g_steal_pointer(&path);
		return TRUE;
	}
	case KEY_PATH_OPT:
		if (value[0] == '\0') {
			g_clear_pointer((char **)field, g_free);
			return TRUE;
		}
		if (!g_path_is_absolute(value)) {
			set_key_error(error, file, text, spec->group, spec->key, "'%s' is not an absolute path", value);
			return FALSE;
		}
		g_free(*(char **)field);
		*(char **)field = g_steal_pointer(&value);
		return TRUE;
	case KEY_URL: {
		g_autoptr(GUri) uri = NULL;
		const char *scheme;
		if (value[0] == '\0') {
			g_clear_pointer((char **)field, g_free);
			return TRUE;
		}
		uri = g_uri_parse(value, G_URI_FLAGS_NONE, &local_error);
		scheme = uri != NULL ? g_uri_get_scheme(uri) : NULL;
		if (uri == NULL ||
		    (g_ascii_strcasecmp(scheme, "https") != 0 && g_ascii_strcasecmp(scheme, "http") != 0) ||
		    g_uri_get_host(uri) == NULL || g_uri_get_host(uri)[0] == '\0') {
			set_key_error(error, file, text, spec->group, spec->key,
			              "'%s' is not an http:// or https:// URL with a host", value);
			return FALSE;
		}
		/* One form for joining paths onto it: no trailing '/'. */
		while (g_str_has_suffix(value, "/"))
			value[strlen(value) - 1] = '\0';
		g_free(*(char **)field);
		*(char **)field = g_steal_pointer(&value);
		return TRUE;
	}
	case KEY_STRING:
		g_free(*(char **)field);
		*(char **)field = g_steal_pointer(&value);
		return TRUE;
	case KEY_PATH_LIST: {
		g_auto(GStrv) list = g_key_file_get_string_list(kf, spec->group, spec->key, NULL, &local_error);
		g_autoptr(GPtrArray) kept = g_ptr_array_new_with_free_func(g_free);
		if (list == NULL) {
			set_key_error(error, file, text, spec->group, spec->key, "%s", local_error->message);
			return FALSE;
		}
		for (guint i = 0; list[i] != NULL; i++) {
			g_strstrip(list[i]);
			if (list[i][0] == '\0')
				continue; /* "key=" is the empty list; "a;b;" has no third item */
			if (!g_path_is_absolute(list[i])) {
				set_key_error(error, file, text, spec->group, spec->key, "'%s' is not an absolute path",
				              list[i]);
				return FALSE;
			}
			g_ptr_array_add(kept, g_strdup(list[i]));
		}
		g_ptr_array_add(kept, NULL);
		g_strfreev(*(GStrv *)field);
		*(GStrv *)field = (GStrv)g_ptr_array_steal(kept, NULL);
		return TRUE;
	}
	case KEY_USB_LIST: {
		g_auto(GStrv) list = g_key_file_get_string_list(kf, spec->group, spec->key, NULL, &local_error);
		g_autoptr(GPtrArray) kept = g_ptr_array_new_with_free_func(g_free);
		if (list == NULL) {
			set_key_error(error, file, text, spec->group, spec->key, "%s", local_error->message);
			return FALSE;
		}
		for (guint i = 0; list[i] != NULL; i++) {
			HealerUsbSelector selector;
			g_strstrip(list[i]);
			if (list[i][0] == '\0')
				continue;
			if (!healer_usb_selector_parse(list[i], &selector, &local_error)) {
				set_key_error(error, file, text, spec->group, spec->key, "%s", local_error->message);
				return FALSE;
			}
			g_ptr_array_add(kept, g_strdup(list[i]));
		}
		g_ptr_array_add(kept, NULL);
		g_strfreev(*(GStrv *)field);
		*(GStrv *)field = (GStrv)g_ptr_array_steal(kept, NULL);
		return TRUE;
	}
	case KEY_UINT: {
		guint64 v = 0;
		if (!g_ascii_string_to_unsigned(value, 10, spec->min, spec->max, &v, NULL)) {
			set_key_error(error, file, text, spec->group, spec->key, "'%s' is not a whole number %u..%u",
			              value, spec->min, spec->max);
			return FALSE;
		}
		*(guint *)field = (guint)v;
		return TRUE;
	}
	case KEY_BAUD: {
		guint64 v = 0;
		if (g_ascii_string_to_unsigned(value, 10, 1, G_MAXUINT, &v, NULL) &&
		    healer_serial_baud_is_supported((guint)v)) {
			*(guint *)field = (guint)v;
			return TRUE;
		}
		{
			g_autofree char *rates = healer_serial_baud_rates_to_string();
			set_key_error(error, file, text, spec->group, spec->key,
			              "'%s' is not a supported baud rate (one of %s)", value, rates);
		}
		return FALSE;
	}
	case KEY_BOOL:
		if (!parse_bool(value, (gboolean *)field)) {
			set_key_error(error, file, text, spec->group, spec->key,
			              "'%s' is not a boolean (true or false)", value);
			return FALSE;
		}
		return TRUE;
	case KEY_UINT64: {
		guint64 v = 0;
		if (!g_ascii_string_to_unsigned(value, 10, spec->min, spec->max, &v, NULL)) {
			set_key_error(error, file, text, spec->group, spec->key, "'%s' is not a whole number %u..%u",
			              value, spec->min, spec->max);
			return FALSE;
		}
		*(guint64 *)field = v;
		return TRUE;
	}
	case KEY_TEXT_OPT:
	case KEY_MQTT_PREFIX:
	case KEY_MQTT_LEVEL_OPT:
	case KEY_MQTT_CLIENT_OPT: {
		/* Unescaped (GKeyFile's \s for a leading blank, say), and checked to be UTF-8. */
		g_autofree char *string = g_key_file_get_string(kf, spec->group, spec->key, &local_error);
		if (string == NULL) {
			set_key_error(error, file, text, spec->group, spec->key, "%s", local_error->message);
			return FALSE;
		}
		g_strstrip(string);
		if (string[0] == '\0' && spec->type != KEY_MQTT_PREFIX) {
			g_clear_pointer((char **)field, g_free);
			return TRUE;
		}
		if (spec->type == KEY_TEXT_OPT) {
			g_autofree char *fault = find_mqtt_text_fault(string);
			if (fault != NULL) {
				set_key_error(error, file, text, spec->group, spec->key, "%s", fault);
				return FALSE;
			}
		}
		if (spec->type == KEY_MQTT_PREFIX && !healer_mqtt_prefix_is_valid(string)) {
			set_key_error(error, file, text, spec->group, spec->key,
			              "'%s' is not a topic prefix (topic levels separated by single '/': none empty "
			              "or over %d bytes, no '+', '#' or control character, no leading '$')",
			              string, HEALER_MQTT_MAX_LEVEL);
			return FALSE;
		}
		if (spec->type == KEY_MQTT_LEVEL_OPT && !healer_mqtt_topic_level_is_valid(string)) {
			set_key_error(error, file, text, spec->group, spec->key,
			              "'%s' is not one topic level (1..%d bytes of UTF-8, no '/', '+', '#' or control "
			              "character, no leading '$')",
			              string, HEALER_MQTT_MAX_LEVEL);
			return FALSE;
		}
		if (spec->type == KEY_MQTT_CLIENT_OPT && !client_id_is_valid(string)) {
			set_key_error(error, file, text, spec->group, spec->key, "'%s' is not a client id (%s)", string,
			              CLIENT_ID_FORM);
			return FALSE;
		}
		g_free(*(char **)field);
		*(char **)field = g_steal_pointer(&string);
		return TRUE;
	}
	case KEY_MQTT_BROKER: {
		g_autofree char *host = NULL;
		g_autofree char *why = NULL;
		guint port = 0;
		gboolean tls = FALSE;
		if (value[0] == '\0') {
			g_clear_pointer(&config->mqtt_broker, g_free);
			g_clear_pointer(&config->mqtt_host, g_free);
			config->mqtt_port = 0;
			config->mqtt_tls = FALSE;
			return TRUE;
		}
		if (!parse_broker(value, &host, &port, &tls, &why)) {
			set_key_error(error, file, text, spec->group, spec->key, "%s", why);
			return FALSE;
		}
		g_free(config->mqtt_broker);
		config->mqtt_broker = g_steal_pointer(&value);
		g_free(config->mqtt_host);
		config->mqtt_host = g_steal_pointer(&host);
		config->mqtt_port = port;
		config->mqtt_tls = tls;
		return TRUE;
	}
	case KEY_LOG_LEVEL:
		if (!healer_log_level_from_string(value, (GLogLevelFlags *)field)) {
			set_key_error(error, file, text, spec->group, spec->key,
			              "'%s' is not a log level (error, warning, info or debug)", value);
			return FALSE;
		}
		return TRUE;
	}
	g_assert_not_reached();
}

/*
 * GKeyFile keeps the last of a key set twice in a group without a word, so
 * a forgotten second `ports=` line would silently win over the one being
 * edited.  Scans the lines as GKeyFile reads them (see find_line(); a group
 * may be opened more than once, its keys are one set) and refuses the second
 * setting.  Across files, a drop-in overriding the main file is the point.
 */
static gboolean
check_duplicate_keys(const char *file, const char *text, GError **error)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autofree char *group = NULL;

	for (guint i = 0; lines[i] != NULL; i++) {
		const char *line = lines[i];
		const char *eq;
		g_autofree char *id = NULL;
		gsize len;
		guint first;

		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '#' || *line == '\0')
			continue;
		if (*line == '[') {
			const char *end = strchr(line, ']');
			g_free(group);
			group = end != NULL ? g_strndup(line + 1, end - line - 1) : NULL;
			continue;
		}
		eq = strchr(line, '=');
		if (group == NULL || eq == NULL)
			continue; /* GKeyFile has refused the file already */
		len = eq - line;
		while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
			len--;
		id = g_strdup_printf("%s\n%.*s", group, (int)len, line);
		first = GPOINTER_TO_UINT(g_hash_table_lookup(seen, id));
		if (first != 0) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
			            "%s:%u: [%s] %.*s: set twice in one file (first at line %u); set each key once",
			            file, i + 1, group, (int)len, line, first);
			return FALSE;
		}
		g_hash_table_insert(seen, g_steal_pointer(&id), GUINT_TO_POINTER(i + 1));
	}
	return TRUE;
}

/* What loading gathers for the checks across keys and files (finish()). */
typedef struct {
	gboolean release_tables_set;
	GHashTable *where; /* "group\nkey" -> "FILE:LINE" of the setting in force; NULL until one */
} LoadState;

static void
load_state_clear(LoadState *state)
{
	g_clear_pointer(&state->where, g_hash_table_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(LoadState, load_state_clear)

static void
remember_where(LoadState *state, const char *group, const char *key, char *location)
{
	if (state->where == NULL)
		state->where = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_hash_table_replace(state->where, g_strdup_printf("%s\n%s", group, key), location);
}

/* "FILE:LINE" of the setting of a key in force; NULL when no file set it. */
static const char *
where_set(const LoadState *state, const char *group, const char *key)
{
	g_autofree char *id = g_strdup_printf("%s\n%s", group, key);

	return state->where != NULL ? g_hash_table_lookup(state->where, id) : NULL;
}

/* Sets "WHERE: [group] key: <message>" for a check across keys (WHERE: where_set(), else "configuration"). */
G_GNUC_PRINTF(5, 6)
static gboolean
fail_at(GError **error, const LoadState *state, const char *group, const char *key, const char *format, ...)
{
	const char *where = where_set(state, group, key);
	g_autofree char *message = NULL;
	va_list args;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "%s: [%s] %s: %s",
	            where != NULL ? where : "configuration", group, key, message);
	return FALSE;
}

/*
 * Parses and checks one file, applying its keys over `config`.  A missing
 * file is reported as NOT_FOUND so the caller can decide it is fine.
 */
static gboolean apply_text(HealerConfig *config, const char *file, const char *text, gsize len, LoadState *state,
                           GError **error);

static gboolean
load_file(HealerConfig *config, const char *file, LoadState *state, GError **error)
{
	g_autofree char *text = NULL;
	gsize len = 0;
	g_autoptr(GError) local_error = NULL;

	if (!g_file_get_contents(file, &text, &len, &local_error)) {
		HealerError code = HEALER_ERROR_IO;
		if (g_error_matches(local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			code = HEALER_ERROR_NOT_FOUND;
		else if (g_error_matches(local_error, G_FILE_ERROR, G_FILE_ERROR_ACCES))
			code = HEALER_ERROR_PERMISSION_DENIED;
		g_set_error(error, HEALER_ERROR, code, "%s", local_error->message);
		return FALSE;
	}
	return apply_text(config, file, text, len, state, error);
}

/* [particle] install and install.PLATFORM: "control" or "dfu". */
static gboolean
check_particle_route(const char *value, const char *file, const char *text, const char *key, GError **error)
{
	if (g_strcmp0(value, "control") == 0 || g_strcmp0(value, "dfu") == 0)
		return TRUE;
	set_key_error(error, file, text, "particle", key, "'%s': expected control or dfu", value);
	return FALSE;
}

/* install.PLATFORM: a platform healerd knows by name, and a route. */
static gboolean
check_particle_platform_key(GKeyFile *kf, const char *key, const char *file, const char *text, GError **error)
{
	const char *name = key + strlen(PARTICLE_INSTALL_PREFIX);
	const HealerPlatform *platform = healer_platform_lookup_name(name);
	g_autofree char *value = g_key_file_get_value(kf, "particle", key, NULL);

	if (platform == NULL) {
		set_key_error(error, file, text, "particle", key,
		              "unknown platform '%s' (a name as healerctl platforms lists it: photon, p1, electron, "
		              "argon, boron, bsom, p2, ...)",
		              name);
		return FALSE;
	}
	return check_particle_route(value, file, text, key, error);
}

/* Checked already: each install.PLATFORM replaces what an earlier file said of that platform. */
static void
apply_particle_platform_keys(HealerConfig *config, GKeyFile *kf)
{
	g_auto(GStrv) key_names = g_key_file_get_keys(kf, "particle", NULL, NULL);

	for (guint k = 0; key_names != NULL && key_names[k] != NULL; k++) {
		g_autoptr(GStrvBuilder) kept = NULL;
		const HealerPlatform *platform;
		g_autofree char *value = NULL;
		g_autofree char *prefix = NULL;
		g_autofree char *pair = NULL;

		if (!g_str_has_prefix(key_names[k], PARTICLE_INSTALL_PREFIX))
			continue;
		platform = healer_platform_lookup_name(key_names[k] + strlen(PARTICLE_INSTALL_PREFIX));
		value = g_key_file_get_value(kf, "particle", key_names[k], NULL);
		prefix = g_strdup_printf("%s=", platform->name);
		kept = g_strv_builder_new();
		for (guint i = 0; config->particle_install_platforms[i] != NULL; i++) {
			if (!g_str_has_prefix(config->particle_install_platforms[i], prefix))
				g_strv_builder_add(kept, config->particle_install_platforms[i]);
		}
		pair = g_strdup_printf("%s%s", prefix, value);
		g_strv_builder_add(kept, pair);
		g_strfreev(config->particle_install_platforms);
		config->particle_install_platforms = g_strv_builder_end(kept);
	}
}

/* Parses and checks `text` (`len` bytes, NUL-terminated), the contents of `file`, applying its keys over `config`. */
static gboolean
apply_text(HealerConfig *config, const char *file, const char *text, gsize len, LoadState *state, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) local_error = NULL;
	g_auto(GStrv) group_names = NULL;

	/* GKeyFile would stop at the NUL and ignore the rest without a word. */
	if (memchr(text, '\0', len) != NULL) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s: contains a NUL byte (not a text file)", file);
		return FALSE;
	}
	/* Translations kept, so "key[de]" is seen (and refused) rather than silently dropped. */
	if (!g_key_file_load_from_data(kf, text, (gsize)-1, G_KEY_FILE_KEEP_TRANSLATIONS, &local_error)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "%s: %s", file, local_error->message);
		return FALSE;
	}
	if (!check_duplicate_keys(file, text, error))
		return FALSE;

	/* Check every group and key first, so nothing of a bad file is applied. */
	group_names = g_key_file_get_groups(kf, NULL);
	for (guint g = 0; group_names[g] != NULL; g++) {
		g_auto(GStrv) key_names = NULL;
		if (!is_known_group(group_names[g])) {
			g_autofree char *known = g_strjoinv(", ", (char **)groups);
			set_key_error(error, file, text, group_names[g], NULL, "unknown group (known groups: %s)",
			              known);
			return FALSE;
		}
		key_names = g_key_file_get_keys(kf, group_names[g], NULL, NULL);
		for (guint k = 0; key_names != NULL && key_names[k] != NULL; k++) {
			if (strcmp(group_names[g], "particle") == 0 &&
			    g_str_has_prefix(key_names[k], PARTICLE_INSTALL_PREFIX)) {
				if (!check_particle_platform_key(kf, key_names[k], file, text, error))
					return FALSE;
				continue;
			}
			if (find_key(group_names[g], key_names[k]) == NULL) {
				g_autofree char *known = known_keys(group_names[g]);
				set_key_error(error, file, text, group_names[g], key_names[k],
				              "unknown key (known keys in [%s]: %s)", group_names[g], known);
				return FALSE;
			}
		}
	}
	if (g_key_file_has_key(kf, "particle", "install", NULL)) {
		g_autofree char *value = g_key_file_get_value(kf, "particle", "install", NULL);
		if (!check_particle_route(value, file, text, "install", error))
			return FALSE;
	}
	for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
		if (!g_key_file_has_key(kf, keys[i].group, keys[i].key, NULL))
			continue;
		if (!apply_key(config, kf, &keys[i], file, text, error))
			return FALSE;
		if (keys[i].offset == FIELD(release_tables))
			state->release_tables_set = TRUE;
		remember_where(state, keys[i].group, keys[i].key, key_location(file, text, keys[i].group, keys[i].key));
	}
	apply_particle_platform_keys(config, kf);
	return TRUE;
}

static gint
compare_strings(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* `<directory of path>/healerd.conf.d/NAME.conf`, sorted; empty when there is no such directory. */
static GPtrArray *
list_drop_ins(const char *path)
{
	g_autofree char *parent = g_path_get_dirname(path);
	g_autofree char *dir_path = g_build_filename(parent, DROP_IN_DIR, NULL);
	g_autoptr(GDir) dir = g_dir_open(dir_path, 0, NULL);
	GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *file = NULL;
		if (!g_str_has_suffix(name, ".conf") || name[0] == '.')
			continue;
		file = g_build_filename(dir_path, name, NULL);
		if (g_file_test(file, G_FILE_TEST_IS_REGULAR))
			g_ptr_array_add(files, g_steal_pointer(&file));
	}
	g_ptr_array_sort(files, compare_strings);
	return files;
}

/*
 * Signatures protect a catalog's content, not its freshness: over plain
 * http anyone on the path can hold back a new catalog or replay an old
 * signed one, so a fix never arrives.  An http:// url needs an explicit
 * allow-insecure-http=true (and healerd says so loudly at start).
 */
static gboolean
check_url_scheme(const HealerConfig *config, const LoadState *state, GError **error)
{
	if (config->upstream_url == NULL || config->upstream_allow_insecure_http ||
	    g_ascii_strncasecmp(config->upstream_url, "http://", 7) != 0)
		return TRUE;
	return fail_at(error, state, "upstream", "url",
	               "'%s' is plain http: anyone on the network path could withhold new catalogs or replay old "
	               "ones (signatures protect content, not freshness); use https://, or set "
	               "allow-insecure-http=true in [upstream] to accept that",
	               config->upstream_url);
}

/*
 * [mqtt] across its keys, once every file is applied (a drop-in may set the broker, another the
 * TLS files).  Then, only when MQTT is on, the defaults that depend on the machine: the gateway id
 * from /etc/machine-id (so a configuration without MQTT never reads it) and the client id from it.
 */
static gboolean
check_mqtt(HealerConfig *config, const LoadState *state, GError **error)
{
	const struct {
		const char *key;
		const char *path;
	} tls_files[] = {
	        {"ca-file", config->mqtt_ca_file},
	        {"cert-file", config->mqtt_cert_file},
	        {"key-file", config->mqtt_key_file},
	};

	if ((config->mqtt_cert_file == NULL) != (config->mqtt_key_file == NULL)) {
		const char *set = config->mqtt_cert_file != NULL ? "cert-file" : "key-file";
		const char *unset = config->mqtt_cert_file != NULL ? "key-file" : "cert-file";
		return fail_at(error, state, "mqtt", set,
		               "set without %s: a client certificate goes with its private key (set both, or neither)",
		               unset);
	}
	if (config->mqtt_password_file != NULL && config->mqtt_username == NULL)
		return fail_at(error, state, "mqtt", "password-file",
		               "set without username: MQTT sends a password only with a user name (set username=)");
	if (config->mqtt_broker == NULL)
		return TRUE;
	for (gsize i = 0; !config->mqtt_tls && i < G_N_ELEMENTS(tls_files); i++) {
		if (tls_files[i].path != NULL)
			return fail_at(
			        error, state, "mqtt", tls_files[i].key,
			        "a TLS file, but broker '%s' is plain mqtt:// (use mqtts://HOST[:PORT], or leave "
			        "ca-file, cert-file and key-file unset)",
			        config->mqtt_broker);
	}
	if (config->mqtt_gateway_id == NULL) {
		g_autoptr(GError) local_error = NULL;
		config->mqtt_gateway_id = healer_mqtt_gateway_id_default(&local_error);
		/* Where MQTT was turned on: the broker's line. */
		if (config->mqtt_gateway_id == NULL)
			return fail_at(error, state, "mqtt", "broker",
			               "gateway-id is not set, and there is %s: set gateway-id= in [mqtt] (a name for "
			               "this gateway, unique among those on the broker, such as its serial number)",
			               local_error->message);
	}
	if (config->mqtt_client_id == NULL) {
		g_autofree char *id = g_strconcat(MQTT_DEFAULT_CLIENT_ID_HEAD, config->mqtt_gateway_id, NULL);
		if (!client_id_is_valid(id))
			return fail_at(error, state, "mqtt", "gateway-id",
			               "the default client id from it, '%s', is not a client id (%s): set client-id= "
			               "in [mqtt]",
			               id, CLIENT_ID_FORM);
		config->mqtt_client_id = g_steal_pointer(&id);
	}
	return TRUE;
}

/* The checks across keys, once every file is applied. */
static gboolean
finish(HealerConfig *config, const LoadState *state, GError **error)
{
	if (!state->release_tables_set)
		set_default_release_tables(config);
	if (!check_url_scheme(config, state, error))
		return FALSE;
	if (config->upstream_retry_min_s > config->upstream_retry_max_s) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "[upstream] retry-min-seconds (%u) is greater than retry-max-seconds (%u)",
		            config->upstream_retry_min_s, config->upstream_retry_max_s);
		return FALSE;
	}
	return check_mqtt(config, state, error);
}

HealerConfig *
healer_config_load_from_data(const char *name, const char *text, gsize len, GError **error)
{
	g_autoptr(HealerConfig) config = healer_config_new_defaults();
	g_autofree char *copy = g_strndup(text, len);
	g_auto(LoadState) state = {0};

	/* g_strndup stops at a NUL: check the bytes given, not the copy. */
	if (memchr(text, '\0', len) != NULL) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s: contains a NUL byte (not a text file)", name);
		return NULL;
	}
	if (!apply_text(config, name, copy, len, &state, error) || !finish(config, &state, error))
		return NULL;
	return g_steal_pointer(&config);
}

HealerConfig *
healer_config_load(const char *path, GError **error)
{
	g_autoptr(HealerConfig) config = healer_config_new_defaults();
	g_autoptr(GPtrArray) loaded = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) drop_ins = NULL;
	g_autoptr(GError) local_error = NULL;
	g_auto(LoadState) state = {0};
	const char *main_path = path != NULL ? path : HEALER_CONFIG_DEFAULT_PATH;

	if (load_file(config, main_path, &state, &local_error)) {
		g_ptr_array_add(loaded, g_strdup(main_path));
	} else if (!(path == NULL && g_error_matches(local_error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND))) {
		g_propagate_error(error, g_steal_pointer(&local_error));
		return NULL;
	}
	g_clear_error(&local_error);

	drop_ins = list_drop_ins(main_path);
	for (guint i = 0; i < drop_ins->len; i++) {
		const char *file = g_ptr_array_index(drop_ins, i);
		if (!load_file(config, file, &state, error))
			return NULL;
		g_ptr_array_add(loaded, g_strdup(file));
	}

	if (!finish(config, &state, error))
		return NULL;

	g_ptr_array_add(loaded, NULL);
	g_strfreev(config->files);
	config->files = (GStrv)g_ptr_array_steal(loaded, NULL);
	return g_steal_pointer(&config);
}
