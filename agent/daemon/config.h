/*
 * healerd's configuration: /etc/healerd/healerd.conf and the drop-ins in
 * /etc/healerd/healerd.conf.d/NAME.conf (GKeyFile), every key documented with
 * its default in config/healerd.conf.
 *
 * Loading is strict: an unknown group or key, a key set twice in one file,
 * or a value of the wrong type, out of range or not among the allowed words,
 * is an error that names the file, the line and the key, and the daemon
 * refuses to start on it.  A
 * typo in a configuration file that heals devices unattended must not be
 * silently ignored.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HEALER_CONFIG_DEFAULT_PATH "/etc/healerd/healerd.conf"

typedef struct {
	/* [daemon] */
	char *state_dir;          /* state-directory */
	GLogLevelFlags log_level; /* log-level: the least severe level shown, one of
	                           * G_LOG_LEVEL_CRITICAL (error), _WARNING, _INFO, _DEBUG */

	/* [serial] */
	GStrv serial_ports;          /* ports: absolute glob patterns */
	guint baud;                  /* baud: one of healer-serial.h's rates */
	gboolean serial_watch;       /* watch: re-scan when the globs' directories change */
	guint device_ids_per_minute; /* device-ids-per-minute: more on one port and it is ignored (port-guard.h) */

	/* [usb] */
	gboolean usb_enable; /* enable: serve USB devices (libusb) */
	GStrv usb_ignore;    /* ignore: usb:BUS-PORT[.PORT...] or usb:VID:PID selectors of devices left alone */

	/* [particle] */
	char *particle_install;           /* install: "control" or "dfu", the route for every platform */
	GStrv particle_install_platforms; /* install.PLATFORM=ROUTE: "photon=dfu", one per platform named */

	/* [store] */
	GStrv module_dirs;       /* module-directories */
	GStrv release_tables;    /* release-tables; by default <dir>/releases.json of each
	                          * module directory where that file exists */
	GStrv trusted_key_dirs;  /* trusted-keys: directories of *.pem Ed25519 public keys */
	gboolean allow_unsigned; /* allow-unsigned: a development switch, loud when on */

	/* [upstream] */
	char *upstream_url;             /* url: a static https tree (http only with allow-insecure-http); NULL: none */
	char *upstream_ca_file;         /* ca-file: NULL: the system's CA bundle */
	char *upstream_proxy;           /* proxy: NULL: libcurl's default (the *_proxy variables); "": none */
	guint upstream_max_parallel;    /* max-parallel-downloads */
	guint upstream_max_bytes_per_s; /* max-bytes-per-second, per download; 0 = no cap */
	guint upstream_refresh_s;       /* refresh-interval-seconds; 0 = at start and on demand only */
	guint upstream_retry_min_s;     /* retry-min-seconds */
	guint upstream_retry_max_s;     /* retry-max-seconds */
	guint upstream_transfer_timeout_s;     /* transfer-timeout-seconds: the most one transfer may take */
	gboolean upstream_allow_insecure_http; /* allow-insecure-http: accept an http:// url (loud when used) */

	/* [mqtt] (docs/mqtt.md, healerd.conf(5)); MQTT is off when mqtt_broker is NULL */
	char *mqtt_broker;          /* broker: "mqtt://HOST[:PORT]" or "mqtts://HOST[:PORT]", as written */
	char *mqtt_host;            /* from broker: the host name or address (IPv6 without its brackets) */
	guint mqtt_port;            /* from broker: its port, else 1883 (mqtt) or 8883 (mqtts); 0 without broker */
	gboolean mqtt_tls;          /* from broker: mqtts:// */
	char *mqtt_topic_prefix;    /* topic-prefix: default "healerd"; levels separated by '/' */
	char *mqtt_gateway_id;      /* gateway-id: default derived from /etc/machine-id (mqtt-gateway-id.h);
	                             * the defaults of these two are filled in only when broker is set */
	char *mqtt_client_id;       /* client-id: default "healerd-<gateway-id>" */
	char *mqtt_username;        /* username: NULL: none */
	char *mqtt_password_file;   /* password-file: NULL: none (read by mqtt-client.c, never logged) */
	char *mqtt_ca_file;         /* ca-file: NULL: the system's CA store (mqtts only) */
	char *mqtt_cert_file;       /* cert-file: the client certificate (PEM), with key-file */
	char *mqtt_key_file;        /* key-file */
	guint mqtt_keepalive_s;     /* keepalive: seconds, default 60, 5..65535 */
	gboolean mqtt_accept_commands; /* accept-commands: default false */
	guint64 mqtt_outbox_max_bytes; /* outbox-max-bytes: default 16 MiB, at least 64 KiB */

	/* [healer] */
	guint max_concurrent_jobs; /* 0 = unlimited */
	guint reset_timeout_s;
	guint response_timeout_s;
	guint max_attempts;
	guint retry_backoff_s; /* the first delay; doubles per attempt, capped at 600 s */
	gboolean allow_prerelease;
	gboolean auto_heal;

	/* The files read, in order (the main file when it exists, then drop-ins). */
	GStrv files;
} HealerConfig;

/* The built-in defaults, as if no file existed. */
HealerConfig *healer_config_new_defaults(void);

/*
 * Loads `path` (NULL: HEALER_CONFIG_DEFAULT_PATH), then every
 * `<directory of path>/healerd.conf.d/NAME.conf` in lexical order, each
 * overriding the keys it sets.  A missing main file is fine when `path` is
 * NULL (the defaults apply); a `path` given explicitly must exist
 * (HEALER_ERROR_NOT_FOUND).  Any invalid file: NULL and
 * HEALER_ERROR_INVALID_ARGUMENT, the message starting "FILE:LINE: [group] key: ".
 */
HealerConfig *healer_config_load(const char *path, GError **error);

/* One file's text as if it were the whole configuration (no drop-ins); `name` for messages. */
HealerConfig *healer_config_load_from_data(const char *name, const char *text, gsize len, GError **error);

void healer_config_free(HealerConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerConfig, healer_config_free)

/* The trusted-keys directories compiled in as the default of [store] trusted-keys. */
extern const char *const healer_config_default_trusted_key_dirs[];

/* The module directory compiled in as the default of [store] module-directories. */
const char *healer_config_default_module_dir(void);

/*
 * Seconds to wait before attempt `attempt` (2 = the first retry):
 * retry_backoff_s doubled per further attempt, capped at 600.
 */
guint healer_config_retry_delay(const HealerConfig *config, guint attempt);

/* "error", "warning", "info", "debug" <-> GLogLevelFlags; FALSE if unknown. */
gboolean healer_log_level_from_string(const char *name, GLogLevelFlags *level);
const char *healer_log_level_to_string(GLogLevelFlags level);

G_END_DECLS
