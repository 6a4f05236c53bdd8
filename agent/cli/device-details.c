#include "device-details.h"

#include <string.h>

#include "printable.h"

/* Where `healerctl device` starts its values ("Device:       "). */
#define LABEL_WIDTH 14
/* The module table's indent, and the failure text's under its row. */
#define TABLE_INDENT   2
#define FAILURE_INDENT 6
/* Narrower than this, the checks go on a line of their own under the row. */
#define MIN_CHECKS_WIDTH 24

/* ---- reading the object (what healerd sent: any key may be missing or of another type) ---- */

static json_object *
member(json_object *o, const char *key, json_type type)
{
	json_object *value = NULL;

	if (o == NULL || !json_object_object_get_ex(o, key, &value) || !json_object_is_type(value, type))
		return NULL;
	return value;
}

static const char *
string_member(json_object *o, const char *key)
{
	json_object *value = member(o, key, json_type_string);

	return value != NULL ? json_object_get_string(value) : NULL;
}

static gboolean
int_member(json_object *o, const char *key, gint64 *out)
{
	json_object *value = member(o, key, json_type_int);

	if (value == NULL)
		return FALSE;
	*out = json_object_get_int64(value);
	return TRUE;
}

/* The array's strings, printable, joined by `separator`; NULL when it has none. */
static char *
joined(json_object *array, const char *separator)
{
	g_autoptr(GString) out = g_string_new(NULL);

	for (size_t i = 0; array != NULL && i < json_object_array_length(array); i++) {
		json_object *item = json_object_array_get_idx(array, i);
		g_autofree char *text = NULL;

		if (!json_object_is_type(item, json_type_string))
			continue;
		text = healerctl_printable(json_object_get_string(item));
		g_string_append_printf(out, "%s%s", out->len > 0 ? separator : "", text);
	}
	return out->len > 0 ? g_string_free(g_steal_pointer(&out), FALSE) : NULL;
}

/* ---- layout ---- */

static guint
columns(const char *text)
{
	return (guint)g_utf8_strlen(text, -1);
}

/*
 * `text` (printable) after `first`, word-wrapped so that no line passes HEALERCTL_DEVICE_DETAILS_COLUMNS:
 * continuation lines start with `indent` spaces; a word longer than a line is cut.  Every caller's
 * `first` and `indent` leave room on the line (at least one column, else a line runs over by one).
 */
static void
append_wrapped(GString *out, const char *first, guint indent, const char *text)
{
	guint column = columns(first);
	gboolean line_empty = TRUE; /* no word on this line yet */
	const char *p = text;

	g_string_append(out, first);
	while (*p == ' ')
		p++;
	while (*p != '\0') {
		const char *end = strchr(p, ' ');
		gsize bytes = end != NULL ? (gsize)(end - p) : strlen(p);
		guint width = (guint)g_utf8_strlen(p, (gssize)bytes);
		guint space = line_empty ? 0 : 1;

		if (column + space + width > HEALERCTL_DEVICE_DETAILS_COLUMNS) {
			if (line_empty) {
				/* A word wider than the line: as much as fits, the rest on the next. */
				guint fits = column < HEALERCTL_DEVICE_DETAILS_COLUMNS
				                     ? HEALERCTL_DEVICE_DETAILS_COLUMNS - column
				                     : 1;
				const char *cut = g_utf8_offset_to_pointer(p, fits);
				g_string_append_len(out, p, cut - p);
				p = cut;
			}
			g_string_append_printf(out, "\n%*s", (int)indent, "");
			column = indent;
			line_empty = TRUE;
			continue;
		}
		g_string_append_printf(out, "%s%.*s", space ? " " : "", (int)bytes, p);
		column += space + width;
		line_empty = FALSE;
		p += bytes;
		while (*p == ' ')
			p++;
	}
	g_string_append_c(out, '\n');
}

/* "Label:        value", the value wrapped under itself. */
static void
append_field(GString *out, const char *label, const char *value)
{
	g_autofree char *first = g_strdup_printf("%-*s", LABEL_WIDTH, label);
	g_autofree char *text = healerctl_printable(value);

	append_wrapped(out, first, LABEL_WIDTH, text);
}

/* ---- a Particle device ---- */

static const char *
route_text(const char *route)
{
	if (g_strcmp0(route, "control") == 0)
		return "control (over control requests, no mode switch)";
	if (g_strcmp0(route, "dfu") == 0)
		return "dfu (the device switches to DFU mode for each module)";
	return route;
}

static const char *
format_text(const char *format)
{
	if (g_strcmp0(format, "old") == 0)
		return "old (one validity field)";
	if (g_strcmp0(format, "new") == 0)
		return "new (checked and passed flags)";
	return format;
}

/* "FAILED dependencies; passed integrity, range, platform", "passed ...", "none checked". */
static char *
checks_text(json_object *module)
{
	g_autofree char *failed = joined(member(module, "failed", json_type_array), ", ");
	g_autofree char *passed = joined(member(module, "passed", json_type_array), ", ");

	if (failed != NULL)
		return g_strdup_printf("FAILED %s%s%s", failed, passed != NULL ? "; passed " : "",
		                       passed != NULL ? passed : "");
	if (passed != NULL)
		return g_strdup_printf("passed %s", passed);
	return g_strdup("none checked");
}

typedef struct {
	char *cells[3]; /* module, version, size */
	char *checks;
	char *failure; /* nullable */
} Row;

static void
row_clear(Row *row)
{
	for (guint i = 0; i < G_N_ELEMENTS(row->cells); i++)
		g_free(row->cells[i]);
	g_free(row->checks);
	g_free(row->failure);
}

static void
row_from_json(Row *row, json_object *module)
{
	const char *function = string_member(module, "function");
	g_autofree char *name = healerctl_printable(function != NULL ? function : "?");
	gint64 index = 0, version = 0, size = 0;
	gboolean has_index = int_member(module, "index", &index);
	const char *failure = string_member(module, "failure");

	/* A function name is healerd's word for it, short; cut it all the same, so the table fits. */
	if (columns(name) > 16) {
		char *cut = g_utf8_substring(name, 0, 16);
		g_free(name);
		name = cut;
	}
	row->cells[0] = has_index ? g_strdup_printf("%s %" G_GINT64_FORMAT, name, index) : g_strdup(name);
	row->cells[1] =
	        int_member(module, "version", &version) ? g_strdup_printf("%" G_GINT64_FORMAT, version) : g_strdup("?");
	row->cells[2] = int_member(module, "size", &size) ? g_strdup_printf("%" G_GINT64_FORMAT, size) : g_strdup("?");
	row->checks = checks_text(module);
	row->failure = failure != NULL && *failure != '\0' ? healerctl_printable(failure) : NULL;
}

static void
append_module_table(GString *out, json_object *modules)
{
	static const char *const headings[] = {"MODULE", "VERSION", "SIZE", "CHECKS"};
	g_autofree Row *rows = g_new0(Row, json_object_array_length(modules));
	gsize n = 0;
	guint width[3] = {0};
	guint checks_column = TABLE_INDENT;
	gboolean checks_apart;

	for (size_t i = 0; i < json_object_array_length(modules); i++) {
		json_object *module = json_object_array_get_idx(modules, i);
		if (json_object_is_type(module, json_type_object))
			row_from_json(&rows[n++], module);
	}
	for (guint c = 0; c < G_N_ELEMENTS(width); c++) {
		width[c] = columns(headings[c]);
		for (gsize i = 0; i < n; i++)
			width[c] = MAX(width[c], columns(rows[i].cells[c]));
		checks_column += width[c] + 2;
	}
	checks_apart = checks_column + MIN_CHECKS_WIDTH > HEALERCTL_DEVICE_DETAILS_COLUMNS;

	{
		g_autoptr(GString) heading = g_string_new(NULL);
		g_string_append_printf(heading, "%*s", TABLE_INDENT, "");
		for (guint c = 0; c < G_N_ELEMENTS(width); c++)
			g_string_append_printf(heading, "%s%*s", headings[c],
			                       (int)(width[c] - columns(headings[c]) + 2), "");
		if (!checks_apart)
			g_string_append(heading, headings[3]);
		g_string_append_printf(out, "%s\n", g_strchomp(heading->str));
	}
	for (gsize i = 0; i < n; i++) {
		g_autoptr(GString) first = g_string_new(NULL);

		g_string_append_printf(first, "%*s", TABLE_INDENT, "");
		for (guint c = 0; c < G_N_ELEMENTS(width); c++)
			g_string_append_printf(first, "%s%*s", rows[i].cells[c],
			                       (int)(width[c] - columns(rows[i].cells[c]) + 2), "");
		if (checks_apart) {
			g_string_append_printf(out, "%s\n", g_strchomp(first->str));
			g_string_printf(first, "%*s", FAILURE_INDENT, "");
			append_wrapped(out, first->str, FAILURE_INDENT, rows[i].checks);
		} else {
			append_wrapped(out, first->str, checks_column, rows[i].checks);
		}
		if (rows[i].failure != NULL) {
			g_autofree char *indent = g_strdup_printf("%*s", FAILURE_INDENT, "");
			append_wrapped(out, indent, FAILURE_INDENT, rows[i].failure);
		}
		row_clear(&rows[i]);
	}
}

static void
append_usb(GString *out, json_object *details)
{
	const char *usb_id = string_member(details, "usb_id");
	const char *serial = string_member(details, "serial");
	g_autofree char *text = NULL;

	if (usb_id == NULL)
		return;
	text = serial != NULL && *serial != '\0' ? g_strdup_printf("%s, serial number %s", usb_id, serial)
	                                         : g_strdup(usb_id);
	append_field(out, "USB:", text);
}

static void
append_particle(GString *out, json_object *details, gboolean *module_table)
{
	const char *device_os = string_member(details, "device_os");
	const char *format = string_member(details, "module_info_format");
	json_object *modules = member(details, "modules", json_type_array);
	const char *unreadable = string_member(details, "unreadable");
	g_autofree char *why = unreadable != NULL ? g_strdup_printf("unreadable: %s", unreadable) : NULL;

	append_field(out, "Device OS:", device_os != NULL ? device_os : "unknown (the device did not say)");
	append_usb(out, details);
	append_field(out, "Install:", route_text(string_member(details, "install_route")));
	append_field(out, "Module info:", format != NULL ? format_text(format) : why != NULL ? why : "not read yet");
	if (modules == NULL)
		return;
	if (json_object_array_length(modules) == 0) {
		append_field(out, "Modules:", "none listed");
	} else {
		g_string_append(out, "Modules:\n");
		append_module_table(out, modules);
	}
	*module_table = TRUE;
}

/* ---- a DFU device ---- */

static void
append_dfu(GString *out, json_object *details)
{
	gint64 transfer_size = 0;
	const char *attributes = string_member(details, "attributes");
	g_autofree char *text = NULL;

	append_usb(out, details);
	if (!int_member(details, "transfer_size", &transfer_size))
		return;
	text = g_strdup_printf("wTransferSize %" G_GINT64_FORMAT "%s%s", transfer_size, attributes ? ", " : "",
	                       attributes ? attributes : "");
	append_field(out, "DFU:", text);
}

char *
healerctl_device_details_format(json_object *device, gboolean *module_table)
{
	g_autoptr(GString) out = g_string_new(NULL);
	g_autofree char *ttys = joined(member(device, "ttys", json_type_array), ", ");
	json_object *details = member(device, "details", json_type_object);
	gboolean table = FALSE;

	if (ttys != NULL)
		append_field(out, "TTYs:", ttys);
	/* The family's details say which family by what they hold (docs/dbus-api.md). */
	if (member(details, "install_route", json_type_string) != NULL)
		append_particle(out, details, &table);
	else if (details != NULL)
		append_dfu(out, details);
	if (module_table != NULL)
		*module_table = table;
	return g_string_free(g_steal_pointer(&out), FALSE);
}
