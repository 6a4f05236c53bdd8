/*
 * healerctl: the technician's command.  Verbs that need the daemon talk to
 * it over D-Bus; `inspect` works on files alone.
 */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "healer-error.h"
#include "healerctl.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} verbs[] = {
        {"inspect", healerctl_inspect, "Show and verify the modules in firmware files (no daemon needed)"},
        {"plan", healerctl_plan, "Plan the modules a device needs, from its describe (no daemon needed)"},
        {"probe", healerctl_probe, "Ask devices on serial ports directly (no daemon: stop healerd first)"},
};

static void
usage(FILE *out)
{
	fprintf(out, "Usage: healerctl VERB [OPTIONS...]\n\nVerbs:\n");
	for (gsize i = 0; i < G_N_ELEMENTS(verbs); i++)
		fprintf(out, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(out, "\nRun 'healerctl VERB --help' for a verb's options.\n"
	             "Exit status: 0 ok, 1 failed or invalid input, 2 usage error, 3 not found.\n");
}

int
main(int argc, char **argv)
{
	setlocale(LC_ALL, "");
	if (argc < 2) {
		usage(stderr);
		return HEALER_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return HEALER_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("healerctl %s\n", HEALER_VERSION);
		return HEALER_EXIT_OK;
	}
	for (gsize i = 0; i < G_N_ELEMENTS(verbs); i++) {
		if (strcmp(argv[1], verbs[i].name) == 0)
			return verbs[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "healerctl: unknown verb '%s'\n\n", argv[1]);
	usage(stderr);
	return HEALER_EXIT_USAGE;
}
