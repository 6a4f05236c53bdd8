#!/usr/bin/env python3
"""Checks JSON against the JSON Schemas a Markdown page holds (docs/mqtt.md).

A schema is a fenced block whose info string is `json schema=NAME`; an example
is one marked `json example=NAME`, checked against schema NAME.

  check-json-schema.py PAGE NAME [FILE]   FILE (default, or "-": stdin) against schema NAME
  check-json-schema.py PAGE --examples    every schema is a valid draft 2020-12 schema, every
                                          example is valid against its schema, every schema
                                          has an example

Exit status 0 when valid; 1 with every error on stderr (the JSON path and what
is wrong) when not; 2 when the page, the schema or the JSON cannot be read.
"""

import json
import re
import sys

try:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
except ImportError as e:
    print(f"check-json-schema: {e} (python3-jsonschema >= 4.0; scripts/setup.sh installs it)", file=sys.stderr)
    sys.exit(2)

FENCE_RE = re.compile(r"^```json\s+(schema|example)=([A-Za-z0-9_-]+)\s*$")


class Unusable(Exception):
    """The page, a schema or the JSON cannot be used at all (exit status 2)."""


def no_duplicate_keys(pairs):
    """json.loads hook: a key twice in one object is an error (Python would keep the last)."""
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"key {key!r} appears twice in one object")
        obj[key] = value
    return obj


def parse_json(text, where):
    try:
        return json.loads(text, object_pairs_hook=no_duplicate_keys)
    except ValueError as e:
        raise Unusable(f"{where}: not JSON: {e}") from e


def read_blocks(page):
    """{"schema": {NAME: (line, text)}, "example": [(NAME, line, text)]} from the page's fenced blocks."""
    try:
        with open(page, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError as e:
        raise Unusable(f"{page}: {e.strerror}") from e
    schemas, examples = {}, []
    i = 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if m is None:
            i += 1
            continue
        kind, name, start = m.group(1), m.group(2), i + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise Unusable(f"{page}:{start}: the {kind} block {name!r} is not closed")
        text = "\n".join(lines[start:end])
        if kind == "schema":
            if name in schemas:
                raise Unusable(f"{page}:{start}: schema {name!r} again (first at line {schemas[name][0]})")
            schemas[name] = (start, text)
        else:
            examples.append((name, start, text))
        i = end + 1
    return schemas, examples


def validator_for(page, schemas, name):
    if name not in schemas:
        known = ", ".join(sorted(schemas)) or "none"
        raise Unusable(f"{page}: no schema {name!r} (the page has: {known})")
    line, text = schemas[name]
    schema = parse_json(text, f"{page}:{line}: schema {name!r}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        raise Unusable(f"{page}:{line}: schema {name!r} is not a valid draft 2020-12 schema: {e.message}") from e
    return Draft202012Validator(schema)


def json_path(e):
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)


def errors_of(validator, instance):
    """Every error, as "PATH: message" lines in a stable order; a failed oneOf/anyOf with its branches' errors."""
    out = []
    for e in sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        out.append(f"{json_path(e)}: {e.message}")
        for sub in sorted(e.context, key=lambda s: (list(map(str, s.schema_path)), s.message)):
            branch = "/".join(map(str, sub.relative_schema_path))
            out.append(f"    ({branch}) {json_path(sub)}: {sub.message}")
    return out


def check_one(page, name, source):
    schemas, _ = read_blocks(page)
    validator = validator_for(page, schemas, name)
    try:
        text = sys.stdin.read() if source == "-" else open(source, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as e:
        raise Unusable(f"{source}: {e}") from e
    errors = errors_of(validator, parse_json(text, source))
    for error in errors:
        print(f"{source}: not a valid {name!r}: {error}", file=sys.stderr)
    return 1 if errors else 0


def check_examples(page):
    schemas, examples = read_blocks(page)
    if not schemas:
        raise Unusable(f"{page}: no schema blocks")
    failed = 0
    validators = {name: validator_for(page, schemas, name) for name in schemas}
    for name, line, text in examples:
        if name not in validators:
            raise Unusable(f"{page}:{line}: an example of {name!r}, which has no schema")
        for error in errors_of(validators[name], parse_json(text, f"{page}:{line}: example {name!r}")):
            print(f"{page}:{line}: example not a valid {name!r}: {error}", file=sys.stderr)
            failed = 1
    for name in sorted(set(schemas) - {name for name, _, _ in examples}):
        print(f"{page}: schema {name!r} has no example", file=sys.stderr)
        failed = 1
    if not failed:
        print(f"{page}: {len(schemas)} schemas, {len(examples)} examples, all valid")
    return failed


def main(argv):
    try:
        if len(argv) == 3 and argv[2] == "--examples":
            return check_examples(argv[1])
        if len(argv) in (3, 4):
            return check_one(argv[1], argv[2], argv[3] if len(argv) == 4 else "-")
    except Unusable as e:
        print(e, file=sys.stderr)
        return 2
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
