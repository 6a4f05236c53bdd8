/*
 * healerd's device state machine and engine on what a hostile or broken
 * device says: the input (fuzz-device-engine.h) becomes link frames, a
 * clock and plugs, fed to a real HealerEngine (engine.c) serving real
 * HealerDevices (device.c) with a real store holding the firmware build's
 * modules, through fake transports that record what healerd sends.
 *
 * Checks beyond "no crash, no sanitizer report, no critical":
 *   - every frame healerd sends decodes to one host->device frame its own
 *     parser accepts; a BEGIN names a module of the store by its SHA-256 and
 *     size; every DATA frame carries that module's bytes at its offset;
 *   - nothing is sent on a transport after it closed (the fake frees it at
 *     once, so ASan sees any use), nor is one closed twice;
 *   - what the faces read (devices, plans) is well formed: known states,
 *     progress 0..100, one device per id, plans that are JSON objects;
 *   - once the engine is freed every transport is closed and no GSource
 *     (timer, idle) made while the input ran is left behind.
 *
 * Determinism.  GLib has no virtual clock.  Before every iteration of the
 * main context the timers made since the input began (found by id) are
 * frozen with g_source_set_ready_time(-1), so none expires by itself
 * however slowly the input runs; FE_TICK makes them due (ready time 0).  The job file a
 * heal writes before its first step is written by a worker thread: after
 * every operation the target waits for a heal that is "starting" to leave
 * that state, so the step always begins before the next frame.
 *
 * Process-wide, made once: a temporary directory (removed at exit) holding
 * the store, into which the firmware build's modules are imported
 * ($HEALER_FIRMWARE_MODULES, else the build tree's), and the state
 * directory each input's engine writes its job files to (emptied after
 * every input).  Nothing is written elsewhere: the journal writer is
 * replaced by one that drops records, and NOTIFY_SOCKET is unset.
 */
#include "fuzz-target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>
#include <json-c/json.h>

#include "engine.h"
#include "events.h"
#include "fuzz-device-engine.h"
#include "healer-error.h"
#include "link-codec.h"
#include "module-checksums.h"
#include "serial-backend.h"
#include "store.h"
#include "supply.h"
#include "transport.h"

/* A heal waits for its job file this long at most (a worker writes it on a tmpfs or a disk; valgrind is slow). */
#define STUCK_S 20

/* ---- process-wide ------------------------------------------------------ */

static char *root_dir;      /* the temporary directory */
static char *state_dir;     /* root/state: each input's engine's state directory */
static HealerStore *store;  /* root/store-state */
static GHashTable *modules; /* SHA-256 hex -> GBytes: every module of the store, to check DATA against */
static gboolean trace;      /* HEALER_FUZZ_TRACE set: what is sent and what the engine says, on stderr */

static GLogWriterOutput
quiet_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	(void)user_data;
	if (trace) {
		for (gsize i = 0; i < n_fields; i++) {
			if (strcmp(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
				fprintf(stderr, "    log: %s\n", (const char *)fields[i].value);
		}
	}
	/* A critical (a g_return_if_fail) is a bug: crash, so the fuzzer keeps the input. */
	if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR | G_LOG_FLAG_FATAL)) {
		for (gsize i = 0; i < n_fields; i++) {
			if (strcmp(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
				fprintf(stderr, "fuzz-device-engine: %s\n", (const char *)fields[i].value);
		}
		abort();
	}
	return G_LOG_WRITER_HANDLED;
}

static void
remove_tree(const char *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *child = g_build_filename(path, name, NULL);
		if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
			remove_tree(child);
		else
			g_unlink(child);
	}
	g_rmdir(path);
}

static void
remove_root(void)
{
	if (root_dir != NULL)
		remove_tree(root_dir);
}

static void
setup_once(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) entries = NULL;
	g_autofree char *store_state = NULL;
	const char *firmware = g_getenv("HEALER_FIRMWARE_MODULES");

	if (firmware == NULL || *firmware == '\0')
		firmware = HEALER_FUZZ_FIRMWARE_MODULES;
	trace = g_getenv("HEALER_FUZZ_TRACE") != NULL;
	g_log_set_writer_func(quiet_writer, NULL, NULL);
	g_unsetenv("NOTIFY_SOCKET");
	root_dir = g_dir_make_tmp("healer-fuzz-engine-XXXXXX", &error);
	g_assert_no_error(error);
	atexit(remove_root);
	state_dir = g_build_filename(root_dir, "state", NULL);
	store_state = g_build_filename(root_dir, "store-state", NULL);
	store = healer_store_open(store_state, &error);
	g_assert_no_error(error);
	if (healer_store_import_directory(store, firmware, NULL, &error) == 0 || error != NULL) {
		fprintf(stderr,
		        "fuzz-device-engine: no modules imported from %s (build the firmware-modules target): %s\n",
		        firmware, error ? error->message : "none found");
		abort();
	}
	modules = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);
	entries = healer_store_list(store);
	for (guint i = 0; i < entries->len; i++) {
		const HealerStoreEntry *e = g_ptr_array_index(entries, i);
		g_autofree char *contents = NULL;
		gsize len = 0;

		g_assert_true(g_file_get_contents(e->path, &contents, &len, NULL));
		g_hash_table_insert(modules, g_strdup(e->sha256), g_bytes_new_take(g_steal_pointer(&contents), len));
	}
}

/* ---- one input ------------------------------------------------------------ */

typedef struct _Fuzz Fuzz;

typedef struct {
	HealerTransport parent;
	Fuzz *fuzz;
	guint port;
} FakeTransport;

/* What the device on a port runs (versions as firmware.json has them). */
typedef struct {
	guint16 bootloader, part1, part2;
	guint app; /* FE_APP_* */
} Model;

typedef struct {
	char *name;
	FakeTransport *transport; /* NULL: nothing plugged in */
	HealerLinkDecoder *sent;  /* decodes what healerd sends */
	Model model;
	guint id; /* the id the device said last (index into ids[]) */
	/* The transfer healerd runs on this port, as its frames show it. */
	gboolean have_begin;
	HealerLinkBegin begin;
	GBytes *module;
	guint32 data_end;  /* end of the last DATA */
	guint32 acked;     /* the last ACK the device sent */
	GArray *data_ends; /* guint32: ends of the DATA frames sent since the last ACK */
} Port;

struct _Fuzz {
	const guint8 *data;
	gsize size, pos;
	HealerConfig *config;
	HealerEngine *engine;
	HealerSerialBackend *serial; /* the ports' backend: the fake transports are attached through it */
	HealerLinkDecoder *incoming; /* frames the device sends, encoded then decoded as a serial line would */
	Port ports[FE_PORTS];
	guint current;
	guint first_source; /* the first GSource id this input may have made */
	guint scanned;      /* ids below this were looked at */
	GArray *timers;     /* guint: ids of the pending timers, oldest first */
};

static const guint8 ids[FE_IDS][LINK_DEVICE_ID_SIZE] = {
        {0xe0, 0x0f, 0xce, 0x68, 0x31, 0x3a, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78},
        {0xe0, 0x0f, 0xce, 0x68, 0x31, 0x3a, 0x00, 0x00, 0x9a, 0xbc, 0xde, 0xf0},
        {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},
        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
};

static guint8
next_byte(Fuzz *f)
{
	return f->pos < f->size ? f->data[f->pos++] : 0;
}

/* Up to `len` bytes of the input (fewer at its end); points into it. */
static const guint8 *
next_bytes(Fuzz *f, gsize len, gsize *got)
{
	const guint8 *p = f->data + f->pos;

	*got = MIN(len, f->size - f->pos);
	f->pos += *got;
	return p;
}

static char *
id_hex(guint id)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < LINK_DEVICE_ID_SIZE; i++)
		g_string_append_printf(s, "%02x", ids[id][i]);
	return g_string_free(s, FALSE);
}

/* ---- the device model ------------------------------------------------------ */

typedef struct {
	guint16 part1, part2, bootloader; /* what each release ships (firmware.json) */
	guint16 part1_needs_part2;
	guint16 bootloader_needed; /* by system-part 2 */
} Release;

static const Release releases[] = {
        {1000, 1000, 100, 1000, 100}, {1100, 1100, 100, 1000, 100}, {1203, 1203, 120, 1000, 120},
        {2000, 2000, 200, 1203, 200}, {2002, 2002, 201, 1203, 200}, {2100, 2100, 201, 1203, 200},
};

typedef struct {
	guint16 version;
	guint16 needs_part2;
} App;

static const App apps[] = {
        [FE_APP_HEARTBEAT] = {2, 1100},
        [FE_APP_TINKER] = {3, 1000},
        [FE_APP_TRAVEL] = {1, 2002},
        [FE_APP_SENSOR] = {4, 2100},
};

static const Release *
release_of(guint16 part_version)
{
	for (guint i = 0; i < G_N_ELEMENTS(releases); i++) {
		if (releases[i].part1 == part_version)
			return &releases[i];
	}
	return NULL;
}

static gboolean
part1_ok(const Model *m)
{
	const Release *r = release_of(m->part1);
	return r == NULL || m->part2 >= r->part1_needs_part2;
}

static gboolean
part2_ok(const Model *m)
{
	const Release *r = release_of(m->part2);
	return r == NULL || (m->part1 >= m->part2 && m->bootloader >= r->bootloader_needed);
}

static gboolean
app_ok(const Model *m)
{
	return m->app == FE_APP_NONE || m->part2 >= apps[m->app].needs_part2;
}

static char *
model_describe(const Model *m)
{
	const Release *r1 = release_of(m->part1), *r2 = release_of(m->part2);
	GString *s = g_string_new(NULL);

	g_string_append_printf(s,
	                       "{\"p\":3,\"m\":[{\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\","
	                       "\"v\":%u,\"d\":[]},",
	                       m->bootloader);
	g_string_append_printf(s,
	                       "{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":%u,\"f\":\"s\",\"n\":\"1\",\"v\":%u,\"d\":[",
	                       part1_ok(m) ? 30 : 26, m->part1);
	if (r1 != NULL)
		g_string_append_printf(s, "{\"f\":\"s\",\"n\":\"2\",\"v\":%u}", r1->part1_needs_part2);
	g_string_append_printf(
	        s, "]},{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":%u,\"f\":\"s\",\"n\":\"2\",\"v\":%u,\"d\":[",
	        part2_ok(m) ? 30 : 26, m->part2);
	if (r2 != NULL)
		g_string_append_printf(s, "{\"f\":\"s\",\"n\":\"1\",\"v\":%u},{\"f\":\"b\",\"n\":\"0\",\"v\":%u}",
		                       m->part2, r2->bootloader_needed);
	g_string_append(s, "]}");
	if (m->app != FE_APP_NONE)
		g_string_append_printf(
		        s,
		        ",{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":%u,\"u\":"
		        "\"D7EC9531DC0CD9FD267D3F957290C2E80115B189A8D95CE868E0E70438DF77E7\",\"f\":\"u\","
		        "\"n\":\"1\",\"v\":%u,\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":%u}]}",
		        app_ok(m) ? 30 : 26, apps[m->app].version, apps[m->app].needs_part2);
	g_string_append(s, "]}");
	return g_string_free(s, FALSE);
}

static void
model_set_release(Model *m, guint which, guint release)
{
	const Release *r = &releases[release % G_N_ELEMENTS(releases)];

	if (which != 2)
		m->part1 = r->part1;
	if (which != 1) {
		m->part2 = r->part2;
		if (which == 0)
			m->bootloader = r->bootloader;
	}
}

/* ---- what healerd sends ------------------------------------------------------ */

static void
forget_transfer(Port *p)
{
	p->have_begin = FALSE;
	g_clear_pointer(&p->module, g_bytes_unref);
	p->data_end = p->acked = 0;
	g_array_set_size(p->data_ends, 0);
}

static void
check_sent(Port *p, const link_frame_t *frame)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(healer_link_frame_type_is_from_device(frame->type));
	switch (frame->type) {
	case LINK_BEGIN: {
		g_autofree char *sha = NULL;
		GBytes *module;

		g_assert_true(healer_link_parse_begin(frame, &p->begin, &error));
		sha = healer_sha256_to_hex(p->begin.sha256);
		module = g_hash_table_lookup(modules, sha);
		/* Only modules of the store are flashed, whole. */
		g_assert_nonnull(module);
		g_assert_cmpuint(g_bytes_get_size(module), ==, p->begin.size);
		forget_transfer(p);
		p->have_begin = TRUE;
		p->module = g_bytes_ref(module);
		break;
	}
	case LINK_DATA: {
		HealerLinkData d;

		g_assert_true(healer_link_parse_data(frame, &d, &error));
		g_assert_true(p->have_begin);
		g_assert_cmpuint((guint64)d.offset + d.len, <=, p->begin.size);
		g_assert_cmpuint(d.len, <=, p->begin.max_data);
		g_assert_true(memcmp((const guint8 *)g_bytes_get_data(p->module, NULL) + d.offset, d.data, d.len) == 0);
		p->data_end = d.offset + (guint32)d.len;
		g_array_append_val(p->data_ends, p->data_end);
		break;
	}
	case LINK_DESCRIBE:
		g_assert_true(healer_link_parse_describe(frame, &error));
		break;
	case LINK_FINISH:
		g_assert_true(healer_link_parse_finish(frame, &error));
		g_assert_true(p->have_begin);
		break;
	case LINK_RESET:
		g_assert_true(healer_link_parse_reset(frame, &error));
		break;
	case LINK_CANCEL:
		g_assert_true(healer_link_parse_cancel(frame, &error));
		break;
	case LINK_HELLO_REQUEST:
		g_assert_true(healer_link_parse_hello_request(frame, &error));
		break;
	case LINK_PING: {
		guint32 nonce;
		g_assert_true(healer_link_parse_ping(frame, &nonce, &error));
		break;
	}
	default:
		g_error("healerd sent a frame of type 0x%02x", frame->type);
	}
}

static void
fake_send(HealerTransport *transport, GBytes *frame)
{
	FakeTransport *t = (FakeTransport *)transport;
	Port *p = &t->fuzz->ports[t->port];
	g_autoptr(GPtrArray) frames = NULL;
	HealerLinkDecoderStats stats;
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(frame, &len);

	g_assert_true(p->transport == t);
	frames = healer_link_decoder_push(p->sent, data, len);
	healer_link_decoder_get_stats(p->sent, &stats);
	/* One whole, well-formed frame per send. */
	g_assert_cmpuint(frames->len, ==, 1);
	g_assert_cmpuint(stats.frames_bad, ==, 0);
	check_sent(p, &((HealerLinkFrame *)g_ptr_array_index(frames, 0))->frame);
	if (trace) {
		const link_frame_t *sent = &((HealerLinkFrame *)g_ptr_array_index(frames, 0))->frame;
		fprintf(stderr, "    %s <- %s", p->name, healer_link_frame_type_to_string(sent->type));
		if (sent->type == LINK_BEGIN)
			fprintf(stderr, " function %u index %u version %u, %u bytes", p->begin.function, p->begin.index,
			        p->begin.version, p->begin.size);
		else if (sent->type == LINK_DATA)
			fprintf(stderr, " up to %u", p->data_end);
		fprintf(stderr, "\n");
	}
}

/* Freed at once (the serial transport frees itself from an idle): any later use is an ASan report. */
static void
fake_close(HealerTransport *transport)
{
	FakeTransport *t = (FakeTransport *)transport;
	Port *p = &t->fuzz->ports[t->port];

	g_assert_true(p->transport == t);
	p->transport = NULL;
	forget_transfer(p);
	g_free(t);
}

static const char *
fake_label(HealerTransport *transport)
{
	FakeTransport *t = (FakeTransport *)transport;

	return t->fuzz->ports[t->port].name;
}

static const HealerTransportOps fake_ops = {
        .send = fake_send,
        .close = fake_close,
        .label = fake_label,
};

/* ---- the main context ---------------------------------------------------- */

/* The id the next GSource will get: every source made since `first_source` has one below it. */
static guint
next_source_id(void)
{
	GSource *source = g_idle_source_new();
	guint id = g_source_attach(source, NULL);

	g_source_destroy(source);
	g_source_unref(source);
	return id + 1;
}

/*
 * Pending timers (sources with a ready time) made since the input began, oldest first, frozen: their
 * ready time set to "never", so none fires by itself however slowly the input runs (valgrind), only
 * when FE_TICK makes it due.
 */
static void
scan_timers(Fuzz *f)
{
	guint top = next_source_id();

	for (guint i = 0; i < f->timers->len;) {
		if (g_main_context_find_source_by_id(NULL, g_array_index(f->timers, guint, i)) == NULL)
			g_array_remove_index(f->timers, i);
		else
			i++;
	}
	for (guint id = f->scanned; id < top; id++) {
		GSource *source = g_main_context_find_source_by_id(NULL, id);
		if (source != NULL && g_source_get_ready_time(source) >= 0)
			g_array_append_val(f->timers, id);
	}
	f->scanned = top;
	for (guint i = 0; i < f->timers->len; i++)
		g_source_set_ready_time(g_main_context_find_source_by_id(NULL, g_array_index(f->timers, guint, i)), -1);
}

/* Whether a heal waits for its job file (the worker's answer comes through the main context). */
static gboolean
heal_starting(Fuzz *f)
{
	g_autoptr(GPtrArray) devices = healer_engine_list_devices(f->engine);

	for (guint i = 0; i < devices->len; i++) {
		const HealerDeviceInfo *info = g_ptr_array_index(devices, i);
		if (strcmp(info->state, "healing") == 0 && strcmp(info->detail, "starting") == 0)
			return TRUE;
	}
	return FALSE;
}

static gboolean
on_stuck(gpointer user_data)
{
	(void)user_data;
	g_error("a heal stayed 'starting' for %u s: its job file was written and its first step never began", STUCK_S);
	return G_SOURCE_REMOVE;
}

/*
 * Dispatches whatever is ready, then waits for a starting heal's job file:
 * the same input always meets the same state.  Every timer is frozen by
 * then, so only the job writer's answer can end the wait; a heal still
 * starting after STUCK_S seconds of real time never will (a bug).
 */
static void
settle(Fuzz *f)
{
	for (;;) {
		guint guard;

		/* Frozen before every iteration: a timer armed by a dispatch (a 0 s retry) is never due by itself. */
		do
			scan_timers(f);
		while (g_main_context_iteration(NULL, FALSE));
		if (f->engine == NULL || !heal_starting(f))
			return;
		guard = g_timeout_add_seconds(STUCK_S, on_stuck, NULL);
		g_main_context_iteration(NULL, TRUE);
		g_source_remove(guard);
	}
}

/* ---- what the device sends ------------------------------------------------ */

static void
deliver_frame(Port *p, const link_frame_t *frame)
{
	FakeTransport *t = p->transport;

	if (t != NULL)
		t->parent.callbacks.frame(&t->parent, frame, t->parent.user_data);
}

/* Takes `encoded` (NULL: the builder refused; nothing is sent). */
static void
deliver(Fuzz *f, Port *p, GBytes *encoded)
{
	g_autoptr(GPtrArray) frames = NULL;
	gsize len = 0;
	const guint8 *data;

	if (encoded == NULL)
		return;
	data = g_bytes_get_data(encoded, &len);
	frames = healer_link_decoder_push(f->incoming, data, len);
	for (guint i = 0; i < frames->len; i++)
		deliver_frame(p, &((HealerLinkFrame *)g_ptr_array_index(frames, i))->frame);
	g_bytes_unref(encoded);
}

/* Text from the input: a length byte, then that many bytes, NUL-terminated (a NUL in it ends it early). */
static char *
next_text(Fuzz *f)
{
	gsize want = next_byte(f), got = 0;
	const guint8 *p = next_bytes(f, want, &got);

	return g_strndup((const char *)p, got);
}

static void
op_hello(Fuzz *f, Port *p, guint8 arg)
{
	gboolean healthy = part1_ok(&p->model) && part2_ok(&p->model) && app_ok(&p->model);
	HealerLinkHello hello = {
	        .protocol_version = LINK_PROTOCOL_VERSION,
	        .reset_reason = (arg >> 4) & 7,
	        .window = 4,
	        .platform_id = 3,
	        .max_data = HEALER_LINK_MAX_DATA_PAYLOAD,
	};

	switch ((arg >> 2) & 3) {
	case FE_MODE_MODEL:
		hello.mode = healthy && p->model.app != FE_APP_NONE ? LINK_MODE_NORMAL : LINK_MODE_SAFE;
		hello.safe_mode_reason = hello.mode == LINK_MODE_NORMAL ? LINK_SAFE_MODE_NONE
		                         : p->model.app == FE_APP_NONE  ? LINK_SAFE_MODE_NO_APPLICATION
		                                                        : LINK_SAFE_MODE_DEPENDENCIES;
		break;
	case FE_MODE_NORMAL:
		hello.mode = LINK_MODE_NORMAL;
		break;
	case FE_MODE_SAFE_REQUESTED:
		hello.mode = LINK_MODE_SAFE;
		hello.safe_mode_reason = LINK_SAFE_MODE_REQUESTED;
		break;
	default:
		hello.mode = LINK_MODE_DFU;
		break;
	}
	hello.led = hello.mode == LINK_MODE_NORMAL ? LINK_LED_BREATHING_CYAN : LINK_LED_BREATHING_MAGENTA;
	p->id = arg & 3;
	memcpy(hello.device_id, ids[p->id], LINK_DEVICE_ID_SIZE);
	deliver(f, p, healer_link_build_hello(&hello));
}

static void
op_describe(Fuzz *f, Port *p)
{
	g_autofree char *json = model_describe(&p->model);

	deliver(f, p, healer_link_build_describe_reply(json, strlen(json), NULL));
}

static void
op_ready(Fuzz *f, Port *p, guint8 a, guint8 b)
{
	static const guint16 max_data[] = {HEALER_LINK_MAX_DATA_PAYLOAD, 512, 64, 1};
	static const gint32 refusals[] = {LINK_ERROR_TOO_LARGE,           MODULE_UPDATE_ERROR_PLATFORM,
	                                  MODULE_UPDATE_ERROR_DEPENDENCY, MODULE_UPDATE_ERROR_INTEGRITY,
	                                  LINK_ERROR_BAD_REQUEST,         LINK_ERROR_UNKNOWN_REQUEST,
	                                  MODULE_UPDATE_ERROR_GENERIC,    -1};
	guint32 size = p->have_begin ? p->begin.size : 0, offset;

	switch (a & 3) {
	case FE_AT_ZERO:
		offset = 0;
		break;
	case FE_AT_ACKED:
		offset = p->acked;
		break;
	case FE_AT_ALL:
		offset = size;
		break;
	default:
		offset = size / 2 / 1024 * 1024;
		break;
	}
	p->acked = offset;
	g_array_set_size(p->data_ends, 0);
	deliver(f, p,
	        healer_link_build_update_ready((a & 0x80) ? refusals[b & 7] : 0, offset, max_data[(b >> 4) & 3],
	                                       (guint8)(1 + ((a >> 2) & 7))));
}

static void
op_ack(Fuzz *f, Port *p, guint8 arg)
{
	guint32 next;

	switch (arg & 7) {
	case FE_ACK_LAST_DATA:
		next = p->data_end;
		break;
	case FE_ACK_AGAIN:
		next = p->acked;
		break;
	case FE_ACK_FIRST:
		next = p->data_ends->len > 0 ? g_array_index(p->data_ends, guint32, 0) : p->acked;
		break;
	case FE_ACK_ALL:
		next = p->have_begin ? p->begin.size : 0;
		break;
	case FE_ACK_ZERO:
		next = 0;
		break;
	case FE_ACK_STEP:
		next = p->acked + 64u * (arg >> 3);
		break;
	case FE_ACK_BEFORE:
		next = p->data_end > 0 ? p->data_end - 1 : 0;
		break;
	default:
		next = 0;
		for (guint i = 0; i < 4; i++)
			next |= (guint32)next_byte(f) << (8 * i);
		break;
	}
	if (next > p->acked) {
		guint done = 0;
		while (done < p->data_ends->len && g_array_index(p->data_ends, guint32, done) <= next)
			done++;
		g_array_remove_range(p->data_ends, 0, done);
	}
	p->acked = next;
	deliver(f, p, healer_link_build_ack(next));
}

static void
op_result(Fuzz *f, Port *p, guint8 arg)
{
	static const gint32 statuses[] = {0,
	                                  0,
	                                  LINK_ERROR_INCOMPLETE,
	                                  MODULE_UPDATE_ERROR_DEPENDENCY,
	                                  LINK_ERROR_TOO_LARGE,
	                                  MODULE_UPDATE_ERROR_INTEGRITY,
	                                  1,
	                                  LINK_ERROR_UNKNOWN_REQUEST};
	gint32 status = statuses[arg & 7];

	/* Staged: the device runs it after its reset. */
	if (status == 0 && p->have_begin) {
		if (p->begin.function == MODULE_FUNCTION_BOOTLOADER)
			p->model.bootloader = p->begin.version;
		else if (p->begin.function == MODULE_FUNCTION_SYSTEM_PART && p->begin.index == 1)
			p->model.part1 = p->begin.version;
		else if (p->begin.function == MODULE_FUNCTION_SYSTEM_PART && p->begin.index == 2)
			p->model.part2 = p->begin.version;
	}
	deliver(f, p, healer_link_build_update_result(status));
}

static void
op_error(Fuzz *f, Port *p, guint8 arg)
{
	static const gint32 codes[] = {LINK_ERROR_NO_TRANSFER, LINK_ERROR_BAD_REQUEST, LINK_ERROR_INCOMPLETE,
	                               MODULE_UPDATE_ERROR_GENERIC};
	static const guint8 types[] = {LINK_BEGIN, LINK_DATA, LINK_FINISH, LINK_DESCRIBE,
	                               LINK_RESET, LINK_PING, 0x00,        0x7F};
	g_autofree char *text = next_text(f);

	deliver(f, p, healer_link_build_error(codes[arg & 3], types[(arg >> 2) & 7], text, NULL));
}

static void
op_log(Fuzz *f, Port *p, guint8 arg)
{
	g_autofree char *text = next_text(f);

	deliver(f, p, healer_link_build_log(arg & 3, text, NULL));
}

static void
op_status(Fuzz *f, Port *p, guint8 arg)
{
	HealerLinkStatus status = {.mode = arg & 7, .safe_mode_reason = (arg >> 3) & 7, .led = next_byte(f) & 7};

	deliver(f, p, healer_link_build_status(&status));
}

/* Any type, flags and body: what the decoder hands over for a frame with a good CRC. */
static void
op_raw(Fuzz *f, Port *p)
{
	guint8 type = next_byte(f), flags = next_byte(f);
	gsize want = next_byte(f), got = 0;
	const guint8 *body = next_bytes(f, want, &got);
	g_autoptr(HealerLinkFrame) frame = healer_link_frame_new(type, flags, body, got);

	deliver_frame(p, &frame->frame);
}

static void
op_describe_text(Fuzz *f, Port *p)
{
	gsize want = next_byte(f), got = 0;
	const guint8 *text;

	want |= (gsize)next_byte(f) << 8;
	text = next_bytes(f, MIN(want, LINK_MAX_BODY), &got);
	deliver(f, p, healer_link_build_describe_reply((const char *)text, got, NULL));
}

/* The chosen timers are due now; out of the list, so the next scan leaves them due. */
static void
op_tick(Fuzz *f, guint8 arg)
{
	guint n = f->timers->len;

	for (guint i = n; i-- > 0;) {
		if (arg == 0xFF || i == arg % n) {
			GSource *source = g_main_context_find_source_by_id(NULL, g_array_index(f->timers, guint, i));
			g_source_set_ready_time(source, 0);
			g_array_remove_index(f->timers, i);
		}
	}
}

static void
op_unplug(Fuzz *f, Port *p)
{
	FakeTransport *t = p->transport;
	HealerTransportCallbacks callbacks;
	gpointer user_data;
	g_autoptr(GError) error = NULL;

	(void)f;
	if (t == NULL)
		return;
	/* As the serial transport does: closed first, then the owner told, once. */
	callbacks = t->parent.callbacks;
	user_data = t->parent.user_data;
	p->transport = NULL;
	forget_transfer(p);
	error = g_error_new(HEALER_ERROR, HEALER_ERROR_IO, "%s: hung up", p->name);
	callbacks.closed(&t->parent, error, user_data);
	g_free(t);
}

static void
op_plug(Fuzz *f, guint port)
{
	Port *p = &f->ports[port];
	FakeTransport *t;

	f->current = port;
	if (p->transport != NULL)
		return;
	t = g_new0(FakeTransport, 1);
	t->parent.ops = &fake_ops;
	t->fuzz = f;
	t->port = port;
	p->transport = t;
	forget_transfer(p);
	healer_link_decoder_reset(p->sent);
	healer_serial_backend_attach_transport(f->serial, p->name, &t->parent);
}

static void
op_model(Port *p, guint8 arg)
{
	if ((arg & 7) <= FE_APP_NONE)
		p->model.app = arg & 7;
	else
		model_set_release(&p->model, (arg & 7) - 5, (arg >> 3) & 7);
}

static void
on_changed(const HealerEvent *event, gpointer user_data)
{
	g_autoptr(HealerDeviceInfo) info = NULL;

	if (event->kind != HEALER_EVENT_DEVICE_CHANGED)
		return;
	info = healer_engine_get_device(user_data, event->device_id);
	if (info != NULL)
		fprintf(stderr, "    %s on %s: %s (%s)\n", event->device_id, info->port, info->state, info->detail);
}

static void
check_info(const HealerDeviceInfo *info)
{
	static const char *const states[] = {"attached", "identified", "healthy", "safe-mode", "queued",
	                                     "healing",  "blocked",    "failed",  "detached"};
	gboolean known = FALSE;

	g_assert_nonnull(info->id);
	g_assert_cmpuint(strlen(info->id), ==, 2 * LINK_DEVICE_ID_SIZE);
	g_assert_nonnull(info->port);
	g_assert_nonnull(info->mode);
	g_assert_nonnull(info->led);
	g_assert_nonnull(info->detail);
	g_assert_nonnull(info->safe_mode_reason);
	g_assert_nonnull(info->modules_json);
	g_assert_nonnull(info->current_step);
	g_assert_nonnull(info->last_error);
	g_assert_cmpuint(info->progress, <=, 100);
	for (guint i = 0; i < G_N_ELEMENTS(states); i++)
		known = known || strcmp(info->state, states[i]) == 0;
	g_assert_true(known);
}

/* What the D-Bus face calls, on the id the current port's device said last. */
static void
op_face(Fuzz *f, Port *p, guint8 arg)
{
	g_autofree char *id = id_hex(p->id);
	g_autoptr(GError) error = NULL;

	switch (arg & 7) {
	case FE_FACE_LIST: {
		g_autoptr(GPtrArray) devices = healer_engine_list_devices(f->engine);
		g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
		for (guint i = 0; i < devices->len; i++) {
			const HealerDeviceInfo *info = g_ptr_array_index(devices, i);
			check_info(info);
			/* One device per id, whatever the devices claim (issue 13: the first port keeps an id). */
			g_assert_true(g_hash_table_add(seen, info->id));
		}
		break;
	}
	case FE_FACE_GET: {
		g_autoptr(HealerDeviceInfo) info = healer_engine_get_device(f->engine, id);
		if (info != NULL)
			check_info(info);
		break;
	}
	case FE_FACE_PLAN: {
		g_autofree char *plan = healer_engine_plan(f->engine, id, &error);
		if (plan != NULL) {
			json_object *root = json_tokener_parse(plan);
			g_assert_true(json_object_is_type(root, json_type_object));
			json_object_put(root);
		} else {
			g_assert_nonnull(error);
		}
		break;
	}
	case FE_FACE_HEAL:
		g_assert_true(healer_engine_heal(f->engine, id, &error) == (error == NULL));
		break;
	case FE_FACE_HEAL_ALL:
		g_ptr_array_unref(healer_engine_heal_all(f->engine));
		break;
	case FE_FACE_RESET:
		g_assert_true(healer_engine_reset(f->engine, id, &error) == (error == NULL));
		break;
	case FE_FACE_SUMMARY:
		g_free(healer_engine_summary(f->engine));
		break;
	default:
		healer_engine_store_changed(f->engine);
		break;
	}
}

static void
run_op(Fuzz *f, guint8 op)
{
	Port *p = &f->ports[f->current];

	if (trace)
		fprintf(stderr, "op %u at %" G_GSIZE_FORMAT " on %s\n", op & 0x0F, f->pos - 1, p->name);
	switch (op & 0x0F) {
	case FE_HELLO:
		op_hello(f, p, next_byte(f));
		break;
	case FE_DESCRIBE:
		op_describe(f, p);
		break;
	case FE_READY: {
		guint8 a = next_byte(f);
		op_ready(f, p, a, next_byte(f));
		break;
	}
	case FE_ACK:
		op_ack(f, p, next_byte(f));
		break;
	case FE_RESULT:
		op_result(f, p, next_byte(f));
		break;
	case FE_ERROR:
		op_error(f, p, next_byte(f));
		break;
	case FE_LOG:
		op_log(f, p, next_byte(f));
		break;
	case FE_STATUS:
		op_status(f, p, next_byte(f));
		break;
	case FE_RAW:
		op_raw(f, p);
		break;
	case FE_DESCRIBE_TEXT:
		op_describe_text(f, p);
		break;
	case FE_TICK:
		op_tick(f, next_byte(f));
		break;
	case FE_UNPLUG:
		op_unplug(f, p);
		break;
	case FE_PLUG:
		op_plug(f, next_byte(f) & 1);
		break;
	case FE_MODEL:
		op_model(p, next_byte(f));
		break;
	case FE_FACE:
		op_face(f, p, next_byte(f));
		break;
	default:
		f->current = next_byte(f) & 1;
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean initialized = FALSE;
	Fuzz f = {.data = data, .size = size};
	HealerSupply *supply;
	guint8 cfg;
	guint trace_subscription = 0;

	if (!initialized) {
		setup_once();
		initialized = TRUE;
	}
	cfg = next_byte(&f);
	f.first_source = f.scanned = next_source_id();
	f.timers = g_array_new(FALSE, FALSE, sizeof(guint));
	f.incoming = healer_link_decoder_new();
	f.config = healer_config_new_defaults();
	g_free(f.config->state_dir);
	f.config->state_dir = g_strdup(state_dir);
	f.config->auto_heal = !(cfg & FE_CFG_AUTO_HEAL_OFF);
	f.config->max_concurrent_jobs = (cfg >> FE_CFG_JOBS_SHIFT) & 3;
	f.config->max_attempts = 1 + ((cfg >> FE_CFG_ATTEMPTS_SHIFT) & 3);
	f.config->allow_prerelease = (cfg & FE_CFG_ALLOW_PRERELEASE) != 0;
	/* Timers fire when the input says (FE_TICK); their lengths only show in messages. */
	f.config->response_timeout_s = 600;
	f.config->reset_timeout_s = 3600;
	f.config->retry_backoff_s = 600;
	for (guint i = 0; i < FE_PORTS; i++) {
		Port *p = &f.ports[i];
		p->name = g_strdup_printf("/dev/fuzz%u", i);
		p->sent = healer_link_decoder_new();
		p->data_ends = g_array_new(FALSE, FALSE, sizeof(guint32));
		p->model = (Model){.bootloader = 100, .part1 = 1000, .part2 = 1000, .app = cfg >> FE_CFG_APP_SHIFT};
		p->id = i;
	}
	supply = healer_supply_new(f.config, store, NULL);
	f.engine = healer_engine_new(f.config, supply);
	f.serial = healer_serial_backend_new(f.config);
	healer_engine_add_backend(f.engine, HEALER_BACKEND(f.serial));
	if (trace)
		trace_subscription = healer_event_stream_subscribe(healer_events(), on_changed, f.engine);
	op_plug(&f, 0);
	settle(&f);

	while (f.pos < f.size) {
		run_op(&f, next_byte(&f));
		settle(&f);
	}

	if (trace_subscription != 0)
		healer_event_stream_unsubscribe(healer_events(), trace_subscription);
	g_clear_pointer(&f.engine, healer_engine_free);
	g_clear_pointer(&supply, healer_supply_free);
	g_clear_object(&f.serial);
	/* Devices are freed from idles (a device callback may be running when its attachment goes). */
	settle(&f);
	for (guint i = 0; i < FE_PORTS; i++) {
		Port *p = &f.ports[i];
		/* Every transport was closed with the engine. */
		g_assert_null(p->transport);
		g_free(p->name);
		healer_link_decoder_free(p->sent);
		g_array_unref(p->data_ends);
		g_clear_pointer(&p->module, g_bytes_unref);
	}
	/* Nothing this input made is left on the main context: no timer outlives its device or job. */
	for (guint id = f.first_source, top = next_source_id(); id < top; id++) {
		if (g_main_context_find_source_by_id(NULL, id) != NULL)
			g_error("a GSource (id %u) outlived the engine", id);
	}
	healer_config_free(f.config);
	healer_link_decoder_free(f.incoming);
	g_array_unref(f.timers);
	/* The next input starts with no job files. */
	remove_tree(state_dir);
	return 0;
}
