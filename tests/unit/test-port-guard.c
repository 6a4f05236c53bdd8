/*
 * agent/daemon/port-guard.c: how many ids a port may show, and how many records a device may cause
 * (issue 13, docs/security.md).  The interval's end (the "suppressed" record from a timer) is shown
 * end to end by tests/integration/test-security-device.c; here the guard is freed to flush it.
 */
#include "journal.h"
#include "port-guard.h"
#include "test-util.h"

static GPtrArray *records; /* "MESSAGE_ID MESSAGE" of every record logged */

static GLogWriterOutput
capture_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	const char *id = "-", *message = "";

	(void)level;
	(void)user_data;
	for (gsize i = 0; i < n_fields; i++) {
		if (g_str_equal(fields[i].key, "MESSAGE_ID"))
			id = fields[i].value;
		else if (g_str_equal(fields[i].key, "MESSAGE"))
			message = fields[i].value;
	}
	g_ptr_array_add(records, g_strdup_printf("%s %s", id, message));
	return G_LOG_WRITER_HANDLED;
}

static guint
count_records(const char *message_id)
{
	guint n = 0;

	for (guint i = 0; i < records->len; i++)
		n += g_str_has_prefix(g_ptr_array_index(records, i), message_id);
	return n;
}

static const char *
last_record(void)
{
	return records->len > 0 ? g_ptr_array_index(records, records->len - 1) : "";
}

static void
test_identities(void)
{
	g_autoptr(HealerPortGuard) guard = healer_port_guard_new(PORT_GUARD_IDENTITIES, NULL, NULL);
	char id[32];

	g_ptr_array_set_size(records, 0);
	/* The same device again and again (resets, a cable pulled) costs nothing. */
	for (guint i = 0; i < 100; i++)
		g_assert_true(healer_port_guard_note_identity(guard, "/dev/ttyACM0", "0123456789abcdef01234567"));
	/* Up to the limit of new ids in the window (the first counted too)... */
	for (guint i = 1; i < PORT_GUARD_IDENTITIES; i++) {
		g_snprintf(id, sizeof id, "%024u", i);
		g_assert_true(healer_port_guard_note_identity(guard, "/dev/ttyACM0", id));
	}
	g_assert_false(healer_port_guard_is_ignored(guard, "/dev/ttyACM0"));
	g_assert_cmpuint(count_records(HEALER_MSG_PORT_IGNORED), ==, 0);
	/* ... and one more is too many: the port is ignored, with one record saying why. */
	g_assert_false(healer_port_guard_note_identity(guard, "/dev/ttyACM0", "ffffffffffffffffffffffff"));
	g_assert_true(healer_port_guard_is_ignored(guard, "/dev/ttyACM0"));
	g_assert_cmpuint(count_records(HEALER_MSG_PORT_IGNORED), ==, 1);
	g_assert_nonnull(
	        strstr(last_record(), "ignoring /dev/ttyACM0 for 600 s: more than 5 device ids on it within 60 s"));
	/* While ignored, nothing more is logged, whatever the port shows. */
	for (guint i = 0; i < 100; i++) {
		g_snprintf(id, sizeof id, "%024u", 1000 + i);
		g_assert_false(healer_port_guard_note_identity(guard, "/dev/ttyACM0", id));
	}
	g_assert_cmpuint(count_records(HEALER_MSG_PORT_IGNORED), ==, 1);
	/* Another port is not affected. */
	g_assert_false(healer_port_guard_is_ignored(guard, "/dev/ttyACM1"));
	g_assert_true(healer_port_guard_note_identity(guard, "/dev/ttyACM1", "0123456789abcdef01234567"));
}

/* [serial] device-ids-per-minute: a test jig's port may show more. */
static void
test_identities_configured(void)
{
	g_autoptr(HealerPortGuard) guard = healer_port_guard_new(20, NULL, NULL);
	char id[32];

	g_ptr_array_set_size(records, 0);
	for (guint i = 0; i < 20; i++) {
		g_snprintf(id, sizeof id, "%024u", i);
		g_assert_true(healer_port_guard_note_identity(guard, "/dev/ttyACM0", id));
	}
	g_assert_false(healer_port_guard_note_identity(guard, "/dev/ttyACM0", "ffffffffffffffffffffffff"));
	g_assert_cmpuint(count_records(HEALER_MSG_PORT_IGNORED), ==, 1);
	g_assert_nonnull(strstr(last_record(), "more than 20 device ids on it within 60 s"));
}

static void
test_records(void)
{
	HealerPortGuard *guard = healer_port_guard_new(PORT_GUARD_IDENTITIES, NULL, NULL);
	guint allowed = 0;

	g_ptr_array_set_size(records, 0);
	for (guint i = 0; i < 1000; i++)
		allowed += healer_port_guard_allow_record(guard, "/dev/ttyACM0", "0123456789abcdef01234567");
	/* The burst, then nothing until the interval ends (this loop takes far less than 10 s). */
	g_assert_cmpuint(allowed, ==, PORT_GUARD_RECORD_BURST);
	/* Another port has its own budget. */
	g_assert_true(healer_port_guard_allow_record(guard, "/dev/ttyACM1", NULL));
	g_assert_cmpuint(count_records(HEALER_MSG_LOG_SUPPRESSED), ==, 0);
	/* Freed before the interval ended: the record still says how many were suppressed. */
	healer_port_guard_free(guard);
	g_assert_cmpuint(count_records(HEALER_MSG_LOG_SUPPRESSED), ==, 1);
	g_assert_cmpstr(last_record(), ==,
	                HEALER_MSG_LOG_SUPPRESSED
	                " [0123456789abcdef01234567] suppressed 950 records from the device on "
	                "/dev/ttyACM0: more than 50 in 10 s");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	records = g_ptr_array_new_with_free_func(g_free);
	g_log_set_writer_func(capture_writer, NULL, NULL);
	g_test_add_func("/port-guard/identities", test_identities);
	g_test_add_func("/port-guard/identities-configured", test_identities_configured);
	g_test_add_func("/port-guard/records", test_records);
	return g_test_run();
}
