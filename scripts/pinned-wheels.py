#!/usr/bin/env python3
"""Requirement lines (`name==version --hash=sha256:...`) for some of a manifest's pinned wheels.

    scripts/pinned-wheels.py MANIFEST NAME...

Reads the `file:` / `sha256:` pairs of the manifest (the `wheels:` list and the `truststore:`
section) and prints one line per wheel whose project is among NAMEs, for
`pip download --require-hashes -r`: pip then fetches exactly the pinned file and checks its
sha256. Exits non-zero when a NAME is not pinned.
"""

import re
import sys


def pins(text: str) -> dict[str, tuple[str, str]]:
    found, file = {}, None
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip().removeprefix("- ")
        m = re.fullmatch(r"file:\s*(\S+\.whl)", line)
        if m:
            file = m.group(1)
            continue
        m = re.fullmatch(r"sha256:\s*([0-9a-f]{64})", line)
        if m and file:
            name, version = file.split("-")[:2]
            found[re.sub(r"[-_.]+", "-", name).lower()] = (f"{name}=={version}", m.group(1))
            file = None
    return found


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        found = pins(f.read())
    missing = []
    for name in sys.argv[2:]:
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key not in found:
            missing.append(name)
            continue
        req, sha = found[key]
        print(f"{req} --hash=sha256:{sha}")
    if missing:
        print(f"not pinned in {sys.argv[1]}: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
