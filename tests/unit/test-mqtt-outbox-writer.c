/*
 * The MQTT outbox's writer thread (agent/daemon/mqtt-outbox-writer.c): jobs run in the order given
 * and their results come back on the main context in that order, numbered as the outbox numbered
 * them; a failed append uses its numbers up, so the events after it keep theirs; a flush delivers
 * what is left at once and nothing comes again later; freeing waits for the jobs given.
 */
#include <string.h>

#include "healer-error.h"
#include "mqtt-outbox-log.h"
#include "mqtt-outbox-writer.h"
#include "test-util.h"

typedef struct {
	GPtrArray *results; /* char *: "append FIRST N dropped D" / "ack N" / "... error CODE" */
	GThread *thread;    /* where results must arrive */
} Seen;

static void
on_done(const HealerMqttOutboxWriterResult *result, gpointer user_data)
{
	Seen *seen = user_data;
	GString *s = g_string_new(NULL);

	g_assert_true(g_thread_self() == seen->thread);
	if (result->kind == HEALER_MQTT_OUTBOX_WRITER_APPEND)
		g_string_printf(s, "append %" G_GUINT64_FORMAT " %u dropped %u", result->first_seq,
		                result->payloads->len, result->dropped);
	else
		g_string_printf(s, "ack %u", result->seqs->len);
	if (result->error != NULL)
		g_string_append_printf(s, " error %d", result->error->code);
	g_ptr_array_add(seen->results, g_string_free(s, FALSE));
}

/* n payloads of `size` bytes (the writer numbers them; the test's payloads need not say so). */
static GPtrArray *
payloads(guint n, gsize size)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

	for (guint i = 0; i < n; i++) {
		char *p = g_malloc(size + 1);
		memset(p, 'a' + (int)(i % 26), size);
		p[size] = '\0';
		g_ptr_array_add(out, p);
	}
	return out;
}

static GArray *
seqs(guint64 from, guint64 to)
{
	GArray *out = g_array_new(FALSE, FALSE, sizeof(guint64));

	for (guint64 s = from; s <= to; s++)
		g_array_append_val(out, s);
	return out;
}

static void
wait_results(Seen *seen, guint n)
{
	while (seen->results->len < n)
		g_main_context_iteration(NULL, TRUE);
}

static HealerMqttOutbox *
open_outbox(const char *dir, guint64 max_bytes)
{
	g_autoptr(GError) error = NULL;
	HealerMqttOutbox *outbox = healer_mqtt_outbox_open(dir, max_bytes, &error);

	g_assert_no_error(error);
	return outbox;
}

static void
test_order(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 1 << 20);
	g_autoptr(GPtrArray) results = g_ptr_array_new_with_free_func(g_free);
	Seen seen = {results, g_thread_self()};
	g_autoptr(HealerMqttOutboxWriter) writer = healer_mqtt_outbox_writer_new(outbox, on_done, &seen);

	healer_mqtt_outbox_writer_append(writer, payloads(3, 100));
	healer_mqtt_outbox_writer_append(writer, payloads(2, 100));
	healer_mqtt_outbox_writer_ack(writer, seqs(1, 4));
	healer_mqtt_outbox_writer_append(writer, payloads(1, 100));
	/* Nothing arrives outside the main context's dispatch. */
	g_assert_cmpuint(results->len, ==, 0);
	wait_results(&seen, 4);
	g_assert_cmpstr(g_ptr_array_index(results, 0), ==, "append 1 3 dropped 0");
	g_assert_cmpstr(g_ptr_array_index(results, 1), ==, "append 4 2 dropped 0");
	g_assert_cmpstr(g_ptr_array_index(results, 2), ==, "ack 4");
	g_assert_cmpstr(g_ptr_array_index(results, 3), ==, "append 6 1 dropped 0");
	g_assert_cmpuint(healer_mqtt_outbox_pending(outbox), ==, 2);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 7);
	g_clear_pointer(&writer, healer_mqtt_outbox_writer_free);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_failed_append_uses_its_numbers(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 4 << 20);
	g_autoptr(GPtrArray) results = g_ptr_array_new_with_free_func(g_free);
	Seen seen = {results, g_thread_self()};
	g_autoptr(HealerMqttOutboxWriter) writer = healer_mqtt_outbox_writer_new(outbox, on_done, &seen);
	g_autofree char *code = g_strdup_printf("error %d", HEALER_ERROR_INVALID_ARGUMENT);

	healer_mqtt_outbox_writer_append(writer, payloads(1, 100));
	/* Two records, one over the outbox's 1 MiB limit: neither is appended. */
	{
		GPtrArray *bad = payloads(1, 100);
		g_autoptr(GPtrArray) big = payloads(1, HEALER_MQTT_OUTBOX_MAX_PAYLOAD + 1);
		g_ptr_array_add(bad, g_steal_pointer(&g_ptr_array_index(big, 0)));
		healer_mqtt_outbox_writer_append(writer, bad);
	}
	healer_mqtt_outbox_writer_append(writer, payloads(1, 100));
	wait_results(&seen, 3);
	g_assert_cmpstr(g_ptr_array_index(results, 0), ==, "append 1 1 dropped 0");
	g_assert_true(g_str_has_prefix(g_ptr_array_index(results, 1), "append 2 2 dropped 0 "));
	g_assert_true(g_str_has_suffix(g_ptr_array_index(results, 1), code));
	/* The next is 4: the caller had numbered its events 2 and 3 already. */
	g_assert_cmpstr(g_ptr_array_index(results, 2), ==, "append 4 1 dropped 0");
	g_assert_cmpuint(healer_mqtt_outbox_pending(outbox), ==, 2);
	g_clear_pointer(&writer, healer_mqtt_outbox_writer_free);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_flush(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 1 << 20);
	g_autoptr(GPtrArray) results = g_ptr_array_new_with_free_func(g_free);
	Seen seen = {results, g_thread_self()};
	g_autoptr(HealerMqttOutboxWriter) writer = healer_mqtt_outbox_writer_new(outbox, on_done, &seen);

	for (guint i = 0; i < 20; i++)
		healer_mqtt_outbox_writer_append(writer, payloads(5, 200));
	g_assert_cmpuint(healer_mqtt_outbox_writer_flush(writer), ==, 20);
	g_assert_cmpuint(results->len, ==, 20);
	g_assert_cmpstr(g_ptr_array_index(results, 19), ==, "append 96 5 dropped 0");
	g_assert_cmpuint(healer_mqtt_outbox_pending(outbox), ==, 100);
	/* Delivered once: the main context has nothing more for this writer. */
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_assert_cmpuint(results->len, ==, 20);
	g_assert_cmpuint(healer_mqtt_outbox_writer_flush(writer), ==, 0);
	g_clear_pointer(&writer, healer_mqtt_outbox_writer_free);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_free_waits(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 1 << 20);
	g_autoptr(GPtrArray) results = g_ptr_array_new_with_free_func(g_free);
	Seen seen = {results, g_thread_self()};
	HealerMqttOutboxWriter *writer = healer_mqtt_outbox_writer_new(outbox, on_done, &seen);

	for (guint i = 0; i < 10; i++)
		healer_mqtt_outbox_writer_append(writer, payloads(10, 300));
	healer_mqtt_outbox_writer_free(writer);
	/* Every job ran (on disk: they are there after a reopen); no result is delivered after the free. */
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_assert_cmpuint(results->len, ==, 0);
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	outbox = open_outbox(dir, 1 << 20);
	g_assert_cmpuint(healer_mqtt_outbox_pending(outbox), ==, 100);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/*
 * The face's way of publishing: the next record by number while the writer thread acknowledges the
 * front in bursts.  Every record comes once, in order (an index taken before the front moved would
 * skip some: the bench found that).
 */
static void
test_read_next_while_acking(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 16 << 20);
	g_autoptr(GPtrArray) results = g_ptr_array_new_with_free_func(g_free);
	Seen seen = {results, g_thread_self()};
	g_autoptr(HealerMqttOutboxWriter) writer = healer_mqtt_outbox_writer_new(outbox, on_done, &seen);
	GArray *burst = g_array_new(FALSE, FALSE, sizeof(guint64));
	guint64 from = 1, expected = 1;

	for (guint i = 0; i < 40; i++)
		healer_mqtt_outbox_writer_append(writer, payloads(100, 120));
	g_assert_cmpuint(healer_mqtt_outbox_writer_flush(writer), ==, 40);
	for (;;) {
		g_autoptr(GError) error = NULL;
		guint64 seq = 0;
		g_autofree char *payload = healer_mqtt_outbox_read_next(outbox, from, &seq, NULL, &error);

		if (payload == NULL) {
			g_assert_no_error(error);
			g_assert_cmpuint(seq, ==, 0);
			break;
		}
		g_assert_cmpuint(seq, ==, expected);
		g_assert_cmpuint(strlen(payload), ==, 120);
		expected++;
		from = seq + 1;
		g_array_append_val(burst, seq);
		if (burst->len == 32) {
			healer_mqtt_outbox_writer_ack(writer, burst);
			burst = g_array_new(FALSE, FALSE, sizeof(guint64));
		}
		g_main_context_iteration(NULL, FALSE);
	}
	g_assert_cmpuint(expected, ==, 4001);
	healer_mqtt_outbox_writer_ack(writer, burst);
	healer_mqtt_outbox_writer_flush(writer);
	g_assert_cmpuint(healer_mqtt_outbox_pending(outbox), ==, 0);
	g_clear_pointer(&writer, healer_mqtt_outbox_writer_free);
	test_tmpdir_free(g_steal_pointer(&dir));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mqtt-outbox-writer/order", test_order);
	g_test_add_func("/mqtt-outbox-writer/failed-append-uses-its-numbers", test_failed_append_uses_its_numbers);
	g_test_add_func("/mqtt-outbox-writer/flush", test_flush);
	g_test_add_func("/mqtt-outbox-writer/free-waits", test_free_waits);
	g_test_add_func("/mqtt-outbox-writer/read-next-while-acking", test_read_next_while_acking);
	return g_test_run();
}
