#!/usr/bin/env python3
"""The source tree's layering (docs/architecture.md, "Layers"):

- device-firmware/ depends on nothing of agent/: no file under it includes a
  header that lives under agent/, no meson build file under it names agent/
  or one of agent/'s libraries, and no target it defines compiles with an
  include directory under agent/.  (agent/ using device-firmware/, the module
  format and the shared common/ code, is the allowed direction.)
- The folders agent/lib, agent/daemon, agent/cli, agent/tools, agent/modules
  and device-firmware include each other without a cycle.

Every #include of every file the build compiles (and of every header those
include) is resolved as the compiler does: a quoted include first in the
including file's directory, then in the translation unit's -iquote, -I and
-isystem directories, in order (from the build's compile_commands.json).  The
folder-level graph has an edge A -> B when a file in A includes a file in B.

  check-layering.py SOURCE_ROOT COMPILE_COMMANDS_JSON

Exit status 0 when the layering holds; 1, printing every violation (and a
cycle as "A -> B -> A", each arrow with one include that makes it), when not.
"""

import json
import os
import re
import shlex
import sys

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
# What device-firmware's meson build may not name: agent's folders and the libraries built there.
AGENT_IN_MESON_RE = re.compile(r"agent/|\blibhealer\w*|\bhealerd_core\w*")


def folder_of(path, root):
    """The layering folder a file belongs to ("agent/lib", "device-firmware"), or None."""
    rel = os.path.relpath(path, root)
    parts = rel.split(os.sep)
    if parts[0] == "device-firmware":
        return "device-firmware"
    if parts[0] == "agent" and len(parts) > 2:
        return "agent/" + parts[1]
    return None


def include_dirs(entry):
    """The translation unit's include directories: (quote-only dirs, all-include dirs), absolute."""
    args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
    base = entry["directory"]
    quote, normal = [], []
    i = 0
    while i < len(args):
        arg = args[i]
        for flag, into in (("-iquote", quote), ("-isystem", normal), ("-I", normal)):
            if arg.startswith(flag):
                value = arg[len(flag):]
                if value == "" and i + 1 < len(args):
                    i += 1
                    value = args[i]
                into.append(os.path.normpath(os.path.join(base, value)))
                break
        i += 1
    return quote, normal


def read_includes(path, cache):
    if path not in cache:
        found = []
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for number, line in enumerate(f, 1):
                    m = INCLUDE_RE.match(line)
                    if m:
                        found.append((number, m.group(1), m.group(2)))
        except OSError:
            pass
        cache[path] = found
    return cache[path]


def resolve(including, kind, name, quote_dirs, dirs):
    candidates = []
    if kind == '"':
        candidates.append(os.path.dirname(including))
        candidates.extend(quote_dirs)
    candidates.extend(dirs)
    for d in candidates:
        p = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(p):
            return p
    return None


def collect_edges(root, commands):
    """{(from_folder, to_folder): "file:line includes target"} over every translation unit."""
    edges = {}
    cache = {}
    for entry in commands:
        source = os.path.normpath(os.path.join(entry["directory"], entry["file"]))
        quote_dirs, dirs = include_dirs(entry)
        seen = set()
        stack = [source]
        while stack:
            path = stack.pop()
            if path in seen:
                continue
            seen.add(path)
            for number, kind, name in read_includes(path, cache):
                target = resolve(path, kind, name, quote_dirs, dirs)
                if target is None or not target.startswith(root + os.sep):
                    continue  # the system's headers, or one generated into the build tree
                stack.append(target)
                a, b = folder_of(path, root), folder_of(target, root)
                if a is not None and b is not None and a != b and (a, b) not in edges:
                    edges[(a, b)] = "%s:%d includes %s" % (
                        os.path.relpath(path, root), number, os.path.relpath(target, root))
    return edges


def find_cycles(edges):
    """One cycle per strongly connected component of more than one folder, as a list of folders."""
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []

    def strongconnect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(set(scc))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)

    cycles = []
    for scc in sccs:
        start = min(scc)
        # Breadth-first inside the component for the shortest way from start back to start.
        previous = {}
        frontier = [start]
        done = False
        while frontier and not done:
            following = []
            for v in frontier:
                for w in sorted(graph[v] & scc):
                    if w == start:
                        path = [v]
                        while path[-1] != start:
                            path.append(previous[path[-1]])
                        cycles.append(list(reversed(path)) + [start])
                        done = True
                        break
                    if w not in previous:
                        previous[w] = v
                        following.append(w)
                if done:
                    break
            frontier = following
    return cycles


def firmware_meson_faults(root):
    faults = []
    for directory, _, files in os.walk(os.path.join(root, "device-firmware")):
        for name in files:
            if name not in ("meson.build", "meson_options.txt", "meson.options"):
                continue
            path = os.path.join(directory, name)
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    code = line.split("#", 1)[0]
                    m = AGENT_IN_MESON_RE.search(code)
                    if m:
                        faults.append("%s:%d names %s: %s" % (
                            os.path.relpath(path, root), number, m.group(0), line.strip()))
    return faults


def firmware_include_dir_faults(root, commands):
    """Targets defined under device-firmware/ (their objects are built under build/device-firmware/)."""
    faults = []
    agent = os.path.join(root, "agent")
    for entry in commands:
        if not entry.get("output", "").startswith("device-firmware/"):
            continue
        quote_dirs, dirs = include_dirs(entry)
        for d in quote_dirs + dirs:
            if d == agent or d.startswith(agent + os.sep):
                faults.append("%s is compiled with the include directory %s" % (
                    entry["file"], os.path.relpath(d, root)))
    return faults


def main():
    if len(sys.argv) != 3:
        print("usage: check-layering.py SOURCE_ROOT COMPILE_COMMANDS_JSON", file=sys.stderr)
        return 2
    root = os.path.realpath(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        commands = json.load(f)
    for entry in commands:
        entry["directory"] = os.path.realpath(entry["directory"])

    edges = collect_edges(root, commands)
    faults = []
    for (a, b), example in sorted(edges.items()):
        if a == "device-firmware" and b.startswith("agent/"):
            faults.append("device-firmware depends on %s: %s" % (b, example))
    faults += firmware_meson_faults(root)
    faults += firmware_include_dir_faults(root, commands)
    for cycle in find_cycles(edges):
        faults.append("include cycle: " + " -> ".join(cycle))
        for a, b in zip(cycle, cycle[1:]):
            faults.append("  %s -> %s: %s" % (a, b, edges[(a, b)]))

    print("# folder include graph (%d translation units)" % len(commands))
    for (a, b), example in sorted(edges.items()):
        print("#   %s -> %s (%s)" % (a, b, example))
    if not any(a == "device-firmware" or b == "device-firmware" for a, b in edges):
        faults.append("no include into or out of device-firmware found: is %s this tree's build?" % sys.argv[2])
    for fault in faults:
        print(fault)
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
