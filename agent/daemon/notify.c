#include "notify.h"

#include <systemd/sd-daemon.h>

void
healer_notify_ready(void)
{
	sd_notify(0, "READY=1");
}

void
healer_notify_status(const char *format, ...)
{
	g_autofree char *status = NULL;
	g_autofree char *line = NULL;
	va_list args;

	va_start(args, format);
	status = g_strdup_vprintf(format, args);
	va_end(args);
	/* One line: a newline would start another assignment. */
	g_strdelimit(status, "\n", ' ');
	line = g_strconcat("STATUS=", status, NULL);
	sd_notify(0, line);
}

void
healer_notify_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

void
healer_notify_observe(const HealerEvent *event, gpointer user_data)
{
	(void)user_data;
	switch (event->kind) {
	case HEALER_EVENT_STATUS:
		healer_notify_status("%s", event->reason != NULL ? event->reason : "");
		break;
	case HEALER_EVENT_DAEMON_READY:
		healer_notify_ready();
		break;
	case HEALER_EVENT_DAEMON_STOPPING:
		healer_notify_stopping();
		break;
	default:
		break;
	}
}

static gboolean
watchdog_ping(gpointer user_data)
{
	(void)user_data;
	sd_notify(0, "WATCHDOG=1");
	return G_SOURCE_CONTINUE;
}

guint
healer_notify_watchdog_start(void)
{
	guint64 usec = 0;
	guint interval_ms;
	g_autoptr(GSource) source = NULL;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	interval_ms = (guint)MAX(MIN(usec / 2 / 1000, (guint64)G_MAXUINT), 1);
	source = g_timeout_source_new(interval_ms);
	g_source_set_callback(source, watchdog_ping, NULL, NULL);
	g_source_set_name(source, "healerd watchdog");
	/* Ping once now: the first interval may already be most of the timeout. */
	sd_notify(0, "WATCHDOG=1");
	return g_source_attach(source, g_main_context_get_thread_default());
}
