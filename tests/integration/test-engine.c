/*
 * The engine in-process (no faces yet): installing an application through
 * it first installs the system modules the application needs, then the
 * application, so the device never boots into safe mode.
 */
#include <glib/gstdio.h>
#include <signal.h>

#include "engine.h"
#include "events.h"
#include "healer-error.h"
#include "store.h"
#include "supply.h"
#include "healer/module-format.h"
#include "journal.h"
#include "link-device.h"
#include "serial-backend.h"
#include "sim-client.h"
#include "test-util.h"

static char *tmpdir;

typedef struct {
	GMainLoop *loop;
	gboolean done;
	GError *error;
} Outcome;

static void
on_done(HealerEngine *engine, const char *device_id, const GError *error, gpointer user_data)
{
	Outcome *o = user_data;

	(void)engine;
	(void)device_id;
	o->done = TRUE;
	o->error = error ? g_error_copy(error) : NULL;
	g_main_loop_quit(o->loop);
}

/* A bound for a hang: `user_data` says what did not happen (NULL: the engine did not finish). */
static gboolean
on_timeout(gpointer user_data)
{
	g_error("%s", user_data != NULL ? (const char *)user_data : "the engine did not finish in time");
	return G_SOURCE_REMOVE;
}

static void
test_flash_app_never_safe_mode(void)
{
	g_autofree char *dir = g_build_filename(tmpdir, "flash", NULL);
	g_autofree char *state = g_build_filename(dir, "state", NULL);
	g_autofree char *link = g_build_filename(dir, "ports", "dev", NULL);
	g_autofree char *device_dir = g_build_filename(dir, "device", NULL);
	g_autofree char *ports_glob = g_build_filename(dir, "ports", "*", NULL);
	g_autofree char *app =
	        g_build_filename(test_program("HEALER_FIRMWARE_MODULES"), "apps", "travel-in-time.bin", NULL);
	g_autofree char *not_app =
	        g_build_filename(test_program("HEALER_FIRMWARE_MODULES"), "2.0.0", "system-part1.bin", NULL);
	g_autofree char *sim_log = g_build_filename(device_dir, "sim.log", NULL);
	g_autofree char *log_text = NULL, *id = NULL;
	const char *args[] = {"--release", "1.0.0", "--app", "tinker", "--link", link, NULL};
	g_autoptr(SimDevice) sim = NULL;
	g_autoptr(HealerConfig) config = healer_config_new_defaults();
	g_autoptr(HealerStore) store = NULL;
	g_autoptr(HealerSupply) supply = NULL;
	g_autoptr(HealerEngine) engine = NULL;
	g_autoptr(HealerSerialBackend) serial = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerDescribe) describe = NULL;
	Outcome outcome = {.loop = loop};
	HealerLinkHello hello;
	gint64 deadline;
	guint timeout;

	{
		g_autofree char *ports = g_path_get_dirname(link);
		g_mkdir_with_parents(ports, 0755);
	}
	sim = sim_device_start(device_dir, args);
	sim_device_wait_hello(sim, &hello, 10000);
	g_assert_cmpuint(hello.mode, ==, LINK_MODE_NORMAL);
	id = sim_hello_id(&hello);
	sim_device_disconnect(sim);

	g_free(config->state_dir);
	config->state_dir = g_strdup(state);
	g_strfreev(config->serial_ports);
	config->serial_ports = g_strsplit(ports_glob, "\n", -1);
	g_strfreev(config->module_dirs);
	config->module_dirs = g_strsplit(test_program("HEALER_FIRMWARE_MODULES"), "\n", -1);
	store = healer_store_open(state, &error);
	g_assert_no_error(error);
	healer_store_import_directory(store, config->module_dirs[0], NULL, &error);
	g_assert_no_error(error);
	supply = healer_supply_new(config, store, NULL);
	engine = healer_engine_new(config, supply);
	serial = healer_serial_backend_new(config);
	healer_engine_add_backend(engine, HEALER_BACKEND(serial));
	healer_engine_start(engine);

	/* Unknown device, and a file that is no application: refused at once. */
	g_assert_false(healer_engine_flash_app(engine, "000000000000000000000000", app, on_done, &outcome, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
	g_clear_error(&error);

	/* Wait (on the loop) until the device is attached and described. */
	deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	while (!healer_engine_flash_app(engine, id, not_app, on_done, &outcome, &error)) {
		if (!g_error_matches(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND))
			break;
		g_clear_error(&error);
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, TRUE);
	}
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);

	g_assert_true(healer_engine_flash_app(engine, id, app, on_done, &outcome, &error));
	g_assert_no_error(error);
	timeout = g_timeout_add_seconds(120, on_timeout, NULL);
	if (!outcome.done)
		g_main_loop_run(loop);
	g_source_remove(timeout);
	g_assert_no_error(outcome.error);
	g_clear_pointer(&engine, healer_engine_free);
	/* Let the engine's deferred frees run. */
	while (g_main_context_iteration(NULL, FALSE))
		;

	sim_device_reconnect(sim);
	describe = sim_device_describe(sim, NULL);
	g_assert_cmpuint(healer_describe_find(describe, MODULE_FUNCTION_SYSTEM_PART, 2)->version, ==, 2002);
	g_assert_true(healer_describe_module_valid(healer_describe_find(describe, MODULE_FUNCTION_USER_PART, 1)));
	/* The device never came up in safe mode: the application went in last. */
	g_assert_true(g_file_get_contents(sim_log, &log_text, NULL, NULL));
	g_assert_null(strstr(log_text, "safe mode"));
	g_assert_nonnull(strstr(log_text, "travel-in-time: running on system 2.0.0"));
}

/* What a heal looked like from outside while it ran. */
typedef struct {
	GMainLoop *loop;
	HealerEngine *engine;
	char *job_path;
	gboolean progressed;
	gboolean file_at_first_progress;
	char *error_at_first_progress;
	gboolean finished, success;
} HealSeen;

static void
on_heal_progress(HealSeen *seen, const char *device_id)
{
	g_autoptr(HealerDeviceInfo) info = healer_engine_get_device(seen->engine, device_id);

	if (seen->progressed)
		return;
	seen->progressed = TRUE;
	seen->file_at_first_progress = g_file_test(seen->job_path, G_FILE_TEST_IS_REGULAR);
	seen->error_at_first_progress = g_strdup(info != NULL ? info->last_error : "");
}

static void
on_heal_finished(HealSeen *seen, gboolean success)
{
	seen->finished = TRUE;
	seen->success = success;
	g_main_loop_quit(seen->loop);
}

static void
on_event(const HealerEvent *event, gpointer user_data)
{
	if (event->kind == HEALER_EVENT_HEAL_PROGRESS)
		on_heal_progress(user_data, event->device_id);
	else if (event->kind == HEALER_EVENT_HEAL_FINISHED)
		on_heal_finished(user_data, event->success);
}

/*
 * A device in safe mode, healed by the engine: its job file is on disk
 * before the device receives anything (written by a worker), is gone once
 * the heal ended and the engine is freed, and no module stays held.  With
 * `data` set the job file cannot be written: the heal goes on, and the
 * device's last error says why.
 */
static void
test_heal_job_file(gconstpointer data)
{
	gboolean unwritable = GPOINTER_TO_INT(data);
	g_autofree char *dir = g_build_filename(tmpdir, unwritable ? "heal-unsaved" : "heal", NULL);
	g_autofree char *state = g_build_filename(dir, "state", NULL);
	g_autofree char *jobs = g_build_filename(state, "jobs", NULL);
	g_autofree char *link = g_build_filename(dir, "ports", "dev", NULL);
	g_autofree char *device_dir = g_build_filename(dir, "device", NULL);
	g_autofree char *ports_glob = g_build_filename(dir, "ports", "*", NULL);
	g_autofree char *id = NULL, *job_name = NULL;
	const char *args[] = {"--release", "1.0.0", "--app", "heartbeat", "--link", link, NULL};
	g_autoptr(SimDevice) sim = NULL;
	g_autoptr(HealerConfig) config = healer_config_new_defaults();
	g_autoptr(HealerStore) store = NULL;
	g_autoptr(HealerSupply) supply = NULL;
	g_autoptr(HealerEngine) engine = NULL;
	g_autoptr(HealerSerialBackend) serial = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) entries = NULL;
	g_autoptr(GPtrArray) shas = g_ptr_array_new_with_free_func(g_free);
	HealSeen seen = {.loop = loop};
	HealerLinkHello hello;
	guint timeout, subscription;

	{
		g_autofree char *ports = g_path_get_dirname(link);
		g_mkdir_with_parents(ports, 0755);
	}
	sim = sim_device_start(device_dir, args);
	sim_device_wait_hello(sim, &hello, 10000);
	g_assert_cmpuint(hello.mode, ==, LINK_MODE_SAFE);
	id = sim_hello_id(&hello);
	sim_device_disconnect(sim);
	job_name = g_strconcat(id, ".json", NULL);
	seen.job_path = g_build_filename(jobs, job_name, NULL);

	g_free(config->state_dir);
	config->state_dir = g_strdup(state);
	g_strfreev(config->serial_ports);
	config->serial_ports = g_strsplit(ports_glob, "\n", -1);
	g_strfreev(config->module_dirs);
	config->module_dirs = g_strsplit(test_program("HEALER_FIRMWARE_MODULES"), "\n", -1);
	store = healer_store_open(state, &error);
	g_assert_no_error(error);
	healer_store_import_directory(store, config->module_dirs[0], NULL, &error);
	g_assert_no_error(error);
	if (unwritable)
		test_write_file(jobs, (const guint8 *)"not a directory", 15);
	supply = healer_supply_new(config, store, NULL);
	engine = healer_engine_new(config, supply);
	serial = healer_serial_backend_new(config);
	healer_engine_add_backend(engine, HEALER_BACKEND(serial));
	seen.engine = engine;
	subscription = healer_event_stream_subscribe(healer_events(), on_event, &seen);
	healer_engine_start(engine);
	timeout = g_timeout_add_seconds(120, on_timeout, NULL);
	g_main_loop_run(loop);
	g_source_remove(timeout);
	healer_event_stream_unsubscribe(healer_events(), subscription);

	g_assert_true(seen.success);
	g_assert_true(seen.progressed);
	if (unwritable) {
		g_assert_false(seen.file_at_first_progress);
		g_assert_nonnull(strstr(seen.error_at_first_progress, "cannot save the heal's progress"));
	} else {
		g_assert_true(seen.file_at_first_progress);
		g_assert_cmpstr(seen.error_at_first_progress, ==, "");
	}

	/*
	 * No module is held once the heal ended: every stored file, altered
	 * now, is read again (and refused) by the next one to flash it.
	 */
	entries = healer_store_list(store);
	for (guint i = 0; i < entries->len; i++) {
		const HealerStoreEntry *e = g_ptr_array_index(entries, i);
		g_autoptr(GBytes) bytes = test_read_file(e->path);
		g_autofree guint8 *copy = g_memdup2(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));

		copy[g_bytes_get_size(bytes) - 1] ^= 0xff;
		test_write_file(e->path, copy, g_bytes_get_size(bytes));
		g_ptr_array_add(shas, g_strdup(e->sha256));
	}
	for (guint i = 0; i < shas->len; i++) {
		g_assert_null(healer_store_acquire_module(store, g_ptr_array_index(shas, i), &error));
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		g_clear_error(&error);
	}

	/* The job file's removal was queued at the heal's end; freeing the engine waits for it. */
	g_clear_pointer(&engine, healer_engine_free);
	while (g_main_context_iteration(NULL, FALSE))
		;
	if (!unwritable)
		g_assert_false(g_file_test(seen.job_path, G_FILE_TEST_EXISTS));
	g_free(seen.job_path);
	g_free(seen.error_at_first_progress);
}

/*
 * HealerDevice's transfer against a scripted device on an in-process transport: frames go both ways in
 * order, as on a serial line, and the script drops chosen DATA frames (a frame damaged on the line: the
 * device never sees it).  No timer fires (the response timeout is far away), so every run takes the same
 * path: deterministic on a loaded machine.  Only the tests of silence and of a lost describe need the
 * retry interval to fire (firing_timeout_ms()).
 */
#define SCRIPT_BLOCK 1024u /* the device keeps what it received in blocks of this size (docs/link-protocol.md) */

typedef struct {
	HealerTransport parent;
	HealerLinkDecoder *decoder;
	GQueue to_host; /* GBytes: frames on their way to the host, in order */
	guint deliver;

	/* The device. */
	guint16 max_data;
	guint8 window;
	GByteArray *staged;
	guint32 size;    /* of the transfer in progress */
	guint32 next;    /* bytes received in order */
	guint32 durable; /* bytes of staged kept across a round (whole blocks, or all) */
	gboolean active;
	GBytes *expected; /* the module the test sends: FINISH compares against it */

	/* The script: which DATA frames are lost. */
	gboolean (*drop)(gpointer script, guint n, guint32 offset, gsize len, guint32 size);
	gpointer script;
	guint lose_describes;         /* DESCRIBE requests after the first FINISH (the reset's) lost this many times */
	const HealerLinkHello *hello; /* when set, its id and platform in every HELLO (mode stays safe) */
	const char *describe;         /* when set, the describe it answers (else an empty one) */
	const char *describe_after;   /* when set, the describe it answers once a module went in */

	/* What happened. */
	guint data_frames, begins, finishes, incomplete, describes_lost, hello_requests;
	guint finish_before_last_ack; /* FINISHes that arrived before the host could have seen the last ACK */
	gboolean last_ack_delivered;
	guint16 min_payload, max_payload;
	GArray *payloads; /* guint16: every DATA payload the device took, in order */
} ScriptedDevice;

static void scripted_queue(ScriptedDevice *dev, GBytes *frame);

static gboolean
scripted_deliver(gpointer user_data)
{
	ScriptedDevice *dev = user_data;
	g_autoptr(HealerLinkDecoder) decoder = healer_link_decoder_new();

	dev->deliver = 0;
	while (!g_queue_is_empty(&dev->to_host)) {
		g_autoptr(GBytes) bytes = g_queue_pop_head(&dev->to_host);
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(bytes, &len);
		g_autoptr(GPtrArray) frames = healer_link_decoder_push(decoder, data, len);

		for (guint i = 0; i < frames->len; i++) {
			HealerLinkFrame *f = g_ptr_array_index(frames, i);
			guint32 acked = 0;
			if (f->frame.type == LINK_ACK && healer_link_parse_ack(&f->frame, &acked, NULL) &&
			    acked == dev->size)
				dev->last_ack_delivered = TRUE;
			/* May send more frames: they queue behind the ones still to come, as on the line. */
			dev->parent.callbacks.frame(&dev->parent, &f->frame, dev->parent.user_data);
		}
	}
	return G_SOURCE_REMOVE;
}

static void
scripted_queue(ScriptedDevice *dev, GBytes *frame)
{
	g_queue_push_tail(&dev->to_host, frame);
	if (dev->deliver == 0)
		dev->deliver = g_idle_add(scripted_deliver, dev);
}

static void
scripted_hello(ScriptedDevice *dev, guint8 reset_reason)
{
	HealerLinkHello hello = {
	        .protocol_version = LINK_PROTOCOL_VERSION,
	        .mode = LINK_MODE_SAFE,
	        .safe_mode_reason = LINK_SAFE_MODE_DEPENDENCIES,
	        .reset_reason = reset_reason,
	        .led = LINK_LED_BREATHING_MAGENTA,
	        .window = dev->window,
	        .platform_id = 3,
	        .max_data = dev->max_data,
	};

	if (dev->hello != NULL) {
		memcpy(hello.device_id, dev->hello->device_id, sizeof hello.device_id);
		hello.platform_id = dev->hello->platform_id;
	}
	scripted_queue(dev, healer_link_build_hello(&hello));
}

/* What the firmware does (device-firmware/system/update.c), reduced to offsets. */
static void
scripted_request(ScriptedDevice *dev, const link_frame_t *f)
{
	static const char describe[] = "{\"p\":3,\"m\":[]}";
	const char *text = dev->finishes > 0 && dev->describe_after ? dev->describe_after : dev->describe;
	guint32 offset;
	gsize len;
	guint16 payload;

	switch (f->type) {
	case LINK_HELLO_REQUEST:
		dev->hello_requests++;
		scripted_hello(dev, LINK_RESET_POWER_ON);
		break;
	case LINK_DESCRIBE:
		if (dev->finishes > 0 && dev->lose_describes > 0) {
			dev->lose_describes--;
			dev->describes_lost++;
			break;
		}
		if (text != NULL)
			scripted_queue(dev, healer_link_build_describe_reply(text, strlen(text), NULL));
		else
			scripted_queue(dev, healer_link_build_describe_reply(describe, sizeof describe - 1, NULL));
		break;
	case LINK_BEGIN: {
		HealerLinkBegin begin;
		g_assert_true(healer_link_parse_begin(f, &begin, NULL));
		dev->begins++;
		if (begin.size != dev->size) {
			dev->size = begin.size;
			dev->durable = 0;
			g_byte_array_set_size(dev->staged, 0);
		}
		/* Resume from the whole blocks it holds, as the firmware's progress marks say. */
		dev->next = dev->durable;
		dev->active = TRUE;
		scripted_queue(dev, healer_link_build_update_ready(0, dev->next, MIN(begin.max_data, dev->max_data),
		                                                   dev->window));
		break;
	}
	case LINK_DATA:
		g_assert_cmpuint(f->body_len, >, LINK_DATA_HEADER_SIZE);
		offset = (guint32)f->body[0] | (guint32)f->body[1] << 8 | (guint32)f->body[2] << 16 |
		         (guint32)f->body[3] << 24;
		len = f->body_len - LINK_DATA_HEADER_SIZE;
		g_assert_cmpuint(len, <=, dev->max_data);
		dev->data_frames++;
		if (dev->drop != NULL && dev->drop(dev->script, dev->data_frames - 1, offset, len, dev->size))
			break;
		g_assert_true(dev->active);
		if (offset == dev->next) {
			g_assert_cmpuint(offset + len, <=, dev->size);
			g_byte_array_set_size(dev->staged, offset);
			g_byte_array_append(dev->staged, f->body + LINK_DATA_HEADER_SIZE, (guint)len);
			dev->next += (guint32)len;
			dev->durable = dev->next == dev->size ? dev->size : dev->next / SCRIPT_BLOCK * SCRIPT_BLOCK;
			payload = (guint16)len;
			dev->min_payload = MIN(dev->min_payload, payload);
			dev->max_payload = MAX(dev->max_payload, payload);
			g_array_append_val(dev->payloads, payload);
		}
		scripted_queue(dev, healer_link_build_ack(dev->next));
		break;
	case LINK_FINISH:
		dev->finishes++;
		if (!dev->last_ack_delivered)
			dev->finish_before_last_ack++;
		if (dev->next != dev->size) {
			/* Like the firmware: the transfer ends, what it staged stays. */
			dev->incomplete++;
			dev->active = FALSE;
			scripted_queue(dev, healer_link_build_update_result(LINK_ERROR_INCOMPLETE));
			break;
		}
		/* No module expected: a device under the engine takes whatever it is sent. */
		if (dev->expected != NULL)
			g_assert_cmpmem(dev->staged->data, dev->staged->len, g_bytes_get_data(dev->expected, NULL),
			                g_bytes_get_size(dev->expected));
		dev->active = FALSE;
		scripted_queue(dev, healer_link_build_update_result(0));
		scripted_hello(dev, LINK_RESET_UPDATE);
		break;
	default:
		break;
	}
}

static void
scripted_send(HealerTransport *transport, GBytes *frame)
{
	ScriptedDevice *dev = (ScriptedDevice *)transport;
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(frame, &len);
	g_autoptr(GPtrArray) frames = healer_link_decoder_push(dev->decoder, data, len);

	for (guint i = 0; i < frames->len; i++)
		scripted_request(dev, &((HealerLinkFrame *)g_ptr_array_index(frames, i))->frame);
}

/* The HealerDevice is done with it: nothing more goes to the host.  The test frees the device after its checks. */
static void
scripted_close(HealerTransport *transport)
{
	ScriptedDevice *dev = (ScriptedDevice *)transport;

	if (dev->deliver != 0)
		g_source_remove(dev->deliver);
	dev->deliver = 0;
	g_queue_clear_full(&dev->to_host, (GDestroyNotify)g_bytes_unref);
}

static void
scripted_device_free(ScriptedDevice *dev)
{
	healer_link_decoder_free(dev->decoder);
	g_byte_array_unref(dev->staged);
	g_array_unref(dev->payloads);
	g_clear_pointer(&dev->expected, g_bytes_unref);
	g_free(dev);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ScriptedDevice, scripted_device_free)

static const char *
scripted_label(HealerTransport *transport)
{
	(void)transport;
	return "scripted";
}

static const HealerTransportOps scripted_ops = {
        .send = scripted_send,
        .close = scripted_close,
        .label = scripted_label,
};

typedef struct {
	GMainLoop *loop;
	gboolean identified, done;
	GError *error;
} Install;

static void
on_scripted_identified(HealerDevice *device, gpointer user_data)
{
	Install *in = user_data;

	(void)device;
	if (!in->identified) {
		in->identified = TRUE;
		g_main_loop_quit(in->loop);
	}
}

static void
on_scripted_installed(HealerDevice *device, const GError *error, gpointer user_data)
{
	Install *in = user_data;

	(void)device;
	in->done = TRUE;
	in->error = error != NULL ? g_error_copy(error) : NULL;
	g_main_loop_quit(in->loop);
}

/*
 * What a test changes beyond the dropped frames: a response timeout that fires (0: far beyond the test's
 * run, so the transfer must get through on its frames alone), describes lost after the reset.
 */
typedef struct {
	guint response_timeout_ms;
	guint lose_describes;
} ScriptedOptions;

/* Installs a module of `size` random bytes through HealerDevice; the device (still attached) is returned. */
static ScriptedDevice *
scripted_install_with(guint32 size, gboolean (*drop)(gpointer, guint, guint32, gsize, guint32), gpointer script,
                      const ScriptedOptions *options, GError **error)
{
	HealerLinkTimeouts timeouts = {
	        .response_timeout_ms = options->response_timeout_ms ? options->response_timeout_ms : 600000,
	        .reset_timeout_ms = 600000,
	};
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(GRand) rand = g_rand_new_with_seed(size);
	ScriptedDevice *dev = g_new0(ScriptedDevice, 1);
	Install in = {.loop = loop};
	g_autoptr(HealerLinkDevice) device = NULL;
	HealerDeviceModule m = {.function = MODULE_FUNCTION_SYSTEM_PART, .index = 1, .version = 1100};
	guint8 *module = g_malloc(size);

	for (guint32 i = 0; i < size; i++)
		module[i] = (guint8)g_rand_int(rand);
	dev->parent.ops = &scripted_ops;
	dev->decoder = healer_link_decoder_new();
	g_queue_init(&dev->to_host);
	dev->max_data = HEALER_LINK_MAX_DATA_PAYLOAD;
	dev->window = 8;
	dev->staged = g_byte_array_new();
	dev->payloads = g_array_new(FALSE, FALSE, sizeof(guint16));
	dev->min_payload = G_MAXUINT16;
	dev->expected = g_bytes_new_take(module, size);
	dev->drop = drop;
	dev->script = script;
	dev->lose_describes = options->lose_describes;
	/* The first frame of a device that just booted. */
	scripted_hello(dev, LINK_RESET_POWER_ON);
	device = healer_link_device_new("scripted", "scripted", "scripted", &dev->parent, &timeouts);
	g_signal_connect(device, "identified", G_CALLBACK(on_scripted_identified), &in);
	g_main_loop_run(loop);
	g_assert_true(in.identified);

	m.bytes = dev->expected;
	healer_device_install_async(HEALER_DEVICE(device), &m, on_scripted_installed, &in);
	while (!in.done)
		g_main_loop_run(loop);
	if (in.error != NULL)
		g_propagate_error(error, in.error);
	return dev;
}

static ScriptedDevice *
scripted_install(guint32 size, gboolean (*drop)(gpointer, guint, guint32, gsize, guint32), gpointer script,
                 GError **error)
{
	static const ScriptedOptions defaults = {0};

	return scripted_install_with(size, drop, script, &defaults, error);
}

/* A clean line: frames of the whole negotiated size, and FINISH right behind the last one. */
static void
test_transfer_pipelined_finish(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ScriptedDevice) dev = scripted_install(50000, NULL, NULL, &error);

	g_assert_no_error(error);
	g_assert_cmpuint(dev->begins, ==, 1);
	g_assert_cmpuint(dev->finishes, ==, 1);
	g_assert_cmpuint(dev->finish_before_last_ack, ==, 1);
	g_assert_cmpuint(dev->max_payload, ==, HEALER_LINK_MAX_DATA_PAYLOAD);
	/* 24 whole frames and the rest: nothing was sent twice. */
	g_assert_cmpuint(dev->data_frames, ==,
	                 (50000 + HEALER_LINK_MAX_DATA_PAYLOAD - 1) / HEALER_LINK_MAX_DATA_PAYLOAD);
}

/* Drops the frame holding the module's last byte, the first `n` times it is sent. */
static gboolean
drop_last_frame(gpointer script, guint n, guint32 offset, gsize len, guint32 size)
{
	guint *left = script;

	(void)n;
	if (offset + len != size || *left == 0)
		return FALSE;
	(*left)--;
	return TRUE;
}

/*
 * The last frame is lost: FINISH, already on its way behind it, is answered -104; BEGIN again resumes from
 * the device's last whole block and the module goes in.
 */
static void
test_transfer_resume_after_incomplete(void)
{
	g_autoptr(GError) error = NULL;
	guint drops = 2;
	g_autoptr(ScriptedDevice) dev = scripted_install(50000, drop_last_frame, &drops, &error);

	g_assert_no_error(error);
	g_assert_cmpuint(drops, ==, 0);
	g_assert_cmpuint(dev->incomplete, ==, 2);
	g_assert_cmpuint(dev->begins, ==, 3);
	g_assert_cmpuint(dev->finishes, ==, 3);
}

/* A link that never carries the last frame: the install fails, with a reason, after a bounded number of rounds. */
static void
test_transfer_incomplete_gives_up(void)
{
	g_autoptr(GError) error = NULL;
	guint drops = G_MAXUINT;
	g_autoptr(ScriptedDevice) dev = scripted_install(50000, drop_last_frame, &drops, &error);

	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "transfer incomplete: 6 rounds in a row"));
	/* Rounds that got a block further (smaller frames carry more before the last one) start the count again. */
	g_assert_cmpuint(dev->begins, >=, 6);
	g_assert_cmpuint(dev->begins, <=, 12);
	g_assert_cmpuint(dev->incomplete, ==, dev->begins);
}

/* Drops the frames at the offsets in the script (each once). */
typedef struct {
	guint32 offsets[8];
	guint n;
	guint dropped;
} DropAt;

static gboolean
drop_at(gpointer script, guint n, guint32 offset, gsize len, guint32 size)
{
	DropAt *d = script;

	(void)n;
	(void)len;
	(void)size;
	for (guint i = 0; i < d->n; i++) {
		if (d->offsets[i] == offset) {
			d->offsets[i] = G_MAXUINT32;
			d->dropped++;
			return TRUE;
		}
	}
	return FALSE;
}

/*
 * Losses halve the DATA size (down to 64 bytes), a run of clean ACKs doubles it back: five losses at the
 * start, where each resent frame is the next to go, take it to the floor; the rest of the module climbs
 * back to the negotiated size.
 */
static void
test_transfer_adaptive_size(void)
{
	g_autoptr(GError) error = NULL;
	/* The frame at 0 five times: each go-back resends from 0 (at half the size), and that frame is lost again. */
	DropAt script = {.offsets = {0, 0, 0, 0, 0}, .n = 5};
	g_autoptr(ScriptedDevice) dev = NULL;
	guint16 last;

	dev = scripted_install(120000, drop_at, &script, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(script.dropped, ==, 5);
	g_assert_cmpuint(dev->min_payload, ==, 64);
	g_assert_cmpuint(g_array_index(dev->payloads, guint16, 0), ==, 64);
	last = g_array_index(dev->payloads, guint16, dev->payloads->len - 2);
	g_assert_cmpuint(last, ==, HEALER_LINK_MAX_DATA_PAYLOAD);
	g_assert_cmpuint(dev->begins, ==, 1);
}

/* Drops the DATA frames numbered [first, first + count) as sent: a whole window lost, so no ACK comes back. */
typedef struct {
	guint first, count, dropped;
} DropRun;

static gboolean
drop_run(gpointer script, guint n, guint32 offset, gsize len, guint32 size)
{
	DropRun *d = script;

	(void)offset;
	(void)len;
	(void)size;
	if (n < d->first || n >= d->first + d->count)
		return FALSE;
	d->dropped++;
	return TRUE;
}

/*
 * A response timeout for the tests that need the retry interval (a quarter of it) to fire: 4 s, 40 s under
 * valgrind, whose slowdown could otherwise leave a retry interval without one frame handled and run
 * through the retry limits.  A needless retry only resends, which changes nothing the tests assert.
 */
static guint
firing_timeout_ms(void)
{
	return g_getenv("HEALER_UNDER_VALGRIND") != NULL ? 40000 : 4000;
}

/*
 * A whole window lost mid-module: the device says nothing (no duplicate ACK), so only the retry interval
 * notices, and the host goes back to the acknowledged offset rather than give up (mutation testing:
 * device-no-resend-on-silence).
 */
static void
test_transfer_silence_goes_back(void)
{
	g_autoptr(GError) error = NULL;
	/* Frames 8..15: the second window of 8, after the first window's ACKs came back. */
	DropRun script = {.first = 8, .count = 8};
	ScriptedOptions options = {.response_timeout_ms = firing_timeout_ms()};
	g_autoptr(ScriptedDevice) dev = scripted_install_with(50000, drop_run, &script, &options, &error);

	g_assert_no_error(error);
	g_assert_cmpuint(script.dropped, ==, 8);
	/* Went back within the transfer: no second BEGIN, and the device holds the module (checked at FINISH). */
	g_assert_cmpuint(dev->begins, ==, 1);
	g_assert_cmpuint(dev->finishes, ==, 1);
	g_assert_cmpuint(dev->incomplete, ==, 0);
}

/* Drops every frame at `offset` until `left` runs out. */
typedef struct {
	guint32 offset;
	guint left, dropped;
} DropAlways;

static gboolean
drop_always(gpointer script, guint n, guint32 offset, gsize len, guint32 size)
{
	DropAlways *d = script;

	(void)n;
	(void)len;
	(void)size;
	if (offset != d->offset || d->left == 0)
		return FALSE;
	d->left--;
	d->dropped++;
	return TRUE;
}

/*
 * The frame at one offset lost every time (the device alive, answering each later frame with a duplicate
 * ACK): the host gives up after 32 go-backs rather than resend forever (mutation testing:
 * device-gap-limit).  The script stops dropping after 200, so a host without the limit ends the install
 * successfully instead of hanging the test.
 */
static void
test_transfer_gap_limit(void)
{
	g_autoptr(GError) error = NULL;
	DropAlways script = {.offset = 0, .left = 200};
	g_autoptr(ScriptedDevice) dev = scripted_install(50000, drop_always, &script, &error);

	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "the frame at 0 of 50000 bytes was lost 32 times in a row"));
	/* The first loss and 32 go-backs, each losing the frame again. */
	g_assert_cmpuint(script.dropped, ==, 33);
	g_assert_cmpuint(dev->finishes, ==, 0);
}

/*
 * The describe after the reset lost on the line: the host asks again at the retry interval rather than
 * fail the step (mutation testing: device-describe-retry).
 */
static void
test_transfer_describe_retried(void)
{
	g_autoptr(GError) error = NULL;
	ScriptedOptions options = {.response_timeout_ms = firing_timeout_ms(), .lose_describes = 2};
	g_autoptr(ScriptedDevice) dev = scripted_install_with(20000, NULL, NULL, &options, &error);

	g_assert_no_error(error);
	g_assert_cmpuint(dev->describes_lost, ==, 2);
	g_assert_cmpuint(dev->finishes, ==, 1);
}

/* A scripted device for the engine: answers with `hello`'s id and `describe` until a module went in, then
 * `describe_after`. */
static ScriptedDevice *
scripted_device_new(const HealerLinkHello *hello, const char *describe, const char *describe_after)
{
	ScriptedDevice *dev = g_new0(ScriptedDevice, 1);

	dev->parent.ops = &scripted_ops;
	dev->decoder = healer_link_decoder_new();
	g_queue_init(&dev->to_host);
	dev->max_data = HEALER_LINK_MAX_DATA_PAYLOAD;
	dev->window = 8;
	dev->staged = g_byte_array_new();
	dev->payloads = g_array_new(FALSE, FALSE, sizeof(guint16));
	dev->min_payload = G_MAXUINT16;
	dev->hello = hello;
	dev->describe = describe;
	dev->describe_after = describe_after;
	scripted_hello(dev, LINK_RESET_POWER_ON);
	return dev;
}

/* The HELLO and describe of a real device (healer-sim) running `release` and `app`. */
static char *
sim_describe_of(const char *name, const char *release, const char *app, HealerLinkHello *hello)
{
	g_autofree char *dir = g_build_filename(tmpdir, name, NULL);
	g_autofree char *link = g_build_filename(dir, "link", NULL);
	const char *args[] = {"--release", release, "--app", app, "--link", link, NULL};
	g_autoptr(SimDevice) sim = sim_device_start(dir, args);
	g_autoptr(HealerDescribe) describe = NULL;
	char *json = NULL;

	sim_device_wait_hello(sim, hello, 10000);
	describe = sim_device_describe(sim, &json);
	g_assert_nonnull(describe);
	return json;
}

/*
 * Heals (flash_app of the app it has) a scripted device that takes every module sent, with the engine
 * giving up at the first failure; returns the heal's error.
 */
static GError *
engine_heal_scripted(const char *name, const HealerLinkHello *hello, const char *describe, const char *describe_after,
                     ScriptedDevice **dev_out)
{
	g_autofree char *dir = g_build_filename(tmpdir, name, NULL);
	g_autofree char *state = g_build_filename(dir, "state", NULL);
	g_autofree char *ports_glob = g_build_filename(dir, "no-ports", "*", NULL);
	g_autofree char *app = g_build_filename(test_program("HEALER_FIRMWARE_MODULES"), "apps", "heartbeat.bin", NULL);
	g_autofree char *id = sim_hello_id(hello);
	g_autoptr(HealerConfig) config = healer_config_new_defaults();
	g_autoptr(HealerStore) store = NULL;
	g_autoptr(HealerSupply) supply = NULL;
	g_autoptr(HealerEngine) engine = NULL;
	g_autoptr(HealerSerialBackend) serial = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(GError) error = NULL;
	Outcome outcome = {.loop = loop};
	ScriptedDevice *dev = scripted_device_new(hello, describe, describe_after);
	gint64 deadline;
	guint timeout;

	g_free(config->state_dir);
	config->state_dir = g_strdup(state);
	g_strfreev(config->serial_ports);
	config->serial_ports = g_strsplit(ports_glob, "\n", -1);
	g_strfreev(config->module_dirs);
	config->module_dirs = g_strsplit(test_program("HEALER_FIRMWARE_MODULES"), "\n", -1);
	config->auto_heal = FALSE;
	config->max_attempts = 1;
	store = healer_store_open(state, &error);
	g_assert_no_error(error);
	healer_store_import_directory(store, config->module_dirs[0], NULL, &error);
	g_assert_no_error(error);
	supply = healer_supply_new(config, store, NULL);
	engine = healer_engine_new(config, supply);
	serial = healer_serial_backend_new(config);
	healer_engine_add_backend(engine, HEALER_BACKEND(serial));
	healer_engine_start(engine);
	healer_serial_backend_attach_transport(serial, "scripted", &dev->parent);

	deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	while (!healer_engine_flash_app(engine, id, app, on_done, &outcome, &error)) {
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
		g_clear_error(&error);
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, TRUE);
	}
	timeout = g_timeout_add_seconds(120, on_timeout, NULL);
	if (!outcome.done)
		g_main_loop_run(loop);
	g_source_remove(timeout);
	g_clear_pointer(&engine, healer_engine_free);
	while (g_main_context_iteration(NULL, FALSE))
		;
	*dev_out = dev;
	return outcome.error;
}

/*
 * The first frame on the line is a describe reply no HELLO came before: an answer to an earlier
 * program's question (healerctl probe exits once it knows enough).  The device must still be asked
 * for its HELLO and identified, not left waiting with no question pending (the package test's smoke
 * test hung on this).
 */
static void
test_link_describe_before_hello(void)
{
	static const char describe[] = "{\"p\":3,\"m\":[]}";
	HealerLinkTimeouts timeouts = {.response_timeout_ms = 600000, .reset_timeout_ms = 600000};
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(ScriptedDevice) dev = scripted_device_new(NULL, NULL, NULL);
	g_autoptr(HealerLinkDevice) device = NULL;
	Install in = {.loop = loop};
	guint deadline;

	/* Not the boot HELLO scripted_device_new() queued: only the stale reply is on the line. */
	g_queue_clear_full(&dev->to_host, (GDestroyNotify)g_bytes_unref);
	g_source_remove(dev->deliver);
	dev->deliver = 0;
	scripted_queue(dev, healer_link_build_describe_reply(describe, sizeof describe - 1, NULL));
	device = healer_link_device_new("scripted", "scripted", "scripted", &dev->parent, &timeouts);
	g_signal_connect(device, "identified", G_CALLBACK(on_scripted_identified), &in);
	/* A bound for a hang, not a timing check: the first HELLO_REQUEST goes out after 1 s. */
	deadline = g_timeout_add_seconds(60, on_timeout, (gpointer) "the device was not identified in time");
	g_main_loop_run(loop);
	g_source_remove(deadline);
	g_assert_true(in.identified);
	g_assert_cmpuint(dev->hello_requests, >=, 1);
	g_assert_nonnull(healer_link_device_get_hello(device));
	g_clear_object(&device);
}

/*
 * A device that acknowledges every module but keeps running what it ran: the first step did not take
 * effect, and the heal fails there, not later (mutation testing: engine-step-took-effect).
 */
static void
test_engine_step_must_take_effect(void)
{
	HealerLinkHello hello;
	g_autofree char *before = sim_describe_of("lies-before", "1.0.0", "heartbeat", &hello);
	g_autoptr(ScriptedDevice) dev = NULL;
	g_autoptr(GError) error = engine_heal_scripted("lies", &hello, before, NULL, &dev);

	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "did not take effect (gave up after 1 attempts)"));
	g_assert_cmpuint(dev->finishes, ==, 1);
}

/*
 * A device that takes every module (its describe shows them) but stays in safe mode: the heal is not
 * called a success (mutation testing: engine-app-runs).
 */
static void
test_engine_app_must_run(void)
{
	HealerLinkHello hello, after_hello;
	g_autofree char *before = sim_describe_of("stuck-before", "1.0.0", "heartbeat", &hello);
	g_autofree char *after = sim_describe_of("stuck-after", "1.1.0", "heartbeat", &after_hello);
	g_autoptr(ScriptedDevice) dev = NULL;
	g_autoptr(GError) error = engine_heal_scripted("stuck", &hello, before, after, &dev);

	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "every module is installed but the application does not run"));
	g_assert_cmpuint(dev->finishes, >=, 2);
}

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	healer_journal_setup(G_LOG_LEVEL_INFO);
	tmpdir = test_tmpdir_new();
	g_test_add_func("/engine/flash-app-never-safe-mode", test_flash_app_never_safe_mode);
	g_test_add_data_func("/engine/heal-job-file", GINT_TO_POINTER(FALSE), test_heal_job_file);
	g_test_add_data_func("/engine/heal-job-file-unwritable", GINT_TO_POINTER(TRUE), test_heal_job_file);
	g_test_add_func("/engine/transfer/pipelined-finish", test_transfer_pipelined_finish);
	g_test_add_func("/engine/transfer/resume-after-incomplete", test_transfer_resume_after_incomplete);
	g_test_add_func("/engine/transfer/incomplete-gives-up", test_transfer_incomplete_gives_up);
	g_test_add_func("/engine/transfer/adaptive-size", test_transfer_adaptive_size);
	g_test_add_func("/engine/transfer/silence-goes-back", test_transfer_silence_goes_back);
	g_test_add_func("/engine/transfer/gap-limit", test_transfer_gap_limit);
	g_test_add_func("/engine/transfer/describe-retried", test_transfer_describe_retried);
	g_test_add_func("/engine/link/describe-before-hello", test_link_describe_before_hello);
	g_test_add_func("/engine/step-must-take-effect", test_engine_step_must_take_effect);
	g_test_add_func("/engine/app-must-run", test_engine_app_must_run);
	rc = g_test_run();
	test_tmpdir_free(tmpdir);
	return rc;
}
