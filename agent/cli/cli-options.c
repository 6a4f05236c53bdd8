#include "cli-options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "client.h"
#include "healer-error.h"

int
healerctl_options_parse(const char *verb, const char *title, const char *help, const GOptionEntry *entries, int *argc,
                        char ***argv)
{
	g_autoptr(GOptionContext) context = g_option_context_new(title);
	g_autoptr(GError) error = NULL;

	g_option_context_add_main_entries(context, entries, NULL);
	g_option_context_set_summary(context, help);
	if (!g_option_context_parse(context, argc, argv, &error)) {
		fprintf(stderr, "healerctl %s: %s\n", verb, error->message);
		return HEALER_EXIT_USAGE;
	}
	return HEALER_EXIT_OK;
}

int
healerctl_options_want_arguments(const char *verb, const char *usage, int argc, char **argv, int want)
{
	if (argc - 1 == want)
		return HEALER_EXIT_OK;
	if (argc - 1 > want)
		return healerctl_usage_error(verb, "unexpected argument '%s' (usage: healerctl %s)", argv[want + 1],
		                             usage);
	return healerctl_usage_error(verb, "missing argument (usage: healerctl %s)", usage);
}

int
healerctl_options_parse_json_verb(const HealerctlJsonVerb *spec, gboolean *json, int *argc, char ***argv)
{
	const GOptionEntry entries[] = {
	        HEALERCTL_OPTION_JSON(json, spec->json_help),
	        HEALERCTL_BUS_OPTIONS,
	        HEALERCTL_OPTIONS_END,
	};
	int status = healerctl_options_parse(spec->verb, spec->title, spec->help, entries, argc, argv);

	if (status != HEALER_EXIT_OK)
		return status;
	return healerctl_options_want_arguments(spec->verb, spec->usage, *argc, *argv, spec->n_arguments);
}

int
healerctl_usage_error(const char *verb, const char *format, ...)
{
	g_autofree char *message = NULL;
	va_list args;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	fprintf(stderr, "healerctl %s: %s\n", verb, message);
	return HEALER_EXIT_USAGE;
}

int
healerctl_print_error(const char *verb, const GError *error)
{
	fprintf(stderr, "healerctl %s: %s\n", verb, error->message);
	return healer_error_to_exit_code(error);
}

int
healerctl_print_open_error(const char *verb, const char *path, int err)
{
	fprintf(stderr, "healerctl %s: %s: %s\n", verb, path, g_strerror(err));
	return err == ENOENT                     ? HEALER_EXIT_NOT_FOUND
	       : (err == EACCES || err == EPERM) ? HEALER_EXIT_PERMISSION
	                                         : HEALER_EXIT_FAILED;
}

void
healerctl_print_json(json_object *obj, gboolean pretty)
{
	int flags = (pretty ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN) | JSON_C_TO_STRING_NOSLASHESCAPE;

	printf("%s\n", json_object_to_json_string_ext(obj, flags));
	fflush(stdout);
}
