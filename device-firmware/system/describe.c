#include "describe.h"

#include "text.h"

static const char function_chars[] = "nrbmsu_cat";

static void
function_char(text_t *t, uint8_t function)
{
	char s[2] = {function <= MODULE_FUNCTION_MAX ? function_chars[function] : '_', '\0'};

	text_str(t, s);
}

static void
dependency(text_t *t, const module_dependency_t *d, int *first)
{
	if (d->function == MODULE_FUNCTION_NONE)
		return;
	text_str(t, *first ? "{\"f\":\"" : ",{\"f\":\"");
	function_char(t, d->function);
	text_str(t, "\",\"n\":\"");
	text_uint(t, d->index);
	text_str(t, "\",\"v\":");
	text_uint(t, d->version);
	text_str(t, "}");
	*first = 0;
}

size_t
describe_build(const module_report_t reports[HAL_MAX_SLOTS], char *out, size_t size)
{
	const hal_board_t *board = hal_board();
	text_t t;
	int first_module = 1;

	text_init(&t, out, size);
	text_str(&t, "{\"p\":");
	text_uint(&t, board->platform_id);
	text_str(&t, ",\"m\":[");
	for (unsigned i = 0; i < board->n_slots; i++) {
		const module_report_t *r = &reports[i];
		int first_dep = 1;
		if (!r->present)
			continue;
		text_str(&t, first_module ? "{\"s\":" : ",{\"s\":");
		first_module = 0;
		text_uint(&t, board->slots[i].size);
		text_str(&t, ",\"l\":\"m\",\"vc\":");
		text_uint(&t, r->checked);
		text_str(&t, ",\"vv\":");
		text_uint(&t, r->passed);
		if (r->prefix.function == MODULE_FUNCTION_USER_PART) {
			text_str(&t, ",\"u\":\"");
			text_hex(&t, r->sha256, 32, 1);
			text_str(&t, "\"");
		}
		text_str(&t, ",\"f\":\"");
		function_char(&t, r->prefix.function);
		text_str(&t, "\",\"n\":\"");
		text_uint(&t, r->prefix.index);
		text_str(&t, "\",\"v\":");
		text_uint(&t, r->prefix.version);
		text_str(&t, ",\"d\":[");
		dependency(&t, &r->prefix.dependency, &first_dep);
		dependency(&t, &r->prefix.dependency2, &first_dep);
		text_str(&t, "]}");
	}
	text_str(&t, "]}");
	return t.overflow ? 0 : t.len;
}
