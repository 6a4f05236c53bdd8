/* healerctl's verbs: each takes the arguments after its name. */
#pragma once

#include <glib.h>

int healerctl_inspect(int argc, char **argv);
int healerctl_plan(int argc, char **argv);
int healerctl_probe(int argc, char **argv);
