/*
 * healerctl: the technician's command.  Verbs that need the daemon talk to
 * it over D-Bus (the system bus; --session or HEALERCTL_BUS=session for the
 * session bus); `inspect`, `plan --describe` and `probe` work without it.
 */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "healer-error.h"
#include "healerctl.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} verbs[] = {
        {"status", healerctl_status, "healerd's version, its devices by state, its module store"},
        {"devices", healerctl_devices, "List the devices healerd serves"},
        {"device", healerctl_device, "One device's details and its modules' dependencies (PASS/FAIL)"},
        {"heal", healerctl_heal, "Heal a device (ID) or every device (--all), following the progress"},
        {"flash", healerctl_flash, "Install an application (and the system modules it needs) on a device"},
        {"plan", healerctl_plan,
         "What healerd would install on a device (ID), or offline from a describe (--describe)"},
        {"modules", healerctl_modules, "List the modules in healerd's store"},
        {"import", healerctl_import, "Import a signed bundle, a module file or a directory into healerd's store"},
        {"refresh", healerctl_refresh, "Fetch the upstream catalog now"},
        {"monitor", healerctl_monitor, "Print healerd's events as they happen, until Ctrl-C"},
        {"inspect", healerctl_inspect, "Show and verify the modules in firmware files (no daemon needed)"},
        {"probe", healerctl_probe,
         "Ask devices on serial ports directly (no daemon: stop healerd first), or find USB devices"},
        {"export", healerctl_export, "Write a bundle of stored modules from healerd's state directory (no daemon)"},
};

static void
usage(FILE *out)
{
	fprintf(out, "Usage: healerctl [--system|--session] VERB [OPTIONS...]\n\nVerbs:\n");
	for (gsize i = 0; i < G_N_ELEMENTS(verbs); i++)
		fprintf(out, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(out, "\nOptions:\n"
	             "  --system   Talk to healerd on the system bus (the default)\n"
	             "  --session  Talk to healerd on the session bus (also HEALERCTL_BUS=session)\n"
	             "  --version  Print the version\n"
	             "\nRun 'healerctl VERB --help' for a verb's options; healerctl(1) has them all.\n"
	             "Exit status: 0 ok, 1 failed or invalid input, 2 usage error, 3 not found or no plan,\n"
	             "4 permission denied, 5 healerd not running, 6 busy.\n");
}

int
main(int argc, char **argv)
{
	setlocale(LC_ALL, "");
	/* Options before the verb: which bus. */
	while (argc > 1 && (strcmp(argv[1], "--session") == 0 || strcmp(argv[1], "--system") == 0)) {
		healerctl_option_bus(argv[1], NULL, NULL, NULL);
		argv[1] = argv[0];
		argv++;
		argc--;
	}
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
		if (strcmp(argv[1], verbs[i].name) == 0) {
			/* --help then says "Usage: healerctl VERB ...". */
			g_autofree char *prgname = g_strdup_printf("healerctl %s", verbs[i].name);
			g_set_prgname(prgname);
			return verbs[i].run(argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "healerctl: unknown verb '%s'\n\n", argv[1]);
	usage(stderr);
	return HEALER_EXIT_USAGE;
}
