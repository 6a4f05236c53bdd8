#!/usr/bin/env python3
"""scripts/error-sites.py on a fabricated source file and gcovr JSON: each kind of raise site is
found (a GLib raising call, in a function that raises on one path only, a ternary's two codes, a fixed-code fail() helper, a *set_*error()
helper taking the code, a mapping's returned codes), what is not a site is not (a comment,
g_error_matches(), a case label, the helpers' own bodies), and a site counts as run when a line
from its call to its ';' has a count (a continuation line too), not when the if before it ran.

    test-error-sites.py [SCRIPT]      (default: the repository's scripts/error-sites.py)
"""
import json
import os
import subprocess
import sys
import tempfile

SCRIPT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "error-sites.py")

SOURCE = """\
#include "healer-error.h"

/* A macro over healer_fail(): counted where it is used, not here. */
#define refuse(error, ...) \\
	healer_fail((error), HEALER_ERROR_NO_PLAN, __VA_ARGS__)

static gboolean
fail(GError **error, const char *format, ...)
{
	g_set_error_literal(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, format);
	return FALSE;
}

static void
set_code_error(GError **error, HealerError code)
{
	g_set_error(error, HEALER_ERROR, code, "coded");
}

static int
mapping(int err)
{
	if (err == 1)
		return HEALER_ERROR_NOT_FOUND; /* @not-found */
	return HEALER_ERROR_IO; /* @mapped-io */
}

/* Raises on one path: calling it is not raising (not a helper: not fail() or *set_*error()). */
static gboolean
check_size(int n, GError **error)
{
	if (n > 10) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_FAILED, "too big"); /* @too-big */
		return FALSE;
	}
	return TRUE;
}

static gboolean
parse(const char *s, GError **error)
{
	switch (*s) {
	case HEALER_ERROR_FAILED:
		break;
	}
	if (s[0] == 0) /* @if-ran */
		return fail(error, "empty"); /* @fail-run */
	if (s[0] == 'x') /* @if-x-ran */
		return fail(error, "x"); /* @fail-not-run */
	if (s[0] == 'y') {
		g_set_error(error, HEALER_ERROR, /* @ternary */
		            s[1] ? HEALER_ERROR_BUSY : HEALER_ERROR_IO, "z"); /* @ternary-continued */
		return FALSE;
	}
	if (g_error_matches(*error, HEALER_ERROR, HEALER_ERROR_FAILED))
		return FALSE;
	/* g_set_error(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN, "only a comment"); */
	set_code_error(error, HEALER_ERROR_PERMISSION_DENIED); /* @coded */
	check_size(3, error); /* @check-call */
	if (s[0] == 'p')
		return healer_fail(error, HEALER_ERROR_NO_PLAN, "no plan"); /* @hfail */
	if (s[0] == 'j')
		return healer_json_fail(error, "j: expected a string"); /* @jfail */
	return TRUE;
}
"""


def line_of(marker):
    return next(i for i, text in enumerate(SOURCE.splitlines(), 1) if f"@{marker} " in text)


def run(args):
    out = subprocess.run([sys.executable, SCRIPT] + args, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"error-sites.py {' '.join(args)} failed ({out.returncode}): {out.stderr}")
    return out.stdout


def table(text):
    """{code: [numbers...]} from the script's table."""
    rows = {}
    for line in text.splitlines():
        words = line.split()
        if words and (words[0].startswith("HEALER_ERROR_") or words[0] == "all"):
            rows[words[0]] = words[1:]
    return rows


failures = 0


def expect(what, got, want):
    global failures
    if got != want:
        print(f"not ok: {what}: got {got}, want {want}")
        failures += 1
    else:
        print(f"ok: {what}: {got}")


with tempfile.TemporaryDirectory() as root:
    os.makedirs(os.path.join(root, "agent"))
    with open(os.path.join(root, "agent", "x.c"), "w") as f:
        f.write(SOURCE)
    # What gcov saw: the if before the unrun fail() ran, the ternary's first line has no count of its
    # own (gcc puts it on the continuation), the mapping's IO line never ran.
    counts = {"if-ran": 5, "fail-run": 1, "if-x-ran": 4, "fail-not-run": 0, "ternary": 0, "ternary-continued": 1,
              "not-found": 2, "mapped-io": 0, "coded": 1, "too-big": 0, "check-call": 1,
              "hfail": 1, "jfail": 0}
    lines = [{"line_number": line_of(m), "count": c, "branches": [], "gcovr/noncode": False} for m, c in counts.items()]
    lines[[*counts].index("ternary")]["gcovr/noncode"] = True
    with open(os.path.join(root, "coverage.json"), "w") as f:
        json.dump({"gcovr/format_version": "0.3", "files": [{"file": "agent/x.c", "lines": lines, "functions": []}]}, f)

    sites = table(run(["--root", root, "agent"]))
    expect("sites", sites, {
        "HEALER_ERROR_BUSY": ["1"],
        "HEALER_ERROR_FAILED": ["1"],
        "HEALER_ERROR_INVALID_DATA": ["3"],
        "HEALER_ERROR_IO": ["2"],
        "HEALER_ERROR_NOT_FOUND": ["1"],
        "HEALER_ERROR_NO_PLAN": ["1"],
        "HEALER_ERROR_PERMISSION_DENIED": ["1"],
        "all": ["10"],
    })
    ran = table(run(["--root", root, "--coverage", os.path.join(root, "coverage.json"), "agent"]))
    expect("ran", ran, {
        "HEALER_ERROR_BUSY": ["1", "1", "100.0%"],
        "HEALER_ERROR_FAILED": ["1", "0", "0.0%"],
        "HEALER_ERROR_INVALID_DATA": ["3", "1", "33.3%"],
        "HEALER_ERROR_IO": ["2", "1", "50.0%"],
        "HEALER_ERROR_NOT_FOUND": ["1", "1", "100.0%"],
        "HEALER_ERROR_NO_PLAN": ["1", "1", "100.0%"],
        "HEALER_ERROR_PERMISSION_DENIED": ["1", "1", "100.0%"],
        "all": ["10", "6", "60.0%"],
    })
    listed = run(["--root", root, "--list", "agent"])
    for marker, kind in [("fail-run", "helper"), ("fail-not-run", "helper"), ("ternary", "call"),
                         ("not-found", "value"), ("mapped-io", "value"), ("coded", "helper"),
                         ("too-big", "call"), ("hfail", "call"), ("jfail", "helper")]:
        kinds = [row.split("\t")[2] for row in listed.splitlines() if row.startswith(f"agent/x.c:{line_of(marker)}\t")]
        expect(f"line {marker}: kinds", set(kinds), {kind})

sys.exit(1 if failures else 0)
