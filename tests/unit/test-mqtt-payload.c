/*
 * What healerd publishes over MQTT (agent/daemon/mqtt-payload.c): every payload kind, built from
 * realistic input, checked value by value here and against its JSON Schema in docs/mqtt.md by
 * tests/tools/check-json-schema.py (python3-jsonschema); and payloads the schemas must refuse, so
 * the check itself can fail.
 */
#include <string.h>
#include <sys/wait.h>

#include <gio/gio.h>

#include "device-json.h"
#include "healer-error.h"
#include "journal.h"
#include "mqtt-payload.h"
#include "test-util.h"

/* 2026-12-07T18:04:05.123456Z */
#define T0_US   (G_GINT64_CONSTANT(1796666645) * G_USEC_PER_SEC + 123456)
#define T0_TEXT "2026-12-07T18:04:05.123Z"

#define DEVICE_ID "e00fce68c2a7f3d1a4b5c6d7"

static char *tmpdir;

/* Runs check-json-schema.py on `json` against schema `name` (NULL: --examples): its exit status, its stderr. */
static int
run_schema_check(const char *name, const char *json, char **err)
{
	const char *source_dir = g_getenv("HEALER_SOURCE_DIR");
	const char *python = g_getenv("PYTHON3");
	g_autofree char *page = NULL, *script = NULL, *file = NULL, *out = NULL;
	g_autoptr(GError) error = NULL;
	int status = 0;

	g_assert_nonnull(source_dir);
	page = g_build_filename(source_dir, "docs", "mqtt.md", NULL);
	script = g_build_filename(source_dir, "tests", "tools", "check-json-schema.py", NULL);
	if (name != NULL) {
		file = g_build_filename(tmpdir, "payload.json", NULL);
		g_assert_true(g_file_set_contents(file, json, -1, &error));
	}
	{
		const char *argv[] = {python != NULL ? python : "python3", script, page,
		                      name != NULL ? name : "--examples",  file,   NULL};
		if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, err, &status,
		                  &error))
			g_error("cannot run %s: %s", script, error->message);
	}
	if (!WIFEXITED(status))
		g_error("%s died: %s", script, *err);
	return WEXITSTATUS(status);
}

static void
assert_valid(const char *name, const char *json)
{
	g_autofree char *err = NULL;
	int rc = run_schema_check(name, json, &err);

	if (rc != 0)
		g_error("%s against schema %s (docs/mqtt.md): exit %d\n%s", json, name, rc, err);
}

/* The schema refuses `json`, and says `why` (a piece of jsonschema's message). */
static void
assert_invalid(const char *name, const char *json, const char *why)
{
	g_autofree char *err = NULL;
	int rc = run_schema_check(name, json, &err);

	if (rc != 1 || strstr(err, why) == NULL)
		g_error("%s against schema %s: expected a refusal saying \"%s\", got exit %d\n%s", json, name, why, rc,
		        err);
}

/* Parses a payload: one JSON object, compact, valid UTF-8, no escaped slash. */
static json_object *
parse(const char *payload)
{
	json_object *o;

	g_assert_nonnull(payload);
	g_assert_true(g_utf8_validate(payload, -1, NULL));
	g_assert_null(strstr(payload, "\\/"));
	g_assert_null(strchr(payload, '\n'));
	o = json_tokener_parse(payload);
	g_assert_nonnull(o);
	g_assert_true(json_object_is_type(o, json_type_object));
	return o;
}

static gint
by_string(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The object's keys, sorted, joined with ','. */
static char *
keys_of(json_object *o)
{
	g_autoptr(GPtrArray) keys = g_ptr_array_new();

	json_object_object_foreach (o, key, value) {
		(void)value;
		g_ptr_array_add(keys, key);
	}
	g_ptr_array_sort(keys, by_string);
	g_ptr_array_add(keys, NULL);
	return g_strjoinv(",", (char **)keys->pdata);
}

static json_object *
member(json_object *o, const char *key)
{
	json_object *value = NULL;

	if (!json_object_object_get_ex(o, key, &value))
		g_error("no \"%s\" in %s", key, json_object_to_json_string(o));
	return value;
}

/* `key` is the string `expected`, or null when `expected` is NULL (present either way). */
static void
assert_string_or_null(json_object *o, const char *key, const char *expected)
{
	json_object *value = member(o, key);

	if (expected == NULL) {
		if (value != NULL)
			g_error("\"%s\" should be null in %s", key, json_object_to_json_string(o));
		return;
	}
	g_assert_true(json_object_is_type(value, json_type_string));
	g_assert_cmpstr(json_object_get_string(value), ==, expected);
}

static void
assert_time(json_object *o, const char *key, const char *expected)
{
	const char *text = json_object_get_string(member(o, key));

	g_assert_true(g_regex_match_simple("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$", text,
	                                   0, 0));
	g_assert_cmpstr(text, ==, expected);
}

static const struct {
	HealerEventKind kind;
	const char *name;
} published[] = {
        {HEALER_EVENT_DEVICE_ATTACHED, "device-attached"},
        {HEALER_EVENT_DEVICE_DETACHED, "device-detached"},
        {HEALER_EVENT_SAFE_MODE_DETECTED, "safe-mode-detected"},
        {HEALER_EVENT_HEAL_STARTED, "heal-started"},
        {HEALER_EVENT_HEAL_STEP, "heal-step"},
        {HEALER_EVENT_HEAL_SUCCEEDED, "heal-succeeded"},
        {HEALER_EVENT_HEAL_FAILED, "heal-failed"},
        {HEALER_EVENT_HEAL_BLOCKED, "heal-blocked"},
        {HEALER_EVENT_MODULES_IMPORTED, "modules-imported"},
        {HEALER_EVENT_CATALOG_ACCEPTED, "catalog-accepted"},
        {HEALER_EVENT_CATALOG_REJECTED, "catalog-rejected"},
        {HEALER_EVENT_UPSTREAM_FAILED, "upstream-failed"},
};

/* Exactly the twelve kinds of docs/mqtt.md have a name (the journal's); every other kind has none and no payload. */
static void
test_event_names(void)
{
	guint named = 0;

	for (HealerEventKind kind = 0; kind < HEALER_EVENT_N_KINDS; kind++) {
		const char *expected = NULL;
		HealerEvent event = {.kind = kind, .device_id = DEVICE_ID, .step = -1, .text = "something happened"};
		g_autofree char *payload = NULL;

		for (guint i = 0; i < G_N_ELEMENTS(published); i++) {
			if (published[i].kind == kind)
				expected = published[i].name;
		}
		g_assert_cmpstr(healer_mqtt_event_name(kind), ==, expected);
		payload = healer_mqtt_event_payload(1, T0_US, &event);
		if (expected == NULL) {
			g_assert_null(payload);
			continue;
		}
		named++;
		g_assert_cmpstr(expected, ==, healer_event_kind_to_string(kind));
		g_assert_nonnull(payload);
	}
	g_assert_cmpuint(named, ==, G_N_ELEMENTS(published));
	g_assert_null(healer_mqtt_event_name(HEALER_EVENT_N_KINDS));
}

/* One event as healerd emits it, and the keys its payload must have. */
typedef struct {
	HealerEvent event;
	const char *keys;
} EventCase;

#define COMMON "device,event,message_id,port,seq,text,time"

static const EventCase event_cases[] = {
        {{.kind = HEALER_EVENT_DEVICE_ATTACHED,
          .device_id = DEVICE_ID,
          .port = "/dev/ttyUSB0",
          .step = -1,
          .text = "attached on /dev/ttyUSB0: platform 3, safe-mode, reset reason dependencies"},
         COMMON},
        {{.kind = HEALER_EVENT_DEVICE_DETACHED,
          .device_id = DEVICE_ID,
          .port = "usb:1-1.4",
          .step = -1,
          .text = "detached: the USB device went away"},
         COMMON},
        {{.kind = HEALER_EVENT_SAFE_MODE_DETECTED,
          .device_id = DEVICE_ID,
          .port = "/dev/ttyUSB0",
          .step = -1,
          .reason = "its application needs modules it lacks",
          .text = "in safe mode: its application needs modules it lacks"},
         "device,event,message_id,port,reason,seq,text,time"},
        {{.kind = HEALER_EVENT_HEAL_STARTED,
          .device_id = DEVICE_ID,
          .port = "/dev/ttyUSB0",
          .step = -1,
          .text = "starting the heal: 2 module(s), 393216 bytes"},
         COMMON},
        {{.kind = HEALER_EVENT_HEAL_STEP,
          .device_id = DEVICE_ID,
          .port = "/dev/ttyUSB0",
          .module = "system-part 2 v2100 (2.1.0)",
          .step = 2,
          .text = "plan step 2: system-part 2 v2100 (2.1.0)"},
         "device,event,message_id,module,port,seq,step,text,time"},
        {{.kind = HEALER_EVENT_HEAL_SUCCEEDED,
          .device_id = DEVICE_ID,
          .port = "/dev/ttyUSB0",
          .step = -1,
          .text = "heal succeeded: 2 module(s), 393216 bytes; the application runs"},
         COMMON},
        {{.kind = HEALER_EVENT_HEAL_FAILED,
          .device_id = DEVICE_ID,
          .port = "usb:1-1.4",
          .step = 1,
          .reason = "the device refused system-part 1 v2100: dependency check failed",
          .text = "heal attempt 1 failed: the device refused system-part 1 v2100: dependency check failed; "
                  "retrying in 30 s"},
         "device,event,message_id,port,reason,seq,text,time"},
        {{.kind = HEALER_EVENT_HEAL_BLOCKED,
          .device_id = DEVICE_ID,
          .port = "/dev/ttyUSB0",
          .step = -1,
          .reason = "no module in the module store provides system-part 2 >= 2100 for platform 3",
          .text = "cannot heal: no module in the module store provides system-part 2 >= 2100 for platform 3; "
                  "import a module bundle (healerctl import) or add it to a module directory"},
         "device,event,message_id,port,reason,seq,text,time"},
        {{.kind = HEALER_EVENT_MODULES_IMPORTED,
          .step = -1,
          .count = 2,
          .text = "bundle /var/tmp/photon-2.1.0.tar: catalog 2.1.0, 6 module(s), 2 new"},
         "count,device,event,message_id,port,seq,text,time"},
        {{.kind = HEALER_EVENT_CATALOG_ACCEPTED,
          .module = "https://fw.example.com/stable/catalog.json",
          .step = -1,
          .text = "accepted the signed catalog serial 42 from https://fw.example.com/stable/catalog.json (key "
                  "5c1d9e0f2a3b4c5d): 14 modules, 3 releases"},
         "device,event,message_id,module,port,seq,text,time"},
        {{.kind = HEALER_EVENT_CATALOG_REJECTED,
          .module = "/var/tmp/photon-2.1.0.tar",
          .step = -1,
          .text = "bundle rejected, nothing imported: catalog.json.sig: not signed by a trusted key"},
         "device,event,message_id,module,port,seq,text,time"},
        {{.kind = HEALER_EVENT_UPSTREAM_FAILED,
          .module = "https://fw.example.com/stable",
          .step = -1,
          .text = "upstream catalog: https://fw.example.com/stable/catalog.json: connection refused; next try "
                  "in 37 s"},
         "device,event,message_id,module,port,seq,text,time"},
};

/* Every published kind: exact values (null where the event has none), its own fields only, and the schema. */
static void
test_events(void)
{
	g_assert_cmpuint(G_N_ELEMENTS(event_cases), ==, G_N_ELEMENTS(published));
	for (guint i = 0; i < G_N_ELEMENTS(event_cases); i++) {
		const HealerEvent *e = &event_cases[i].event;
		guint64 seq = G_GUINT64_CONSTANT(4294967296) + i; /* past 32 bits */
		g_autofree char *payload = healer_mqtt_event_payload(seq, T0_US, e);
		json_object *o = parse(payload);
		g_autofree char *keys = keys_of(o);

		g_test_message("%s", payload);
		g_assert_cmpstr(keys, ==, event_cases[i].keys);
		g_assert_cmpuint(json_object_get_uint64(member(o, "seq")), ==, seq);
		assert_time(o, "time", T0_TEXT);
		assert_string_or_null(o, "event", published[i].name);
		g_assert_cmpint(e->kind, ==, published[i].kind);
		assert_string_or_null(o, "message_id", healer_event_kind_message_id(e->kind));
		assert_string_or_null(o, "device", e->device_id);
		assert_string_or_null(o, "port", e->port);
		assert_string_or_null(o, "text", e->text);
		if (strstr(event_cases[i].keys, "module") != NULL)
			assert_string_or_null(o, "module", e->module);
		if (strstr(event_cases[i].keys, "reason") != NULL)
			assert_string_or_null(o, "reason", e->reason);
		if (strstr(event_cases[i].keys, "step") != NULL)
			g_assert_cmpint(json_object_get_int(member(o, "step")), ==, e->step);
		if (strstr(event_cases[i].keys, "count") != NULL)
			g_assert_cmpuint(json_object_get_uint64(member(o, "count")), ==, e->count);
		json_object_put(o);
		assert_valid("event", payload);
	}
}

/* The journal has no MESSAGE_ID for imports and a heal step shares its heal's: as published. */
static void
test_event_message_ids(void)
{
	HealerEvent imported = {.kind = HEALER_EVENT_MODULES_IMPORTED, .step = -1, .count = 0, .text = "t"};
	HealerEvent step = {
	        .kind = HEALER_EVENT_HEAL_STEP, .device_id = DEVICE_ID, .step = 1, .module = "m", .text = "t"};
	g_autofree char *a = healer_mqtt_event_payload(1, T0_US, &imported);
	g_autofree char *b = healer_mqtt_event_payload(2, T0_US, &step);
	json_object *oa = parse(a), *ob = parse(b);

	g_assert_null(healer_event_kind_message_id(HEALER_EVENT_MODULES_IMPORTED));
	assert_string_or_null(oa, "message_id", NULL);
	g_assert_cmpuint(json_object_get_uint64(member(oa, "count")), ==, 0);
	assert_string_or_null(ob, "message_id", healer_event_kind_message_id(HEALER_EVENT_HEAL_STARTED));
	json_object_put(oa);
	json_object_put(ob);
	assert_valid("event", a);
	assert_valid("event", b);
}

/* Absent strings are null, never missing or "": an event with nothing but its kind. */
static void
test_event_nulls(void)
{
	HealerEvent step = {.kind = HEALER_EVENT_HEAL_STEP, .device_id = DEVICE_ID, .step = -1};
	HealerEvent blocked = {.kind = HEALER_EVENT_HEAL_BLOCKED, .device_id = DEVICE_ID, .step = -1};
	HealerEvent accepted = {.kind = HEALER_EVENT_CATALOG_ACCEPTED, .step = -1};
	g_autofree char *a = healer_mqtt_event_payload(7, T0_US, &step);
	g_autofree char *b = healer_mqtt_event_payload(8, T0_US, &blocked);
	g_autofree char *c = healer_mqtt_event_payload(9, T0_US, &accepted);
	json_object *oa = parse(a), *ob = parse(b), *oc = parse(c);

	g_assert_cmpstr(a, ==,
	                "{\"seq\":7,\"time\":\"" T0_TEXT
	                "\",\"event\":\"heal-step\",\"message_id\":\"" HEALER_MSG_HEAL_STARTED
	                "\",\"device\":\"" DEVICE_ID "\",\"port\":null,\"text\":null,\"step\":null,\"module\":null}");
	assert_string_or_null(ob, "reason", NULL);
	assert_string_or_null(ob, "text", NULL);
	assert_string_or_null(oc, "device", NULL);
	assert_string_or_null(oc, "port", NULL);
	assert_string_or_null(oc, "module", NULL);
	json_object_put(oa);
	json_object_put(ob);
	json_object_put(oc);
	assert_valid("event", a);
	assert_valid("event", b);
	assert_valid("event", c);
}

/* Text that is not UTF-8 (a file name) still makes valid JSON, its bytes written \xNN. */
static void
test_event_not_utf8(void)
{
	HealerEvent rejected = {
	        .kind = HEALER_EVENT_CATALOG_REJECTED,
	        .module = "/media/usb/bundle-\xe9t\xe9.tar",
	        .step = -1,
	        .text = "bundle rejected, nothing imported: /media/usb/bundle-\xe9t\xe9.tar: truncated"};
	g_autofree char *payload = healer_mqtt_event_payload(3, T0_US, &rejected);
	json_object *o = parse(payload);

	assert_string_or_null(o, "module", "/media/usb/bundle-\\xe9t\\xe9.tar");
	json_object_put(o);
	assert_valid("event", payload);
}

/* RFC 3339, UTC, milliseconds cut (not rounded); a clock outside what RFC 3339 can write is clamped. */
static void
test_time(void)
{
	static const struct {
		gint64 time_us;
		const char *text;
	} cases[] = {
	        {0, "1970-01-01T00:00:00.000Z"},
	        {999, "1970-01-01T00:00:00.000Z"},
	        {999999, "1970-01-01T00:00:00.999Z"},
	        {T0_US, T0_TEXT},
	        {G_GINT64_CONSTANT(951825600) * G_USEC_PER_SEC + 1000, "2000-02-29T12:00:00.001Z"},
	        {-1, "1970-01-01T00:00:00.000Z"},
	        {G_MAXINT64, "9999-12-31T23:59:59.999Z"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *payload = healer_mqtt_offline_payload("0.1.0", cases[i].time_us);
		json_object *o = parse(payload);

		assert_time(o, "time", cases[i].text);
		json_object_put(o);
	}
}

static void
test_events_dropped(void)
{
	g_autofree char *payload = healer_mqtt_events_dropped_payload(9120, T0_US, 37);
	json_object *o = parse(payload);
	g_autofree char *keys = keys_of(o);

	g_assert_cmpstr(keys, ==, "count,device,event,message_id,port,seq,text,time");
	g_assert_cmpuint(json_object_get_uint64(member(o, "seq")), ==, 9120);
	assert_time(o, "time", T0_TEXT);
	assert_string_or_null(o, "event", "events-dropped");
	assert_string_or_null(o, "message_id", NULL);
	assert_string_or_null(o, "device", NULL);
	assert_string_or_null(o, "port", NULL);
	g_assert_nonnull(strstr(json_object_get_string(member(o, "text")), "37"));
	g_assert_cmpuint(json_object_get_uint64(member(o, "count")), ==, 37);
	json_object_put(o);
	assert_valid("events-dropped", payload);
	/* Not an event of the twelve kinds, and the other way round. */
	assert_invalid("event", payload, "'events-dropped' is not one of");
}

static void
test_status(void)
{
	g_autoptr(GHashTable) states = g_hash_table_new(g_str_hash, g_str_equal);
	HealerMqttStatus status = {.version = "0.1.0",
	                           .time_us = T0_US,
	                           .devices_by_state = states,
	                           .store_modules = 14,
	                           .catalogs = 2,
	                           .outbox_pending = 5,
	                           .dropped = G_GUINT64_CONSTANT(5000000000)};
	g_autofree char *online = NULL, *empty = NULL, *offline = NULL;
	json_object *o;

	g_hash_table_insert(states, "healthy", GUINT_TO_POINTER(3));
	g_hash_table_insert(states, "healing", GUINT_TO_POINTER(1));
	g_hash_table_insert(states, "blocked", GUINT_TO_POINTER(1));
	online = healer_mqtt_status_payload(&status);
	/* The states sorted by name. */
	g_assert_cmpstr(online, ==,
	                "{\"online\":true,\"version\":\"0.1.0\",\"time\":\"" T0_TEXT
	                "\",\"devices\":{\"blocked\":1,\"healing\":1,\"healthy\":3},\"store\":{\"modules\":14,"
	                "\"catalogs\":2},\"mqtt\":{\"outbox_pending\":5,\"dropped\":5000000000}}");
	assert_valid("status", online);
	assert_invalid("status-offline", online, "False was expected");

	status.devices_by_state = NULL;
	empty = healer_mqtt_status_payload(&status);
	o = parse(empty);
	g_assert_cmpint(json_object_object_length(member(o, "devices")), ==, 0);
	json_object_put(o);
	assert_valid("status", empty);

	offline = healer_mqtt_offline_payload("0.1.0", T0_US);
	g_assert_cmpstr(offline, ==, "{\"online\":false,\"version\":\"0.1.0\",\"time\":\"" T0_TEXT "\"}");
	assert_valid("status-offline", offline);
	assert_invalid("status", offline, "True was expected");
}

/* A Particle device as its family describes it (the describe's "m" and the family's "details"). */
static const char particle_state[] =
        "{\"p\":6,\"m\":[{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"2\",\"v\":1512,\"d\":[{"
        "\"f\":\"s\",\"n\":\"1\",\"v\":1512}]}],\"details\":{\"usb_id\":\"2b04:c006\",\"serial\":\"" DEVICE_ID
        "\",\"platform\":\"photon\",\"device_os\":\"1.5.2\",\"mode\":\"safe\",\"safe_mode_reason\":\"dependencies\","
        "\"unreadable\":null,\"install_route\":\"control\",\"module_info_format\":\"new\",\"modules\":[]}}";

static void
fill_device(HealerDeviceInfo *info)
{
	static char *ttys[] = {"ttyACM0", NULL};

	*info = (HealerDeviceInfo){.id = DEVICE_ID,
	                           .port = "usb:1-1.4",
	                           .transport = "usb",
	                           .platform_id = 6,
	                           .platform_name = "photon",
	                           .mode = "safe-mode",
	                           .led = "breathing-magenta",
	                           .state = "healing",
	                           .detail = "step 2 of 3",
	                           .safe_mode_reason = "dependencies",
	                           .modules_json = (char *)particle_state,
	                           .ttys = ttys,
	                           .progress = 41,
	                           .current_step = "step 2 of 3: system-part 2 v2100 (2.1.0)",
	                           .last_error = "",
	                           .last_heal = 1796666000};
}

static void
test_device(void)
{
	HealerDeviceInfo info;
	g_autofree char *attached = NULL, *detached = NULL, *serial = NULL;
	json_object *a, *d, *s, *reference;

	fill_device(&info);
	attached = healer_mqtt_device_payload(&info, FALSE, T0_US);
	detached = healer_mqtt_device_payload(&info, TRUE, T0_US);
	g_test_message("%s (%zu bytes)", detached, strlen(detached));
	a = parse(attached);
	d = parse(detached);

	/* healerctl devices --json's object, with "detached" always and "detached_at" once gone. */
	reference = healer_device_info_to_json(&info);
	json_object_object_add(reference, "detached", json_object_new_boolean(FALSE));
	g_assert_true(json_object_equal(a, reference));
	json_object_object_add(reference, "detached", json_object_new_boolean(TRUE));
	json_object_object_add(reference, "detached_at", json_object_new_string(T0_TEXT));
	g_assert_true(json_object_equal(d, reference));
	json_object_put(reference);

	g_assert_false(json_object_object_get_ex(a, "detached_at", NULL));
	g_assert_false(json_object_get_boolean(member(a, "detached")));
	g_assert_true(json_object_get_boolean(member(d, "detached")));
	assert_time(d, "detached_at", T0_TEXT);
	assert_string_or_null(d, "state", "healing");
	json_object_put(a);
	json_object_put(d);
	assert_valid("device", attached);
	assert_valid("device", detached);

	/* A device on a serial port: no family details (null), no ttys. */
	info.port = "/dev/ttyUSB0";
	info.transport = "serial";
	info.modules_json = "{\"p\":3,\"m\":[]}";
	info.ttys = NULL;
	info.state = "healthy";
	serial = healer_mqtt_device_payload(&info, FALSE, T0_US);
	s = parse(serial);
	g_assert_null(member(s, "details"));
	g_assert_cmpint(json_object_array_length(member(s, "ttys")), ==, 0);
	json_object_put(s);
	assert_valid("device", serial);
}

static void
test_replies(void)
{
	json_object *result = json_object_new_object();
	json_object *ids = json_object_new_array();
	g_autofree char *ok = NULL, *ok_null = NULL, *foreign = NULL;
	g_autoptr(GError) io = g_error_new(G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "/var/lib/healerd: No such file");

	json_object_array_add(ids, json_object_new_string(DEVICE_ID));
	json_object_object_add(result, "started", ids);
	ok = healer_mqtt_reply_ok(result);
	g_assert_cmpstr(ok, ==, "{\"ok\":true,\"result\":{\"started\":[\"" DEVICE_ID "\"]}}");
	assert_valid("reply", ok);
	ok_null = healer_mqtt_reply_ok(NULL);
	g_assert_cmpstr(ok_null, ==, "{\"ok\":true,\"result\":null}");
	assert_valid("reply", ok_null);

	/* Every HEALER_ERROR code: its D-Bus name, as the same call over D-Bus gets it. */
	for (int code = HEALER_ERROR_FAILED; code <= HEALER_ERROR_IO; code++) {
		g_autoptr(GError) error = g_error_new(HEALER_ERROR, code, "no device %s", DEVICE_ID);
		g_autofree char *payload = healer_mqtt_reply_error(error);
		json_object *o = parse(payload);
		g_autofree char *keys = keys_of(o);

		g_assert_cmpstr(keys, ==, "error,message,ok");
		g_assert_false(json_object_get_boolean(member(o, "ok")));
		assert_string_or_null(o, "error", healer_error_to_dbus_name(code));
		g_assert_true(g_str_has_prefix(json_object_get_string(member(o, "error")), "io.healerd.Error."));
		assert_string_or_null(o, "message", "no device " DEVICE_ID);
		json_object_put(o);
		assert_valid("reply", payload);
	}

	/* Another domain has no name of its own: Failed, with its message. */
	foreign = healer_mqtt_reply_error(io);
	g_assert_cmpstr(foreign, ==,
	                "{\"ok\":false,\"error\":\"io.healerd.Error.Failed\",\"message\":\"/var/lib/healerd: No such "
	                "file\"}");
	assert_valid("reply", foreign);
}

/* The schemas refuse what is wrong: the check can fail. */
static void
test_schemas_refuse(void)
{
	HealerEvent step = {.kind = HEALER_EVENT_HEAL_STEP,
	                    .device_id = DEVICE_ID,
	                    .port = "/dev/ttyUSB0",
	                    .module = "system-part 2 v2100 (2.1.0)",
	                    .step = 2,
	                    .text = "plan step 2: system-part 2 v2100 (2.1.0)"};
	g_autofree char *payload = healer_mqtt_event_payload(12, T0_US, &step);
	json_object *o = parse(payload);
	HealerDeviceInfo info;
	g_autofree char *device = NULL;
	g_autofree char *err = NULL;

	assert_valid("event", payload);

	json_object_object_del(o, "seq");
	assert_invalid("event", json_object_to_json_string(o), "'seq' is a required property");
	json_object_object_add(o, "seq", json_object_new_string("12"));
	assert_invalid("event", json_object_to_json_string(o), "'12' is not of type 'integer'");
	json_object_object_add(o, "seq", json_object_new_int(12));
	json_object_object_add(o, "count", json_object_new_int(1));
	assert_invalid("event", json_object_to_json_string(o), "'modules-imported' was expected");
	json_object_object_del(o, "count");
	json_object_object_del(o, "step");
	assert_invalid("event", json_object_to_json_string(o), "'step' is a required property");
	json_object_object_add(o, "step", json_object_new_int(2));
	json_object_object_add(o, "time", json_object_new_string("2026-12-07 18:04:05"));
	assert_invalid("event", json_object_to_json_string(o), "does not match");
	json_object_object_add(o, "time", json_object_new_string(T0_TEXT));
	json_object_object_add(o, "message_id", NULL);
	assert_invalid("event", json_object_to_json_string(o), "None is not of type 'string'");
	json_object_put(o);

	fill_device(&info);
	device = healer_mqtt_device_payload(&info, TRUE, T0_US);
	o = parse(device);
	json_object_object_del(o, "detached_at");
	assert_invalid("device", json_object_to_json_string(o), "'detached_at' is a required property");
	json_object_object_add(o, "detached", json_object_new_boolean(FALSE));
	json_object_object_add(o, "detached_at", json_object_new_string(T0_TEXT));
	assert_invalid("device", json_object_to_json_string(o), "should not be valid");
	json_object_put(o);

	assert_invalid("reply",
	               "{\"ok\":false,\"error\":\"org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code1\","
	               "\"message\":\"x\"}",
	               "is not one of");
	/* A key twice is no JSON this page allows; an unknown schema is an error, not a pass. */
	g_assert_cmpint(run_schema_check("reply", "{\"ok\":true,\"result\":1,\"result\":2}", &err), ==, 2);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(run_schema_check("no-such-schema", "{}", &err), ==, 2);
	g_assert_nonnull(strstr(err, "no schema 'no-such-schema'"));
}

/* Every schema on the page is a valid draft 2020-12 schema and every example there is valid. */
static void
test_page_examples(void)
{
	g_autofree char *err = NULL;
	int rc = run_schema_check(NULL, NULL, &err);

	if (rc != 0)
		g_error("docs/mqtt.md: exit %d\n%s", rc, err);
}

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	tmpdir = test_tmpdir_new();
	g_test_add_func("/mqtt-payload/event-names", test_event_names);
	g_test_add_func("/mqtt-payload/events", test_events);
	g_test_add_func("/mqtt-payload/event-message-ids", test_event_message_ids);
	g_test_add_func("/mqtt-payload/event-nulls", test_event_nulls);
	g_test_add_func("/mqtt-payload/event-not-utf8", test_event_not_utf8);
	g_test_add_func("/mqtt-payload/time", test_time);
	g_test_add_func("/mqtt-payload/events-dropped", test_events_dropped);
	g_test_add_func("/mqtt-payload/status", test_status);
	g_test_add_func("/mqtt-payload/device", test_device);
	g_test_add_func("/mqtt-payload/replies", test_replies);
	g_test_add_func("/mqtt-payload/schemas-refuse", test_schemas_refuse);
	g_test_add_func("/mqtt-payload/page-examples", test_page_examples);
	rc = g_test_run();
	test_tmpdir_free(tmpdir);
	return rc;
}
