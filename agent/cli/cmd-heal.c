/*
 *   healerctl heal ID|--all [--no-wait] [--json]
 *   healerctl flash ID APP.bin [--no-wait] [--json]
 *
 * Starts heals (Heal, HealAll) or an application install (FlashApp) and,
 * unless --no-wait, follows HealProgress and HealFinished until every
 * device started has finished: progress bars redrawn in place on a
 * terminal, plain lines when they change otherwise, one JSON object at the
 * end with --json.  Exit 0 when every one succeeded, 1 when any failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli-options.h"
#include "client.h"
#include "healer-error.h"
#include "printable.h"
#include "healerctl.h"
#include "json-autoptr.h"

typedef struct {
	char *id;
	guint step, steps, progress;
	char *module;
	gboolean started; /* a HealProgress arrived */
	gboolean finished, success;
	char *message;
	/* plain output: the last line printed */
	gboolean printed;
	guint printed_step, printed_progress;
} Track;

static void
track_free(Track *t)
{
	g_free(t->id);
	g_free(t->module);
	g_free(t->message);
	g_free(t);
}

typedef enum {
	OUTPUT_TERMINAL,
	OUTPUT_PLAIN,
	OUTPUT_JSON,
} Output;

typedef struct {
	HealerctlClient *client;
	const char *done_word; /* "healed", "installed" */
	Output output;
	GHashTable *by_id; /* id -> Track*: every device a signal named */
	GPtrArray *order;  /* Track* followed, in the order started (not owned) */
	guint lines_drawn;
	gboolean dirty;
	gboolean done, daemon_gone, interrupted;
} Follow;

static Track *
follow_track(Follow *f, const char *id)
{
	Track *t = g_hash_table_lookup(f->by_id, id);

	if (t == NULL) {
		t = g_new0(Track, 1);
		t->id = g_strdup(id);
		g_hash_table_insert(f->by_id, t->id, t);
	}
	return t;
}

static gboolean
is_followed(Follow *f, Track *t)
{
	for (guint i = 0; i < f->order->len; i++) {
		if (g_ptr_array_index(f->order, i) == t)
			return TRUE;
	}
	return FALSE;
}

static void
follow_add(Follow *f, const char *id)
{
	Track *t = follow_track(f, id);

	if (!is_followed(f, t))
		g_ptr_array_add(f->order, t);
}

static guint
terminal_columns(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

/*
 * "step 2/5 system-part 2 v1203 (1.2.0)", "healed: ...", "FAILED: why", "starting"; escaped, since
 * healerd's messages may hold what a device sent.
 */
static char *
track_text(const Follow *f, const Track *t)
{
	g_autofree char *text = NULL;

	if (t->finished && t->success)
		text = g_strdup_printf("%s%s%s", f->done_word, t->message && *t->message ? ": " : "",
		                       t->message ? t->message : "");
	else if (t->finished)
		text = g_strdup_printf("FAILED: %s", t->message ? t->message : "");
	else if (!t->started)
		text = g_strdup("starting");
	else
		text = g_strdup_printf("step %u/%u %s", t->step, t->steps, t->module ? t->module : "");
	return healerctl_printable(text);
}

static void
draw_terminal(Follow *f)
{
	guint columns = terminal_columns();
	/* Narrow terminals: a shorter bar, and ids cut to 12 digits (healerctl takes such prefixes). */
	guint bar_width = columns >= 120 ? 30 : columns >= 100 ? 20 : 10;
	int id_width = columns >= 100 ? 24 : 12;

	if (f->lines_drawn > 0)
		printf("\033[%uA", f->lines_drawn);
	for (guint i = 0; i < f->order->len; i++) {
		Track *t = g_ptr_array_index(f->order, i);
		guint progress = t->finished && t->success ? 100 : MIN(t->progress, 100);
		guint filled = progress * bar_width / 100;
		g_autofree char *text = track_text(f, t);
		g_autoptr(GString) line = g_string_new(NULL);
		const char *colour = t->finished ? (t->success ? "\033[32m" : "\033[31m") : "";

		g_string_append_printf(line, "%.*s  [", id_width, t->id);
		for (guint c = 0; c < bar_width; c++)
			g_string_append_c(line, c < filled ? '#' : '.');
		g_string_append_printf(line, "] %3u%%  %s", progress, text);
		if (line->len > columns - 1)
			g_string_truncate(line, columns - 1);
		printf("\r\033[2K%s%s%s\n", colour, line->str, *colour ? "\033[0m" : "");
	}
	f->lines_drawn = f->order->len;
	f->dirty = FALSE;
	fflush(stdout);
}

/* Plain lines: when the step changes, every 10 points of progress, and at the end. */
static void
print_plain(const Follow *f, Track *t)
{
	g_autofree char *text = track_text(f, t);

	if (t->finished) {
		printf("%s: %s\n", t->id, text);
	} else if (t->started &&
	           (!t->printed || t->step != t->printed_step || t->progress >= t->printed_progress + 10 ||
	            (t->progress == 100 && t->printed_progress != 100))) {
		printf("%s: %s %u%%\n", t->id, text, t->progress);
		t->printed = TRUE;
		t->printed_step = t->step;
		t->printed_progress = t->progress;
	} else {
		return;
	}
	fflush(stdout);
}

static void
follow_check_done(Follow *f)
{
	if (f->daemon_gone || f->interrupted) {
		f->done = TRUE;
		return;
	}
	for (guint i = 0; i < f->order->len; i++) {
		if (!((Track *)g_ptr_array_index(f->order, i))->finished)
			return;
	}
	f->done = TRUE;
}

static void
on_heal_progress(HealerDBusHealer1 *manager, const char *device_id, guint step, guint steps, const char *module,
                 guint progress, gpointer user_data)
{
	Follow *f = user_data;
	Track *t = follow_track(f, device_id);
	gboolean step_changed = t->step != step;

	(void)manager;
	if (t->finished)
		return;
	t->started = TRUE;
	t->step = step;
	t->steps = steps;
	t->progress = progress;
	g_free(t->module);
	t->module = g_strdup(module);
	if (!is_followed(f, t))
		return;
	if (f->output == OUTPUT_PLAIN)
		print_plain(f, t);
	else if (f->output == OUTPUT_TERMINAL && step_changed)
		draw_terminal(f);
	else
		f->dirty = TRUE;
}

static void
on_heal_finished(HealerDBusHealer1 *manager, const char *device_id, gboolean success, const char *message,
                 gpointer user_data)
{
	Follow *f = user_data;
	Track *t = follow_track(f, device_id);

	(void)manager;
	t->finished = TRUE;
	t->success = success;
	g_free(t->message);
	t->message = g_strdup(message);
	if (!is_followed(f, t))
		return;
	if (f->output == OUTPUT_PLAIN)
		print_plain(f, t);
	else if (f->output == OUTPUT_TERMINAL)
		draw_terminal(f);
	follow_check_done(f);
}

static void
on_name_owner(GObject *object, GParamSpec *pspec, gpointer user_data)
{
	Follow *f = user_data;
	g_autofree char *owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(object));

	(void)pspec;
	if (owner == NULL) {
		f->daemon_gone = TRUE;
		follow_check_done(f);
	}
}

static gboolean
on_interrupt(gpointer user_data)
{
	Follow *f = user_data;

	f->interrupted = TRUE;
	follow_check_done(f);
	return G_SOURCE_CONTINUE;
}

static gboolean
on_tick(gpointer user_data)
{
	Follow *f = user_data;

	if (f->dirty && f->output == OUTPUT_TERMINAL)
		draw_terminal(f);
	return G_SOURCE_CONTINUE;
}

static void
follow_init(Follow *f, HealerctlClient *client, const char *done_word, gboolean json)
{
	f->client = client;
	f->done_word = done_word;
	f->output = json ? OUTPUT_JSON : healerctl_stdout_is_terminal() ? OUTPUT_TERMINAL : OUTPUT_PLAIN;
	f->by_id = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)track_free);
	f->order = g_ptr_array_new();
	/* Before any call: a heal's first signals may come before its reply. */
	g_signal_connect(client->manager, "heal-progress", G_CALLBACK(on_heal_progress), f);
	g_signal_connect(client->manager, "heal-finished", G_CALLBACK(on_heal_finished), f);
	g_signal_connect(client->manager, "notify::g-name-owner", G_CALLBACK(on_name_owner), f);
}

static void
follow_clear(Follow *f)
{
	if (f->client != NULL && f->client->manager != NULL)
		g_signal_handlers_disconnect_by_data(f->client->manager, f);
	g_clear_pointer(&f->order, g_ptr_array_unref);
	g_clear_pointer(&f->by_id, g_hash_table_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Follow, follow_clear)

static int
follow_run(Follow *f, const char *verb)
{
	guint sigint, sigterm, tick = 0;
	guint failed = 0, healed = 0;

	sigint = g_unix_signal_add(SIGINT, on_interrupt, f);
	sigterm = g_unix_signal_add(SIGTERM, on_interrupt, f);
	if (f->output == OUTPUT_TERMINAL) {
		draw_terminal(f);
		tick = g_timeout_add(100, on_tick, f);
	}
	/* Signals that came while the call was in flight. */
	for (guint i = 0; i < f->order->len; i++) {
		Track *t = g_ptr_array_index(f->order, i);
		if (f->output == OUTPUT_PLAIN && (t->started || t->finished))
			print_plain(f, t);
	}
	follow_check_done(f);
	healerctl_iterate_until(&f->done);
	g_source_remove(sigint);
	g_source_remove(sigterm);
	if (tick != 0)
		g_source_remove(tick);
	if (f->output == OUTPUT_TERMINAL)
		draw_terminal(f);

	for (guint i = 0; i < f->order->len; i++) {
		Track *t = g_ptr_array_index(f->order, i);
		if (t->finished && t->success)
			healed++;
		else if (t->finished)
			failed++;
	}
	if (f->output == OUTPUT_JSON) {
		g_autoptr(json_object) o = json_object_new_object();
		json_object *started = json_object_new_array();
		json_object *results = json_object_new_array();
		for (guint i = 0; i < f->order->len; i++) {
			Track *t = g_ptr_array_index(f->order, i);
			json_object_array_add(started, json_object_new_string(t->id));
			if (!t->finished)
				continue;
			json_object *r = json_object_new_object();
			json_object_object_add(r, "id", json_object_new_string(t->id));
			json_object_object_add(r, "success", json_object_new_boolean(t->success));
			json_object_object_add(r, "message", json_object_new_string(t->message ? t->message : ""));
			json_object_array_add(results, r);
		}
		json_object_object_add(o, "started", started);
		json_object_object_add(o, "results", results);
		healerctl_print_json(o, TRUE);
	} else if (f->order->len > 1 && !f->interrupted && !f->daemon_gone) {
		printf("%u %s, %u failed\n", healed, f->done_word, failed);
	}
	fflush(stdout);
	if (f->daemon_gone) {
		fprintf(stderr,
		        "healerctl %s: healerd left the bus before the heal finished; it resumes unfinished heals when "
		        "it starts again (healerctl monitor follows them)\n",
		        verb);
		return HEALER_EXIT_NO_DAEMON;
	}
	if (f->interrupted) {
		fprintf(stderr,
		        "healerctl %s: stopped following; the heal goes on in healerd (healerctl monitor "
		        "follows it)\n",
		        verb);
		return 130;
	}
	if (failed > 0)
		fprintf(stderr,
		        "healerctl %s: %u device%s failed (healerctl device ID and journalctl -u healerd say why)\n",
		        verb, failed, failed == 1 ? "" : "s");
	return failed > 0 ? HEALER_EXIT_FAILED : HEALER_EXIT_OK;
}

static int
report_started(Follow *f, gboolean json)
{
	if (json) {
		g_autoptr(json_object) o = json_object_new_object();
		json_object *started = json_object_new_array();
		for (guint i = 0; i < f->order->len; i++)
			json_object_array_add(started,
			                      json_object_new_string(((Track *)g_ptr_array_index(f->order, i))->id));
		json_object_object_add(o, "started", started);
		healerctl_print_json(o, TRUE);
	} else {
		for (guint i = 0; i < f->order->len; i++)
			printf("%s: heal started\n", ((Track *)g_ptr_array_index(f->order, i))->id);
	}
	return HEALER_EXIT_OK;
}

/* ---- heal ---- */

static int
heal_all(HealerctlClient *client, Follow *f)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;
	g_autoptr(json_object) devices = NULL;
	g_auto(GStrv) started = NULL;

	/* Devices healing already (auto-heal) are followed too. */
	if (!healer_dbus_healer1_call_get_devices_sync(client->manager, &text, NULL, &error))
		return healerctl_fail(client, error);
	devices = healerctl_parse_json(client, "a device list", text);
	if (!healer_dbus_healer1_call_heal_all_sync(client->manager, &started, NULL, &error))
		return healerctl_fail(client, error);
	for (guint i = 0; started != NULL && started[i] != NULL; i++)
		follow_add(f, started[i]);
	for (size_t i = 0;
	     devices != NULL && json_object_is_type(devices, json_type_array) && i < json_object_array_length(devices);
	     i++) {
		json_object *dev = json_object_array_get_idx(devices, i);
		const char *id = healerctl_json_string(dev, "id", NULL);
		const char *state = healerctl_json_string(dev, "state", "");
		if (id == NULL)
			continue;
		if (g_str_equal(state, "healing"))
			follow_add(f, id);
		else if (g_str_equal(state, "blocked") && !is_followed(f, follow_track(f, id))) {
			g_autofree char *why = healerctl_printable(
			        healerctl_json_string(dev, "detail", healerctl_json_string(dev, "last_error", "")));
			fprintf(stderr, "healerctl heal: %s is blocked: %s (healerctl plan %s says why)\n", id, why,
			        id);
		}
	}
	return HEALER_EXIT_OK;
}

static int
heal_one(HealerctlClient *client, Follow *f, const char *id_arg)
{
	g_autoptr(HealerDBusHealer1Device) dev = NULL;
	g_autoptr(GError) error = NULL;
	int status;

	if ((dev = healerctl_client_find_device(client, id_arg, &status)) == NULL)
		return status;
	if (!healer_dbus_healer1_device_call_heal_sync(dev, NULL, &error)) {
		/* A heal of this device runs already (auto-heal): follow that one. */
		if (healerctl_error_exit_code(error) == HEALER_EXIT_BUSY &&
		    g_strcmp0(healer_dbus_healer1_device_get_state(dev), "healing") == 0) {
			fprintf(stderr, "healerctl heal: %s is healing already; following that heal\n",
			        healer_dbus_healer1_device_get_id(dev));
		} else {
			return healerctl_fail(client, error);
		}
	}
	follow_add(f, healer_dbus_healer1_device_get_id(dev));
	return HEALER_EXIT_OK;
}

int
healerctl_heal(int argc, char **argv)
{
	gboolean all = FALSE, no_wait = FALSE, json = FALSE;
	const GOptionEntry entries[] = {
	        {"all", 'a', 0, G_OPTION_ARG_NONE, &all, "Heal every device whose application needs modules it lacks",
	         NULL},
	        {"no-wait", 0, 0, G_OPTION_ARG_NONE, &no_wait, "Start the heals and return", NULL},
	        HEALERCTL_OPTION_JSON(&json, "Print the results as JSON (no progress)"),
	        HEALERCTL_BUS_OPTIONS,
	        HEALERCTL_OPTIONS_END,
	};
	g_auto(HealerctlClient) client = {0};
	g_auto(Follow) f = {0};
	int status;

	if ((status = healerctl_options_parse("heal", "ID|--all - heal devices now, and follow the heals",
	                                      "Needs root or group healer.  Exit status: 0 every heal succeeded, 1 one "
	                                      "failed, 2 usage, 3 no such device or no plan, 4 permission denied, 5 "
	                                      "healerd not running, 6 busy.",
	                                      entries, &argc, &argv)) != HEALER_EXIT_OK)
		return status;
	if ((all && argc != 1) || (!all && argc != 2))
		return healerctl_usage_error("heal", "give one device ID or --all (usage: healerctl heal ID|--all "
		                                     "[--no-wait] [--json])");
	if ((status = healerctl_client_connect(&client, "heal")) != HEALER_EXIT_OK)
		return status;
	follow_init(&f, &client, "healed", json);
	status = all ? heal_all(&client, &f) : heal_one(&client, &f, argv[1]);
	if (status != HEALER_EXIT_OK)
		return status;
	if (f.order->len == 0 && !json) {
		printf("nothing to heal: no device needs modules it lacks\n");
		return HEALER_EXIT_OK;
	}
	if (no_wait)
		return report_started(&f, json);
	return follow_run(&f, "heal");
}

/* ---- flash ---- */

int
healerctl_flash(int argc, char **argv)
{
	gboolean no_wait = FALSE, json = FALSE;
	const GOptionEntry entries[] = {
	        {"no-wait", 0, 0, G_OPTION_ARG_NONE, &no_wait, "Start the install and return", NULL},
	        HEALERCTL_OPTION_JSON(&json, "Print the result as JSON (no progress)"),
	        HEALERCTL_BUS_OPTIONS,
	        HEALERCTL_OPTIONS_END,
	};
	g_autoptr(GError) error = NULL;
	g_auto(HealerctlClient) client = {0};
	g_autoptr(HealerDBusHealer1Device) dev = NULL;
	g_auto(Follow) f = {0};
	g_autofree char *path = NULL;
	g_autoptr(GUnixFDList) fd_list = NULL;
	struct stat st;
	int status, fd;

	if ((status = healerctl_options_parse(
	             "flash",
	             "ID APP.bin - install an application, after the system modules it needs, and follow the install",
	             "healerctl opens APP.bin with your rights and passes it to healerd.  Needs root or group healer.  "
	             "Exit status as for heal.",
	             entries, &argc, &argv)) != HEALER_EXIT_OK)
		return status;
	if (argc != 3)
		return healerctl_usage_error("flash",
		                             "give a device ID and an application file (usage: healerctl flash ID "
		                             "APP.bin [--no-wait] [--json])");
	/*
	 * healerd reads what we open, with our rights, and nothing else (docs/dbus-api.md): the
	 * descriptor goes over the bus, the path only names it.  O_NONBLOCK: a FIFO does not hang us.
	 */
	path = g_canonicalize_filename(argv[2], NULL);
	fd = g_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
	if (fd < 0) {
		return healerctl_print_open_error("flash", path, errno);
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "healerctl flash: %s: not a regular file\n", path);
		close(fd);
		return HEALER_EXIT_USAGE;
	}
	fd_list = g_unix_fd_list_new_from_array(&fd, 1); /* takes the descriptor */
	if ((status = healerctl_client_connect(&client, "flash")) != HEALER_EXIT_OK)
		return status;
	if ((dev = healerctl_client_find_device(&client, argv[1], &status)) == NULL)
		return status;
	follow_init(&f, &client, "installed", json);
	if (!healer_dbus_healer1_device_call_flash_app_fd_sync(dev, g_variant_new_handle(0), path, fd_list, NULL, NULL,
	                                                       &error))
		return healerctl_fail(&client, error);
	follow_add(&f, healer_dbus_healer1_device_get_id(dev));
	if (no_wait)
		return report_started(&f, json);
	return follow_run(&f, "flash");
}
