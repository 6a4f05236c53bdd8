#!/usr/bin/env python3
"""Every place in the agent's C code that raises a HEALER_ERROR_* code, and (with gcovr's JSON)
how many of them the tests ran.

    scripts/error-sites.py [--list] [--coverage COVERAGE.json] [DIR...]      (default DIR: agent)

Without --coverage: the number of raise sites per code.  With it (gcovr --json, as
scripts/coverage.sh writes it): per code, sites, sites executed and the share.  --list prints
every site (file:line, code, kind, count) as well.

What counts as a raise site (the code base raises in three ways; docs/testing.md, "Coverage"):
  call    a GLib raising call naming the code: g_set_error, g_set_error_literal, g_error_new,
          g_error_new_literal, g_task_return_new_error, g_dbus_method_invocation_return_error
          (and _literal).  A code argument "a ? HEALER_ERROR_X : HEALER_ERROR_Y" is a site of each.
  helper  a call of healer_json_fail() (a macro raising INVALID_DATA; healer_fail(), which takes
          the code, counts as a GLib raising call), or of a file's own raising helper: a
          function named fail() or *set_*error()
          (the code base's names for them).  A static one whose raising calls all name one code
          (catalog.c's fail(): INVALID_DATA) is that code's helper: each call of it
          in the file is a site, the helper's own body is not.  A function that raises with a
          code taken from its parameters (http-curl.c's transfer_set_error(), bundle.c's fail()):
          each call of it naming a code literally is a site of that code.
  value   the code chosen into a variable or returned by a mapping function ("code =
          HEALER_ERROR_IO", "return HEALER_ERROR_NOT_FOUND"), raised later with the variable.
          Such a line runs when the code is chosen; a default that is later overwritten
          ("HealerError code = HEALER_ERROR_IO;" then "code = ..._NOT_FOUND") counts as run
          whenever its function ran, so "value" sites can overstate a little.
Not sites: g_error_matches() and other tests of a code, case labels, loop bounds, comments.
A site ran when a line from its call to the end of the statement has a gcov count > 0 (a
ternary's codes share that line: both count as run when it ran); a site in a file gcov has no data
for (not built into anything the tests run) counts as not run.
"""
import argparse
import json
import os
import re
import sys

RAISERS = {
    "g_set_error": 2,  # index of the code argument
    "g_set_error_literal": 2,
    "g_error_new": 1,
    "g_error_new_literal": 1,
    "g_task_return_new_error": 2,
    "g_dbus_method_invocation_return_error": 2,
    "g_dbus_method_invocation_return_error_literal": 2,
    "healer_fail": 1,  # libhealer's printf-style raiser (healer-error.h)
}
# Raisers whose code is fixed by their name (macros over healer_fail()): each call is a site.
FIXED_RAISERS = {
    "healer_json_fail": "HEALER_ERROR_INVALID_DATA",  # healer-json.h
}
# The code base's raising helpers are called fail() or *set_*error(); other functions that raise
# (parse_one(), on_hello()...) raise only on some paths, so calling them is not raising.
HELPER_NAME = re.compile(r"^(fail|\w*set_\w*error)$")
CODE = re.compile(r"\bHEALER_ERROR_[A-Z_]+\b")
IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def blank_comments_and_strings(text):
    """The text with comments, string and character literals replaced by spaces (newlines kept),
    so offsets and line numbers stay those of the file."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j += 1
            i += 1  # keep the quotes themselves
            j -= 1
        else:
            i += 1
            continue
        for k in range(i, min(j, n)):
            if out[k] != "\n":
                out[k] = " "
        i = j + 1 if c in "\"'" else j
    return "".join(out)


def split_args(text, open_paren):
    """The top-level arguments of the call whose "(" is at open_paren: [(start, end)], and the
    offset of its ")"."""
    depth, start, args = 0, open_paren + 1, []
    for i in range(open_paren, len(text)):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append((start, i))
                return args, i
        elif c == "," and depth == 1:
            args.append((start, i))
            start = i + 1
    return args, len(text)


def calls(text):
    """Every call in the text: (name, offset of name, offset of "(")."""
    for m in re.finditer(r"\b([A-Za-z_][A-Za-z_0-9]*)\s*\(", text):
        yield m.group(1), m.start(), m.end() - 1


def functions(text):
    """Function definitions at file level: name -> (parameter names, body start, body end)."""
    found = {}
    for m in re.finditer(r"^([A-Za-z_][A-Za-z_0-9]*)\s*\(", text, re.MULTILINE):
        args, close = split_args(text, m.end() - 1)
        rest = text[close + 1 :].lstrip()
        if not rest.startswith("{"):
            continue
        body = close + 1 + (len(text[close + 1 :]) - len(rest))
        depth = 0
        for end in range(body, len(text)):
            depth += text[end] == "{"
            depth -= text[end] == "}"
            if depth == 0:
                break
        params = []
        for a, b in args:
            names = IDENT.findall(text[a:b])
            if names:
                params.append(names[-1])
        found[m.group(1)] = (params, body, end)
    return found


def enclosing_call(text, offset):
    """The name of the innermost call whose parentheses hold offset, or None."""
    depth = 0
    for i in range(offset - 1, -1, -1):
        c = text[i]
        if c == ")":
            depth += 1
        elif c == "(":
            if depth == 0:
                m = re.search(r"([A-Za-z_][A-Za-z_0-9]*)\s*$", text[:i])
                return m.group(1) if m else None
            depth -= 1
        elif c in ";{}" and depth == 0:
            return None
    return None


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def statement_lines(text, start):
    """The lines from the call at offset start to the end of its statement (the next ";").  Not
    back to the statement's start: "if (bad)\n\treturn fail(...)" must not count the if's line."""
    end = text.find(";", start)
    end = len(text) if end < 0 else end
    return line_of(text, start), line_of(text, end)


def in_define(text, at):
    """Whether offset `at` is in a #define (continuation lines included)."""
    start = text.rfind("\n", 0, at) + 1
    while True:
        if text[start:].lstrip(" \t").startswith("#"):
            return True
        prev_end = start - 1
        if prev_end <= 0 or not text[:prev_end].rstrip(" \t").endswith("\\"):
            return False
        start = text.rfind("\n", 0, prev_end) + 1


def sites_in(path):
    raw = open(path, encoding="utf-8", errors="replace").read()
    text = blank_comments_and_strings(raw)
    funcs = functions(text)
    found = []  # (code, kind, first line, last line)
    claimed = set()  # offsets of code names already counted

    def add(code_span, kind, call_start):
        for m in CODE.finditer(text, *code_span):
            claimed.add(m.start())
            found.append((m.group(0), kind) + statement_lines(text, call_start))

    # Raising calls, and which functions raise.
    fixed_helpers, param_helpers = {}, {}
    raising = {}  # function name -> list of (code args text)
    for name, at, paren in calls(text):
        if name in FIXED_RAISERS and not in_define(text, at):
            found.append((FIXED_RAISERS[name], "helper") + statement_lines(text, at))
            continue
        if name not in RAISERS or in_define(text, at):
            continue  # a macro that raises is counted where it is used
        args, _ = split_args(text, paren)
        if len(args) <= RAISERS[name]:
            continue
        span = args[RAISERS[name]]
        owner = next((f for f, (_, b, e) in funcs.items() if b <= at <= e), None)
        raising.setdefault(owner, []).append((span, at))
    for owner, spans in raising.items():
        if owner is None or not HELPER_NAME.match(owner):
            continue  # an ordinary function that raises: its raising calls are the sites
        params = funcs[owner][0]
        codes = {c for span, _ in spans for c in CODE.findall(text, *span)}
        code_args = {text[slice(*span)].strip() for span, _ in spans}
        if len(codes) == 1 and all(CODE.fullmatch(a) for a in code_args) and not owner.startswith("main"):
            # Only a static helper: a public function's calls are raised from elsewhere too.
            if re.search(r"\bstatic\b[^;{}]*\n" + re.escape(owner) + r"\s*\(", text):
                fixed_helpers[owner] = codes.pop()
        elif any(a in params for a in code_args):
            param_helpers[owner] = params.index(next(a for a in code_args if a in params))

    for owner, spans in raising.items():
        for span, at in spans:
            if owner in fixed_helpers:
                for m in CODE.finditer(text, *span):
                    claimed.add(m.start())  # the helper's own body is not a site
                continue
            add(span, "call", at)
    for name, at, paren in calls(text):
        inside = next((f for f, (_, b, e) in funcs.items() if b <= at <= e), None)
        if inside is None:
            continue  # a declaration or definition at file level, not a call
        if name in fixed_helpers and inside != name:
            found.append((fixed_helpers[name], "helper") + statement_lines(text, at))
        elif name in param_helpers:
            args, _ = split_args(text, paren)
            if len(args) > param_helpers[name]:
                span = args[param_helpers[name]]
                if CODE.search(text, *span):
                    add(span, "helper", at)

    # Codes chosen into a value and raised later.
    for m in CODE.finditer(text):
        if m.start() in claimed or enclosing_call(text, m.start()) in ("g_error_matches", "for", "if", "while", "switch"):
            continue  # a test of a code, not a choice of one
        before = text[: m.start()].rstrip()
        chosen = re.search(r"(?<![=!<>])=$", before) or re.search(r"\breturn$", before) or before.endswith(("?", ":"))
        if chosen and not re.search(r"\bcase\s*$", before[:-1]):
            found.append((m.group(0), "value", line_of(text, m.start()), line_of(text, m.start())))
    return found


def load_coverage(path, root):
    with open(path) as f:
        data = json.load(f)
    counts = {}
    for entry in data.get("files", []):
        name = os.path.normpath(os.path.join(root, entry["file"]))
        counts[name] = {
            line["line_number"]: line["count"] for line in entry["lines"] if not line.get("gcovr/noncode", False)
        }
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--coverage", help="gcovr --json output")
    ap.add_argument("--root", default=None, help="the source root the JSON's paths are relative to (default: the repository)")
    ap.add_argument("--list", action="store_true", help="print every site")
    ap.add_argument("dirs", nargs="*", default=["agent"])
    opts = ap.parse_args()
    root = os.path.abspath(opts.root or os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    counts = load_coverage(opts.coverage, root) if opts.coverage else None

    sites = []
    for d in opts.dirs:
        d = d if os.path.isabs(d) else os.path.join(root, d)
        for dirpath, _, files in sorted(os.walk(d)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    path = os.path.normpath(os.path.join(dirpath, f))
                    for code, kind, first, last in sites_in(path):
                        run = None
                        if counts is not None:
                            lines = counts.get(path, {})
                            seen = [lines[n] for n in range(first, last + 1) if n in lines]
                            run = max(seen) if seen else 0
                        sites.append((code, kind, os.path.relpath(path, root), first, run))

    per_code = {}
    for code, kind, path, line, run in sites:
        s = per_code.setdefault(code, [0, 0])
        s[0] += 1
        s[1] += bool(run)
    if opts.list:
        for code, kind, path, line, run in sorted(sites, key=lambda s: (s[0], s[2], s[3])):
            print(f"{path}:{line}\t{code}\t{kind}" + ("" if run is None else f"\t{run}"))
        print()
    if counts is None:
        print(f"{'code':32} {'sites':>5}")
        for code in sorted(per_code):
            print(f"{code:32} {per_code[code][0]:5}")
        print(f"{'all':32} {len(sites):5}")
        return 0
    print(f"{'code':32} {'sites':>5} {'run':>5} {'share':>6}")
    total_run = 0
    for code in sorted(per_code):
        n, r = per_code[code]
        total_run += r
        print(f"{code:32} {n:5} {r:5} {100.0 * r / n:5.1f}%")
    print(f"{'all':32} {len(sites):5} {total_run:5} {100.0 * total_run / max(len(sites), 1):5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
