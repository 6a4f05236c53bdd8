#!/usr/bin/env python3
"""Mutation testing for healerd, run on demand (not in CI): docs/testing.md, "Mutation testing".

Each mutant in tests/mutants/mutants.list replaces one exact snippet of one source file.  The
script keeps one copy of the tree and one build of it (--workdir), applies each mutant there,
rebuilds incrementally, runs the tests the mutant names and restores the file:

  killed    a named test failed (or timed out)
  survived  every named test passed: the suite does not notice the change
  invalid   the mutant does not build (not counted either way)

A snippet that is not found exactly once, or a test name meson does not know, is an error: the
list must fail loudly rather than rot into mutants that change nothing.
"""

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIST = os.path.join(SOURCE, "tests", "mutants", "mutants.list")


class ListError(Exception):
    pass


def parse_list(path):
    """Blocks of 'key: value' lines, then <<< original === replacement >>> (each on its own line)."""
    mutants = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    cur = None
    while i < len(lines):
        line = lines[i]
        i += 1
        if cur is None:
            if not line.strip() or line.startswith("#"):
                continue
            cur = {"line": i}
        if line == "<<<":
            orig, rep, part = [], [], "orig"
            while True:
                if i >= len(lines):
                    raise ListError(f"{path}:{cur['line']}: mutant has no closing >>>")
                line = lines[i]
                i += 1
                if line == "===" and part == "orig":
                    part = "rep"
                elif line == ">>>":
                    break
                else:
                    (orig if part == "orig" else rep).append(line)
            if part != "rep":
                raise ListError(f"{path}:{cur['line']}: mutant has no === line")
            cur["original"] = "\n".join(orig)
            cur["replacement"] = "\n".join(rep)
            for key in ("id", "area", "file", "tests", "breaks"):
                if key not in cur:
                    raise ListError(f"{path}:{cur['line']}: mutant lacks '{key}:'")
            cur["tests"] = cur["tests"].split()
            mutants.append(cur)
            cur = None
            continue
        m = re.match(r"^([a-z]+):\s*(.*)$", line)
        if not m:
            raise ListError(f"{path}:{i}: expected 'key: value' or <<<, got {line!r}")
        cur[m.group(1)] = m.group(2).strip()
    if cur is not None:
        raise ListError(f"{path}:{cur['line']}: mutant has no <<< ... >>> snippet")
    ids = [m["id"] for m in mutants]
    dups = {x for x in ids if ids.count(x) > 1}
    if dups:
        raise ListError(f"{path}: duplicate ids: {', '.join(sorted(dups))}")
    return mutants


def check_snippets(mutants, tree):
    """Every original must occur exactly once in its file, and differ from its replacement."""
    problems = []
    for m in mutants:
        path = os.path.join(tree, m["file"])
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            problems.append(f"{m['id']}: {e}")
            continue
        n = text.count(m["original"])
        if n != 1:
            problems.append(f"{m['id']}: snippet found {n} times in {m['file']} (must be exactly once)")
        if m["original"] == m["replacement"]:
            problems.append(f"{m['id']}: replacement equals the original")
    return problems


def tree_files():
    """Tracked and untracked-but-not-ignored files: the tree as it is now, committed or not."""
    out = subprocess.run(["git", "-C", SOURCE, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         check=True, capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p]


def sync_copy(dest):
    """
    Copies changed files only, so the build in the copy stays incremental.  A file deleted from the
    tree stays in the copy: meson builds from its lists of files, so it is never compiled.
    """
    os.makedirs(dest, exist_ok=True)
    for rel in tree_files():
        src = os.path.join(SOURCE, rel)
        dst = os.path.join(dest, rel)
        if not os.path.isfile(src) or os.path.islink(src):
            continue
        with open(src, "rb") as f:
            data = f.read()
        try:
            with open(dst, "rb") as f:
                if f.read() == data:
                    continue
        except OSError:
            pass
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "wb") as f:
            f.write(data)
        shutil.copymode(src, dst)


def run(cmd, log, **kw):
    with open(log, "ab") as f:
        f.write(("\n$ " + " ".join(cmd) + "\n").encode())
        f.flush()
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, **kw).returncode


def build_tree(build, log):
    """
    Up to three tries, a pause between: on the shared machine ninja has stopped with "posix_spawn: No
    such file or directory" twice in a row and then built; a mutant that does not compile fails all three.
    """
    for attempt in range(3):
        if attempt:
            time.sleep(10)
        if run(["meson", "compile", "-C", build], log) == 0:
            return True
    return False


def first_failure(build):
    """The first test in meson's JSON log that did not pass: the killer."""
    path = os.path.join(build, "meson-logs", "testlog.json")
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if r.get("result") not in ("OK", "SKIP", "EXPECTEDFAIL"):
                    return f"{r.get('name')} ({r.get('result', '?').lower()})"
    except (OSError, ValueError):
        pass
    return "?"


def test_args(m):
    """testargs: NAME ARGS[; NAME ARGS]: arguments for one test (GLib's -p takes one path per run)."""
    out = {}
    for part in m.get("testargs", "").split(";"):
        words = part.split(None, 1)
        if words:
            out[words[0]] = words[1] if len(words) > 1 else ""
    return out


def run_tests(build, tests, testargs, log, multiplier):
    """Each test on its own (its own arguments); stops at the first failure."""
    for name in tests:
        cmd = ["meson", "test", "-C", build, "--no-rebuild", "--print-errorlogs",
               "--timeout-multiplier", str(multiplier)]
        if testargs.get(name):
            cmd += ["--test-args", testargs[name]]
        if run(cmd + [name], log) != 0:
            return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ids", nargs="*", help="run only these mutants (default: all)")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--check", action="store_true", help="only check that every snippet is found, and exit")
    ap.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "healerd-mutants"),
                    help="where the copy and its build live, kept between runs (default: %(default)s)")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip running the named tests on the unmutated copy first")
    ap.add_argument("--timeout-multiplier", type=float, default=1,
                    help="passed to meson test (a mutant that hangs is killed by the timeout)")
    ap.add_argument("--mutants", default=LIST, help="the list (default: %(default)s)")
    args = ap.parse_args()

    try:
        mutants = parse_list(args.mutants)
    except ListError as e:
        print(f"mutate: {e}", file=sys.stderr)
        return 2
    if args.list:
        for m in mutants:
            print(f"{m['id']:32} {m['area']:10} {m['file']}: {m['breaks']}")
            if m.get("equivalent"):
                print(f"{'':43} equivalent: {m['equivalent']}")
        return 0
    problems = check_snippets(mutants, SOURCE)
    if args.ids:
        unknown = [x for x in args.ids if x not in {m["id"] for m in mutants}]
        if unknown:
            print(f"mutate: unknown mutant ids: {', '.join(unknown)}", file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m["id"] in args.ids]
    if problems:
        for p in problems:
            print(f"mutate: {p}", file=sys.stderr)
        return 2
    if args.check:
        print(f"mutate: all {len(mutants)} snippets found")
        return 0

    src = os.path.join(args.workdir, "src")
    build = os.path.join(args.workdir, "build")
    logs = os.path.join(args.workdir, "logs")
    os.makedirs(logs, exist_ok=True)
    # One run per work directory: two would edit the same copy under each other.
    lock = open(os.path.join(args.workdir, "lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"mutate: another run holds {args.workdir}; wait for it or give --workdir", file=sys.stderr)
        return 1
    print(f"mutate: copying the tree to {src}", flush=True)
    sync_copy(src)
    setup_log = os.path.join(logs, "setup.log")
    open(setup_log, "w").close()
    if not os.path.exists(os.path.join(build, "build.ninja")):
        if run(["meson", "setup", build, src, "-Dbuildtype=debugoptimized"], setup_log) != 0:
            print(f"mutate: meson setup failed, see {setup_log}", file=sys.stderr)
            return 1
    print("mutate: building the unmutated copy", flush=True)
    if not build_tree(build, setup_log):
        print(f"mutate: the unmutated tree does not build, see {setup_log}", file=sys.stderr)
        return 1
    known = subprocess.run(["meson", "test", "-C", build, "--no-rebuild", "--list"], capture_output=True,
                           text=True, check=True).stdout.split()
    # meson lists "project:suite / name" or plain names depending on version: take the last word.
    known = {k.split("/")[-1].strip() for k in known}
    missing = sorted({t for m in mutants for t in m["tests"] if t not in known})
    if missing:
        print(f"mutate: tests named in the list that meson does not know: {', '.join(missing)}", file=sys.stderr)
        return 2

    if not args.no_baseline:
        # Each distinct (arguments, tests) the mutants run, once, on the unmutated copy: a test that
        # fails already would "kill" every mutant.
        runs = set()
        for m in mutants:
            targs = test_args(m)
            runs.update((t, targs.get(t, "")) for t in m["tests"])
        for name, targs in sorted(runs):
            print(f"mutate: baseline: {name} {targs}", flush=True)
            t0 = time.monotonic()
            if run_tests(build, [name], {name: targs}, setup_log, args.timeout_multiplier) != 0:
                print(f"mutate: the unmutated tree fails {first_failure(build)}; see {setup_log}",
                      file=sys.stderr)
                return 1
            print(f"mutate: baseline: {name} passed in {time.monotonic() - t0:.0f} s", flush=True)

    results = []
    start = time.monotonic()
    for m in mutants:
        path = os.path.join(src, m["file"])
        with open(path, encoding="utf-8") as f:
            original = f.read()
        log = os.path.join(logs, m["id"] + ".log")
        open(log, "w").close()
        t0 = time.monotonic()
        killer = ""
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(original.replace(m["original"], m["replacement"], 1))
            if not build_tree(build, log):
                result = "invalid"
            elif run_tests(build, m["tests"], test_args(m), log, args.timeout_multiplier) != 0:
                result = "killed"
                killer = first_failure(build)
            else:
                result = "survived"
        finally:
            # Restored with a new mtime (not the old one), so the next build recompiles it.
            with open(path, "w", encoding="utf-8") as f:
                f.write(original)
        secs = time.monotonic() - t0
        results.append((m, result, killer, secs))
        print(f"{m['id']:32} {result:8} {killer:32} {secs:5.0f} s", flush=True)
    # Leave the build matching the unmutated copy.
    build_tree(build, setup_log)

    total = time.monotonic() - start
    print()
    print("| id | area | file | breaks | result | killer | time |")
    print("|---|---|---|---|---|---|---|")
    for m, result, killer, secs in results:
        print(f"| {m['id']} | {m['area']} | {m['file']} | {m['breaks']} | {result} | {killer} | {secs:.0f} s |")
    valid = [r for r in results if r[1] != "invalid"]
    killed = [r for r in valid if r[1] == "killed"]
    share = 100.0 * len(killed) / len(valid) if valid else 0.0
    print()
    print(f"killed {len(killed)} of {len(valid)} valid mutants ({share:.0f} %), "
          f"{len(results) - len(valid)} invalid; {total:.0f} s in all, logs in {logs}")
    equivalent = [r for r in valid if r[1] == "survived" and r[0].get("equivalent")]
    if equivalent:
        rest = len(valid) - len(equivalent)
        print(f"without the {len(equivalent)} equivalent: killed {len(killed)} of {rest} "
              f"({100.0 * len(killed) / rest if rest else 0.0:.0f} %)")
    for m, result, _, _ in results:
        if result == "survived" and m.get("equivalent"):
            print(f"  {m['id']}: survived, equivalent: {m['equivalent']}")
        elif result == "survived" and m.get("expect"):
            print(f"  {m['id']}: survived; expected killed by {m['expect']}")
        elif result == "survived":
            print(f"  {m['id']}: SURVIVED: no test notices that {m['breaks']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
