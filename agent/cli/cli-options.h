/*
 * What every healerctl verb does with its command line, written once: its
 * options parsed (GOption, with the verb's title and help text), a usage
 * error printed as "healerctl VERB: MESSAGE" with exit status 2, and a
 * failure printed the same way with the exit status its error maps to
 * (healer-error.h, healerctl(1)).  What a verb prints on success, and its
 * D-Bus failures (client.h), stay with the verb.
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

G_BEGIN_DECLS

/* clang-format off */
/* --json, with what it prints for this verb. */
#define HEALERCTL_OPTION_JSON(flag, description) \
	{"json", 0, 0, G_OPTION_ARG_NONE, (flag), (description), NULL}
#define HEALERCTL_OPTIONS_END {NULL, 0, 0, 0, NULL, NULL, NULL}
/* clang-format on */

/*
 * Parses `entries` out of argc and argv (GOption leaves argv[0] and the
 * positional arguments).  `title` follows "Usage: healerctl VERB [OPTION…]"
 * in --help, `help` comes under it (the exit statuses).  HEALER_EXIT_OK, or
 * HEALER_EXIT_USAGE after printing "healerctl VERB: GOPTION'S MESSAGE".
 */
int healerctl_options_parse(const char *verb, const char *title, const char *help, const GOptionEntry *entries,
                            int *argc, char ***argv);

/*
 * Exactly `want` positional arguments after parsing: HEALER_EXIT_OK, or
 * HEALER_EXIT_USAGE after printing "healerctl VERB: unexpected argument 'A'
 * (usage: healerctl USAGE)" or "healerctl VERB: missing argument (usage: ...)".
 */
int healerctl_options_want_arguments(const char *verb, const char *usage, int argc, char **argv, int want);

/* A D-Bus verb whose only options are --json and the bus (--system, --session). */
typedef struct {
	const char *verb;
	const char *title;     /* as for healerctl_options_parse() */
	const char *help;      /* as for healerctl_options_parse() */
	const char *json_help; /* what --json prints, for --help */
	const char *usage;     /* "VERB ARGUMENTS [--json]", in a usage error */
	int n_arguments;       /* exactly this many positional arguments */
} HealerctlJsonVerb;

/* Parses such a verb's command line (options, then its arguments): HEALER_EXIT_OK or HEALER_EXIT_USAGE (printed). */
int healerctl_options_parse_json_verb(const HealerctlJsonVerb *spec, gboolean *json, int *argc, char ***argv);

/* Prints "healerctl VERB: MESSAGE" on stderr; returns HEALER_EXIT_USAGE. */
int healerctl_usage_error(const char *verb, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* Prints "healerctl VERB: ERROR'S MESSAGE" on stderr; returns the exit status of `error` (a HEALER_ERROR). */
int healerctl_print_error(const char *verb, const GError *error);

/*
 * A file of the user's that could not be opened: prints "healerctl VERB:
 * PATH: STRERROR" and returns 3 (no such file), 4 (permission denied) or 1.
 */
int healerctl_print_open_error(const char *verb, const char *path, int err);

/* What --json prints: `obj`, pretty (one document) or on one line (a stream), then a newline; stdout flushed. */
void healerctl_print_json(json_object *obj, gboolean pretty);

G_END_DECLS
