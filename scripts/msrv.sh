#!/usr/bin/env bash
# Fails when a workspace package declares an older `rust-version` than its dependencies need.
#
# For each workspace package: the highest `rust-version` over what it builds with all features
# (its normal, build and dev dependencies, then theirs, for this host's platform), as locked in
# Cargo.lock. A workspace package met on the way counts with its own declared value and is not
# walked into: its own check covers it. Declaring more than the dependencies need is allowed
# (the package's own code may need it) and is reported.
#
# Usage: ./scripts/msrv.sh
set -euo pipefail
cd "$(dirname "$0")/.."

host=$(rustc -vV | sed -n 's/^host: //p')
cargo metadata --format-version 1 --all-features --locked --filter-platform "$host" |
    python3 -c '
import json
import sys

meta = json.load(sys.stdin)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
members = set(meta["workspace_members"])


def version(text):
    """`1.88` as (1, 88, 0), so it equals `1.88.0`."""
    parts = [int(part) for part in text.split(".")] if text else []
    return tuple(parts + [0] * (3 - len(parts)))


def needs(member):
    """The dependency of `member` with the highest rust-version, and that version."""
    seen, stack, top = set(), [member], (None, (0,))
    while stack:
        node = stack.pop()
        for dep in nodes[node]["deps"]:
            kinds = {kind["kind"] or "normal" for kind in dep["dep_kinds"]}
            # Dev dependencies are built only for the package under test.
            if node != member and kinds <= {"dev"}:
                continue
            if dep["pkg"] in seen:
                continue
            seen.add(dep["pkg"])
            needed = version(packages[dep["pkg"]].get("rust_version"))
            if needed > top[1]:
                top = (dep["pkg"], needed)
            if dep["pkg"] not in members:
                stack.append(dep["pkg"])
    return top


failed = False
for member in sorted(members, key=lambda m: packages[m]["name"]):
    package = packages[member]
    declared = package.get("rust_version")
    dep, needed = needs(member)
    if dep is None:
        continue
    want = packages[dep].get("rust_version")
    by = "{} {}".format(packages[dep]["name"], packages[dep]["version"])
    if declared is None or version(declared) < needed:
        print("{}: rust-version {} but {} needs {}".format(package["name"], declared, by, want))
        failed = True
    elif version(declared) > needed:
        print("{}: rust-version {} (dependencies need {}, {})".format(package["name"], declared, want, by))
    else:
        print("{}: rust-version {}, as {} needs".format(package["name"], declared, by))
sys.exit(1 if failed else 0)
'
