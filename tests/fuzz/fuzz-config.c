/*
 * healerd's configuration parser on arbitrary bytes (healerd.conf and its
 * drop-ins are written by people, and by configuration management): either
 * an error naming the file, or a configuration whose every value obeys the
 * rules config.c enforces.
 */
#include "fuzz-target.h"

#include <string.h>

#include "config.h"
#include "healer-error.h"
#include "mqtt-gateway-id.h"
#include "mqtt-topic.h"
#include "usb-selector.h"

static void
check_paths(GStrv list)
{
	for (guint i = 0; list != NULL && list[i] != NULL; i++)
		g_assert(g_path_is_absolute(list[i]));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean initialized = FALSE;
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(GError) error = NULL;

	if (!initialized) {
		/* A critical or warning from the parser is a bug: crash so the fuzzer reports it. */
		g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		/* The default gateway id from a fixed machine id: the same on every host, with or without one. */
		healer_mqtt_gateway_id_set_machine_id_for_tests("4a8c1e2f9b7d4c6e8f0a1b2c3d4e5f60");
		initialized = TRUE;
	}

	config = healer_config_load_from_data("fuzz.conf", (const char *)data, size, &error);
	if (config == NULL) {
		g_assert(error != NULL && error->domain == HEALER_ERROR);
		g_assert(g_str_has_prefix(error->message, "fuzz.conf") ||
		         g_str_has_prefix(error->message, "[upstream]"));
		return 0;
	}
	g_assert(error == NULL);
	g_assert(config->state_dir != NULL && g_path_is_absolute(config->state_dir));
	check_paths(config->serial_ports);
	check_paths(config->module_dirs);
	check_paths(config->release_tables);
	check_paths(config->trusted_key_dirs);
	g_assert(config->max_attempts >= 1 && config->max_attempts <= 100);
	g_assert(config->reset_timeout_s >= 1 && config->reset_timeout_s <= 3600);
	g_assert(config->upstream_max_parallel >= 1 && config->upstream_max_parallel <= 32);
	g_assert(config->upstream_retry_min_s <= config->upstream_retry_max_s);
	g_assert(config->upstream_ca_file == NULL || g_path_is_absolute(config->upstream_ca_file));
	g_assert(config->upstream_url == NULL || g_ascii_strncasecmp(config->upstream_url, "http", 4) == 0);
	g_assert(healer_log_level_to_string(config->log_level) != NULL);
	/* [usb] ignore: every selector kept is one (usb-selector.c), within USB's limits. */
	for (guint i = 0; config->usb_ignore != NULL && config->usb_ignore[i] != NULL; i++) {
		HealerUsbSelector selector;
		g_assert(healer_usb_selector_parse(config->usb_ignore[i], &selector, NULL));
		g_assert(selector.kind == HEALER_USB_SELECTOR_IDS ||
		         (selector.bus >= 1 && selector.n_ports >= 1 && selector.n_ports <= HEALER_USB_MAX_PORTS));
		for (guint p = 0; selector.kind == HEALER_USB_SELECTOR_PORT && p < selector.n_ports; p++)
			g_assert(selector.ports[p] >= 1);
	}
	/* [mqtt]: a broker parsed into host, port and scheme; names that stay one topic level each. */
	g_assert(config->mqtt_topic_prefix != NULL && healer_mqtt_prefix_is_valid(config->mqtt_topic_prefix));
	g_assert(config->mqtt_keepalive_s >= 5 && config->mqtt_keepalive_s <= 65535);
	g_assert(config->mqtt_outbox_max_bytes >= 64 * 1024 && config->mqtt_outbox_max_bytes <= 1024 * 1024 * 1024);
	g_assert(config->mqtt_gateway_id == NULL || healer_mqtt_topic_level_is_valid(config->mqtt_gateway_id));
	g_assert(config->mqtt_password_file == NULL || g_path_is_absolute(config->mqtt_password_file));
	g_assert(config->mqtt_password_file == NULL || config->mqtt_username != NULL);
	g_assert((config->mqtt_cert_file == NULL) == (config->mqtt_key_file == NULL));
	if (config->mqtt_broker != NULL) {
		g_assert(config->mqtt_host != NULL && config->mqtt_host[0] != '\0');
		g_assert(config->mqtt_port >= 1 && config->mqtt_port <= 65535);
		g_assert(config->mqtt_tls == (g_ascii_strncasecmp(config->mqtt_broker, "mqtts://", 8) == 0));
		g_assert(strchr(config->mqtt_broker, '@') == NULL);
		g_assert(config->mqtt_tls || (config->mqtt_ca_file == NULL && config->mqtt_cert_file == NULL));
		g_assert(config->mqtt_gateway_id != NULL && config->mqtt_client_id != NULL);
		g_assert(strlen(config->mqtt_client_id) >= 1 && strlen(config->mqtt_client_id) <= 128);
		for (const char *p = config->mqtt_client_id; *p != '\0'; p++)
			g_assert(g_ascii_isgraph(*p));
	} else {
		g_assert(config->mqtt_host == NULL && config->mqtt_port == 0 && !config->mqtt_tls);
	}
	return 0;
}
