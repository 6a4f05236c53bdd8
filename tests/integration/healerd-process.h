/* Running healerd from a test: a config in a temp dir, its log in a file, waits on log lines. */
#pragma once

#include <gio/gio.h>

typedef struct {
	char *dir;    /* state, ports and the config live here */
	char *config; /* the config file */
	char *log;    /* healerd's stderr */
	GSubprocess *process;
	char *bus_args; /* healerd's bus option ("--session"); "": none (the system bus); NULL: "--no-bus" */
	char *wrapper;  /* runs healerd under this command line instead of $HEALER_TEST_WRAPPER (NULL: that) */
	GStrv env;      /* NAME=VALUE pairs set for healerd only (may be NULL) */
} HealerdProcess;

/* Writes DIR/healerd.conf serving DIR/ports/ with the given module directory and extra [healer] lines. */
HealerdProcess *healerd_process_new(const char *dir, const char *module_dir, const char *healer_lines);
void healerd_process_start(HealerdProcess *self);
/* SIGTERM and wait; kill -9 and wait. */
void healerd_process_stop(HealerdProcess *self);
void healerd_process_kill(HealerdProcess *self);
void healerd_process_free(HealerdProcess *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerdProcess, healerd_process_free)

/* Number of log lines containing every one of the strings (NULL-terminated). */
guint healerd_process_count(HealerdProcess *self, const char *const *all);
/* Waits until `count` such lines exist; fails the test (showing the log) after timeout_ms. */
void healerd_process_wait(HealerdProcess *self, const char *const *all, guint count, guint timeout_ms);
/* The log lines with every string, in order. */
GPtrArray *healerd_process_lines(HealerdProcess *self, const char *const *all);
