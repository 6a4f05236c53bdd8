/*
 * A Particle device's service reply (the IN data of INIT, CHECK and RESET) on arbitrary bytes:
 * healer_particle_reply_parse() accepts exactly the replies the protocol allows (a known field
 * set with STATUS, the bytes those fields need, a known status, no id 0), reports the fields as
 * sent, and writing an accepted reply gives back the bytes it was read from; a refusal is
 * HEALER_ERROR_INVALID_DATA naming the service reply.  Every result has a description.
 */
#include "fuzz-target.h"

#include <string.h>

#include "healer-error.h"
#include "particle-control.h"

static guint32
le32(const uint8_t *p)
{
	return (guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 | (guint32)p[3] << 24;
}

/* The protocol's rule, written out apart from the parser's. */
static gboolean
valid_reply(const uint8_t *data, size_t size, size_t *need)
{
	guint32 fields;
	size_t at = 6;

	*need = 0;
	if (size < 4)
		return FALSE;
	fields = le32(data);
	if ((fields & ~0x0Fu) != 0 || !(fields & 0x01))
		return FALSE;
	*need = 6 + ((fields & 0x02) ? 2 : 0) + ((fields & 0x04) ? 4 : 0) + ((fields & 0x08) ? 4 : 0);
	if (size < *need)
		return FALSE;
	if ((data[4] | data[5] << 8) > HEALER_PARTICLE_STATUS_NOT_FOUND)
		return FALSE;
	if ((fields & 0x02) && (data[at] | data[at + 1] << 8) == 0)
		return FALSE;
	return TRUE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean initialized = FALSE;
	HealerParticleReply reply, back;
	g_autoptr(GError) error = NULL;
	guint8 out[HEALER_PARTICLE_REPLY_MAX_SIZE];
	size_t need;
	gboolean valid = valid_reply(data, size, &need);
	gsize len;

	if (!initialized) {
		g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		initialized = TRUE;
	}
	g_assert_cmpint(healer_particle_reply_parse(data, size, &reply, &error), ==, valid);
	if (!valid) {
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		g_assert_true(g_str_has_prefix(error->message, "service reply: "));
		return 0;
	}
	g_assert_no_error(error);
	g_assert_cmphex(reply.fields, ==, le32(data));
	g_assert_nonnull(healer_particle_status_to_string(reply.status));
	g_assert_true(reply.id == 0 || (reply.fields & HEALER_PARTICLE_REPLY_FIELD_ID));
	g_assert_true(reply.size == 0 || (reply.fields & HEALER_PARTICLE_REPLY_FIELD_SIZE));
	g_assert_true(reply.result == 0 || (reply.fields & HEALER_PARTICLE_REPLY_FIELD_RESULT));

	/* Written back: the bytes it was read from, up to the last flagged field. */
	len = healer_particle_reply_write(&reply, out);
	g_assert_cmpuint(len, ==, need);
	g_assert_cmpmem(out, len, data, need);
	g_assert_true(healer_particle_reply_parse(out, len, &back, NULL));
	g_assert_cmphex(back.fields, ==, reply.fields);
	g_assert_cmpuint(back.status, ==, reply.status);
	g_assert_cmpuint(back.id, ==, reply.id);
	g_assert_cmpuint(back.size, ==, reply.size);
	g_assert_cmpint(back.result, ==, reply.result);
	{
		g_autofree char *text = healer_particle_result_describe(reply.result);
		g_assert_nonnull(text);
		g_assert_cmpuint(strlen(text), >, 0);
	}
	return 0;
}
