/* healerctl's verbs: each takes the arguments after its name. */
#pragma once

#include <glib.h>

/* Offline: files and serial ports, no daemon. */
int healerctl_inspect(int argc, char **argv);
int healerctl_plan(int argc, char **argv);
int healerctl_probe(int argc, char **argv);
int healerctl_export(int argc, char **argv);

/* Over D-Bus (cmd-daemon.c, cmd-heal.c, cmd-monitor.c). */
int healerctl_status(int argc, char **argv);
int healerctl_devices(int argc, char **argv);
int healerctl_device(int argc, char **argv);
int healerctl_heal(int argc, char **argv);
int healerctl_flash(int argc, char **argv);
int healerctl_modules(int argc, char **argv);
int healerctl_import(int argc, char **argv);
int healerctl_refresh(int argc, char **argv);
int healerctl_monitor(int argc, char **argv);
/* `plan ID`: the plan healerd would carry out now. */
int healerctl_plan_remote(const char *id, gboolean json);
