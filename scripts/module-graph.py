#!/usr/bin/env python3
"""The import graph between the modules of src/ (each layer folder's files and folders), and a check that it has no cycle.

    scripts/module-graph.py [SRC_DIR]

Prints one line per module, "module -> the modules it uses", then exits non-zero naming every
cycle (a group of modules that reach each other). A module is a file `src/X.rs` or a folder
`src/X/`; a use is any `crate::X` path (`use crate::X::..`, `use crate::{X, Y::..}`, or an
inline `crate::X::f()`), and `extpy::X` from the binary (`main.rs`, shown as `main`).
Comments are ignored; test code counts like any other, since a cycle through a test module
still ties two modules together.
"""

import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"(^|[^:\"])//.*$", r"\1", line) for line in text.splitlines())


def top_level_names(group: str) -> list[str]:
    """The first segment of each path in the body of a `{...}` use group."""
    return [m.group(0) for item in split_top(group) if (m := re.match(IDENT, item))]


def uses(text: str, root: str, layers: set[str]) -> set[str]:
    """Every module a file reaches through `root::` (`crate` or `extpy`): the first segment,
    or `layer::module` when the first segment is a layer folder."""
    found = set()

    def add(item: str) -> None:
        m = re.match(rf"({IDENT})(?:\s*::\s*(\{{|{IDENT}))?", item)
        if not m:
            return
        head, sub = m.group(1), m.group(2)
        if head not in layers:
            found.add(head)
        elif sub is None or sub == "self":
            found.add(head)
        elif sub != "{":
            found.add(f"{head}::{sub}")
        else:
            start = item.index("{", m.start(2)) + 1
            depth, i = 1, start
            while i < len(item) and depth:
                depth += {"{": 1, "}": -1}.get(item[i], 0)
                i += 1
            for name in top_level_names(item[start : i - 1]):
                found.add(f"{head}::{name}" if name != "self" else head)

    for m in re.finditer(rf"\b{root}::(\{{|{IDENT}(?:\s*::\s*(?:\{{|{IDENT}))?)", text):
        if not m.group(1).startswith("{"):
            item = m.group(1)
            if item.endswith("{"):
                depth, i = 1, m.end()
                while i < len(text) and depth:
                    depth += {"{": 1, "}": -1}.get(text[i], 0)
                    i += 1
                item = item + text[m.end() : i]
            add(item)
            continue
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        for part in split_top(text[m.end() : i - 1]):
            add(part)
    return found


def split_top(group: str) -> list[str]:
    """The items of a `{...}` use group, split at its top-level commas."""
    items, depth, start = [], 0, 0
    for i, c in enumerate(group + ","):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "," and depth == 0:
            if group[start:i].strip():
                items.append(group[start:i].strip())
            start = i + 1
    return items


def graph(src: Path) -> dict[str, set[str]]:
    """Modules are the files and folders of each layer folder (`src/L/M.rs`, `src/L/M/`, named
    `L::M`) and the top-level files beside `lib.rs`."""
    layers = {p.name for p in src.iterdir() if p.is_dir()}
    files: dict[str, list[Path]] = {}
    for p in src.glob("*.rs"):
        if p.stem not in ("lib", "main"):
            files[p.stem] = [p]
    for layer in layers:
        for p in (src / layer).iterdir():
            if p.name == "mod.rs":
                continue
            name = f"{layer}::{p.stem}"
            files[name] = [p] if p.is_file() else sorted(p.rglob("*.rs"))
    modules = set(files)
    edges = {m: set() for m in sorted(modules)}
    for module, paths in files.items():
        for f in paths:
            edges[module] |= uses(strip_comments(f.read_text()), "crate", layers) & modules
        edges[module].discard(module)
    main = src / "main.rs"
    if main.is_file():
        edges["main"] = uses(strip_comments(main.read_text()), "extpy", layers) & modules
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


def main() -> int:
    src = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "src")
    edges = graph(src)
    width = max(map(len, edges))
    for module, targets in edges.items():
        print(f"{module:<{width}} -> {', '.join(sorted(targets)) or '(nothing)'}")
    found = cycles(edges)
    for component in found:
        involved = {m: sorted(edges[m] & set(component)) for m in component}
        detail = "; ".join(f"{m} -> {', '.join(t)}" for m, t in involved.items())
        print(f"error: import cycle between {', '.join(component)} ({detail})", file=sys.stderr)
    if found:
        print(
            "help: make the lower module own what both need (see the layers in README.md)",
            file=sys.stderr,
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
