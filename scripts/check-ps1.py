#!/usr/bin/env python3
"""Checks PowerShell scripts as Windows PowerShell 5.1 will read them.

Each file must be ASCII or start with a UTF-8 BOM (5.1 reads a BOM-less file in the ANSI
code page, so a non-ASCII byte changes meaning), and must parse with the PowerShell grammar
of tree-sitter-powershell without an ERROR or MISSING node. Every problem is printed as
FILE:LINE:COLUMN; the exit code is 1 when there is one.

    python3 scripts/check-ps1.py scripts/get-py.ps1 [more.ps1 ...]
"""
import sys

import tree_sitter
import tree_sitter_powershell

BOM = b"\xef\xbb\xbf"


def encoding_problems(path, data):
    if data.startswith(BOM):
        return []
    for offset, byte in enumerate(data):
        if byte > 0x7F:
            line = data.count(b"\n", 0, offset) + 1
            column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
            return [
                f"{path}:{line}:{column}: byte 0x{byte:02X} is not ASCII and the file has no "
                "UTF-8 BOM: Windows PowerShell 5.1 reads it in the ANSI code page; "
                "write ASCII, or save the file as UTF-8 with BOM"
            ]
    return []


def syntax_problems(path, data):
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    tree = parser.parse(data)
    problems = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        inner = [child for child in node.children if child.has_error]
        # The innermost ERROR (the one without a broken child) points at the line to fix.
        if node.is_missing or (node.type == "ERROR" and not inner):
            line, column = node.start_point
            what = f"missing {node.type}" if node.is_missing else "syntax error"
            text = data[node.start_byte:node.end_byte].decode("utf-8", "replace")
            text = text.splitlines()[0][:60] if text.strip() else ""
            problems.append((line + 1, column + 1, f"{what} near {text!r}"))
        stack.extend(reversed(inner))
    return [f"{path}:{l}:{c}: {m}" for l, c, m in sorted(problems)]


def main(paths):
    if not paths:
        print("usage: check-ps1.py FILE.ps1 ...", file=sys.stderr)
        return 2
    problems = []
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        problems += encoding_problems(path, data)
        problems += syntax_problems(path, data[len(BOM):] if data.startswith(BOM) else data)
    for p in problems:
        print(p)
    if not problems:
        print(f"ok: {len(paths)} PowerShell file(s) are ASCII or UTF-8 with BOM and parse")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
