#include "journal.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static gint max_level_bit = G_LOG_LEVEL_INFO; /* atomic: records above this bit are dropped */
static gboolean to_journal;

/* syslog priorities, as GLib's own writer maps them. */
static const char *
level_to_priority(GLogLevelFlags level)
{
	if (level & G_LOG_LEVEL_ERROR)
		return "3";
	if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
		return "4";
	if (level & G_LOG_LEVEL_MESSAGE)
		return "5";
	if (level & G_LOG_LEVEL_INFO)
		return "6";
	return "7";
}

static const char *
level_to_name(GLogLevelFlags level)
{
	if (level & G_LOG_LEVEL_ERROR)
		return "error";
	if (level & G_LOG_LEVEL_CRITICAL)
		return "critical";
	if (level & G_LOG_LEVEL_WARNING)
		return "warning";
	if (level & G_LOG_LEVEL_MESSAGE)
		return "notice";
	if (level & G_LOG_LEVEL_INFO)
		return "info";
	return "debug";
}

void
healer_journal_event_full(const char *code_file, const char *code_line, const char *code_func, const char *message_id,
                          const char *device_id, const char *port, const char *module, int step, GLogLevelFlags level,
                          const char *format, ...)
{
	g_autofree char *text = NULL;
	g_autofree char *message = NULL;
	char step_text[16];
	GLogField fields[11];
	gsize n = 0;
	va_list args;

	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	message = device_id != NULL ? g_strdup_printf("[%s] %s", device_id, text) : g_steal_pointer(&text);

	/* G_LOG_LEVEL_ERROR would abort the daemon over a log line. */
	if (level & G_LOG_LEVEL_ERROR)
		level = (level & ~G_LOG_LEVEL_ERROR) | G_LOG_LEVEL_CRITICAL;

	fields[n++] = (GLogField){"MESSAGE", message, -1};
	fields[n++] = (GLogField){"PRIORITY", level_to_priority(level), -1};
	fields[n++] = (GLogField){"GLIB_DOMAIN", HEALER_JOURNAL_DOMAIN, -1};
	fields[n++] = (GLogField){"CODE_FILE", code_file, -1};
	fields[n++] = (GLogField){"CODE_LINE", code_line, -1};
	fields[n++] = (GLogField){"CODE_FUNC", code_func, -1};
	if (message_id != NULL)
		fields[n++] = (GLogField){"MESSAGE_ID", message_id, -1};
	if (device_id != NULL)
		fields[n++] = (GLogField){"HEALER_DEVICE_ID", device_id, -1};
	if (port != NULL)
		fields[n++] = (GLogField){"HEALER_PORT", port, -1};
	if (module != NULL)
		fields[n++] = (GLogField){"HEALER_MODULE", module, -1};
	if (step >= 0) {
		g_snprintf(step_text, sizeof step_text, "%d", step);
		fields[n++] = (GLogField){"HEALER_STEP", step_text, -1};
	}
	g_log_structured_array(level, fields, n);
}

void
healer_journal_observe(const HealerEvent *event, gpointer user_data)
{
	(void)user_data;
	if (event->text == NULL)
		return;
	healer_journal_event_full(event->code_file, event->code_line, event->code_func,
	                          healer_event_kind_message_id(event->kind), event->device_id, event->port,
	                          event->module, event->step, event->priority, "%s", event->text);
}

static const char *
field_string(const GLogField *fields, gsize n_fields, const char *key, char **to_free)
{
	for (gsize i = 0; i < n_fields; i++) {
		if (strcmp(fields[i].key, key) != 0)
			continue;
		if (fields[i].length < 0)
			return fields[i].value;
		*to_free = g_strndup(fields[i].value, fields[i].length);
		return *to_free;
	}
	return NULL;
}

char *
healer_journal_format_line(GLogLevelFlags level, const GLogField *fields, gsize n_fields)
{
	g_autofree char *message_copy = NULL;
	g_autofree char *domain_copy = NULL;
	const char *message = field_string(fields, n_fields, "MESSAGE", &message_copy);
	const char *domain = field_string(fields, n_fields, "GLIB_DOMAIN", &domain_copy);
	GString *line = g_string_new(NULL);

	g_string_append_printf(line, "healerd[%s]: ", level_to_name(level));
	/* Records from libraries (GLib-GIO, ...) say where they come from. */
	if (domain != NULL && strcmp(domain, HEALER_JOURNAL_DOMAIN) != 0)
		g_string_append_printf(line, "%s: ", domain);
	g_string_append(line, message != NULL ? message : "(no message)");
	return g_string_free(line, FALSE);
}

static GLogWriterOutput
writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	guint bit = level & G_LOG_LEVEL_MASK;
	g_autofree char *line = NULL;

	(void)user_data;
	/* Fatal records are always written; others by level (lower bit = more severe). */
	if (!(level & G_LOG_FLAG_FATAL) && bit > (guint)g_atomic_int_get(&max_level_bit)) {
		g_autofree char *domain_copy = NULL;
		const char *domain = field_string(fields, n_fields, "GLIB_DOMAIN", &domain_copy);
		/* G_MESSAGES_DEBUG=all (or naming the domain) still shows debug records. */
		if (!(level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO)) || g_log_writer_default_would_drop(level, domain))
			return G_LOG_WRITER_HANDLED;
	}
	if (to_journal && g_log_writer_journald(level, fields, n_fields, NULL) == G_LOG_WRITER_HANDLED)
		return G_LOG_WRITER_HANDLED;
	line = healer_journal_format_line(level, fields, n_fields);
	fprintf(stderr, "%s\n", line);
	return G_LOG_WRITER_HANDLED;
}

void
healer_journal_setup(GLogLevelFlags max_level)
{
	static gsize installed = 0;
	guint bit = max_level & G_LOG_LEVEL_MASK;

	/* The least severe level asked for; "error" shows ERROR and CRITICAL. */
	if (bit == 0)
		bit = G_LOG_LEVEL_INFO;
	while (bit & (bit - 1))
		bit &= bit - 1;
	if (bit < G_LOG_LEVEL_CRITICAL)
		bit = G_LOG_LEVEL_CRITICAL;
	g_atomic_int_set(&max_level_bit, (gint)bit);

	if (g_once_init_enter(&installed)) {
		to_journal = g_log_writer_is_journald(fileno(stderr));
		g_log_set_writer_func(writer, NULL, NULL);
		g_once_init_leave(&installed, 1);
	}
}
