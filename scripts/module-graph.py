#!/usr/bin/env python3
"""The import graph of src/, and a check that it has no cycle and keeps the layers of lib.rs.

    scripts/module-graph.py [--files] [SRC_DIR]

Prints one line per module, "module -> the modules it uses" (with --files, one per file),
then checks three things and
exits non-zero naming each failure:

- no cycle between modules: a module is a file `src/L/M.rs` or a folder `src/L/M/` of a layer
  folder `L` (the folder's files taken together), or a file beside `lib.rs`;
- no cycle between files: every `.rs` file is its own node, so a folder's `mod.rs` and its
  children, or two children, cannot use each other either;
- the layers: a file of a layer uses only its own layer and the layers listed before it in
  the `//! - `layer`:` lines of `lib.rs`.

A use is any path through `crate::` (`use crate::X::..`, `use crate::{X, Y::..}`, or an inline
`crate::X::f()`), `super::` and `self::`, a child module a file declares (`mod c;` then
`c::f`), and `extpy::X` from the binary (`main.rs`, shown as `main`). A path names the file of
its longest prefix that is a module; an inline `mod tests { use super::*; }` is part of its
file. Comments and string literals are ignored; test code counts like any other, since a
cycle through a test module still ties two files together.
"""

import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


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


def code_only(text: str) -> str:
    """`text` with its comments removed and each string and character literal emptied, read
    as the Rust lexer reads them (nested block comments, raw strings, `'"'`, lifetimes)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c, two = text[i], text[i : i + 2]
        if two == "//":
            while i < n and text[i] != "\n":
                i += 1
        elif two == "/*":
            depth, i = 1, i + 2
            while i < n and depth:
                depth += {"/*": 1, "*/": -1}.get(text[i : i + 2], 0)
                i += 2 if text[i : i + 2] in ("/*", "*/") else 1
        elif m := re.compile(r'b?r(#*)"').match(text, i):
            if i and (text[i - 1].isalnum() or text[i - 1] == "_"):
                out.append(c)
                i += 1
                continue
            end = text.find('"' + m.group(1), m.end())
            out.append('""')
            i = n if end < 0 else end + 1 + len(m.group(1))
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            out.append('""')
            i += 1
        elif m := re.compile(r"'(?:\\[^']{1,10}|[^'\\\n])'").match(text, i):
            out.append("' '")
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def closing(text: str, i: int) -> int:
    """The index just past the brace that closes the one before `i`."""
    depth = 1
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return i


def paths_at(text: str, i: int) -> list[list[str]]:
    """The paths that start at `text[i]` (just after `root::`), each `{...}` group expanded."""
    segments: list[str] = []
    segment = re.compile(rf"{IDENT}|\*")
    separator = re.compile(r"\s*::\s*")
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i < len(text) and text[i] == "{":
            end = closing(text, i + 1)
            return [
                segments + tail
                for item in split_top(text[i + 1 : end - 1])
                for tail in paths_at(item, 0)
            ]
        m = segment.match(text, i)
        if not m:
            return [segments]
        segments.append(m.group(0))
        m2 = separator.match(text, m.end())
        if not m2:
            return [segments]
        i = m2.end()


def module_path(src: Path, file: Path) -> tuple[str, ...]:
    """`src/job/fetch.rs` is `("job", "fetch")`, `src/job/lock/mod.rs` `("job", "lock")`."""
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts == ["lib"]:
        return ()
    if parts[-1] == "mod":
        parts.pop()
    return tuple(parts)


def file_graph(src: Path) -> dict[str, set[str]]:
    """Every `.rs` file of the library (by its module path, `crate` for lib.rs) and the files
    its paths name."""
    files = {module_path(src, p): p for p in sorted(src.rglob("*.rs")) if p.name != "main.rs"}
    edges: dict[tuple[str, ...], set[tuple[str, ...]]] = {f: set() for f in files}
    for module, path in files.items():
        text = code_only(path.read_text())
        inline = [
            (m.start(), closing(text, m.end()), m.group(1))
            for m in re.finditer(rf"\bmod\s+({IDENT})\s*\{{", text)
        ]
        children = set(re.findall(rf"\bmod\s+({IDENT})\s*;", text))
        heads = "|".join(["crate", "super", "self", *map(re.escape, sorted(children))])
        for m in re.finditer(rf"(?<![:\w])({heads})\s*::", text):
            here = module + tuple(name for start, end, name in inline if start <= m.start() < end)
            head, i = m.group(1), m.end()
            if head == "crate":
                base: tuple[str, ...] = ()
            elif head == "self":
                base = here
            elif head == "super":
                base = here[:-1]
                while more := re.compile(r"\s*super\s*::").match(text, i):
                    base, i = base[:-1], more.end()
            else:
                base = module + (head,)
            for segments in paths_at(text, i):
                full = base + tuple(s for s in segments if s not in ("self", "*"))
                target = next((full[:k] for k in range(len(full), -1, -1) if full[:k] in files), None)
                if target is not None and target != module:
                    edges[module].add(target)
    name = lambda m: "::".join(m) or "crate"
    return {name(f): {name(t) for t in targets} for f, targets in edges.items()}


def layer_order(src: Path) -> list[str]:
    """The layers as `lib.rs` lists them (`//! - `base`: ...`), lowest first."""
    return re.findall(r"^//! - `(\w+)`:", (src / "lib.rs").read_text(), flags=re.M)


def layer_violations(files: dict[str, set[str]], order: list[str]) -> list[tuple[str, str]]:
    """Each use of a file from a layer listed after its own."""
    rank = {layer: i for i, layer in enumerate(order)}
    return sorted(
        (f, t)
        for f, targets in files.items()
        for t in targets
        if f.split("::")[0] in rank
        and t.split("::")[0] in rank
        and rank[t.split("::")[0]] > rank[f.split("::")[0]]
    )


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
            edges[module] |= uses(code_only(f.read_text()), "crate", layers) & modules
        edges[module].discard(module)
    main = src / "main.rs"
    if main.is_file():
        edges["main"] = uses(code_only(main.read_text()), "extpy", layers) & modules
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


def report_cycles(edges: dict[str, set[str]], what: str) -> bool:
    found = cycles(edges)
    for component in found:
        involved = {m: sorted(edges[m] & set(component)) for m in component}
        detail = "; ".join(f"{m} -> {', '.join(t)}" for m, t in involved.items())
        print(f"error: import cycle between {what} {', '.join(component)} ({detail})", file=sys.stderr)
    return bool(found)


def main() -> int:
    args = sys.argv[1:]
    by_file = "--files" in args
    args = [a for a in args if a != "--files"]
    src = Path(args[0] if args else Path(__file__).resolve().parent.parent / "src")
    edges = graph(src)
    files = file_graph(src)
    shown = files if by_file else edges
    width = max(map(len, shown))
    for module, targets in sorted(shown.items()):
        print(f"{module:<{width}} -> {', '.join(sorted(targets)) or '(nothing)'}")
    failed = report_cycles(edges, "the modules")
    failed |= report_cycles(files, "the files")
    order = layer_order(src)
    for f, t in layer_violations(files, order):
        print(
            f"error: {f} uses {t}, a layer listed after its own (lib.rs lists the layers, lowest first: {', '.join(order)})",
            file=sys.stderr,
        )
        failed = True
    if failed:
        print(
            "help: make the lower module own what both need (see the layers in src/lib.rs)",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
