#!/usr/bin/env python3
"""Reads the dependency list cargo auditable embeds in an executable (the .dep-v0 section of
an ELF or PE file: zlib-compressed JSON) and checks it against Cargo.lock: the root is extpy
at the crate's version, every embedded package is locked at that version, and what the
executable links (rustls, ring, reqwest) is listed. Prints one summary line.

    scripts/audit-data.py EXECUTABLE Cargo.lock
"""
import json
import struct
import sys
import tomllib
import zlib


def elf_section(data, name):
    if data[4] != 2 or data[5] != 1:
        sys.exit("audit-data: only 64-bit little-endian ELF files are read")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    def header(i):
        return struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
    strtab = header(shstrndx)
    for i in range(shnum):
        h = header(i)
        start = strtab[4] + h[0]
        sname = data[start:data.index(b"\0", start)].decode()
        if sname == name:
            return data[h[4]:h[4] + h[5]]
    return None


def pe_section(data, name):
    pe, = struct.unpack_from("<I", data, 0x3C)
    if data[pe:pe + 4] != b"PE\0\0":
        sys.exit("audit-data: not a PE file")
    nsections, = struct.unpack_from("<H", data, pe + 6)
    optsize, = struct.unpack_from("<H", data, pe + 20)
    table = pe + 24 + optsize
    for i in range(nsections):
        off = table + 40 * i
        raw = data[off:off + 8].rstrip(b"\0")
        if raw.startswith(b"/"):  # a long name lives in the COFF string table
            symtab, nsyms = struct.unpack_from("<II", data, pe + 12)
            start = symtab + 18 * nsyms + int(raw[1:])
            raw = data[start:data.index(b"\0", start)]
        vsize, _, rawsize, rawptr = struct.unpack_from("<IIII", data, off + 8)
        if raw.decode() == name:
            return data[rawptr:rawptr + min(vsize, rawsize) if vsize else rawsize]
    return None


def main():
    exe, lock = sys.argv[1], sys.argv[2]
    data = open(exe, "rb").read()
    find = elf_section if data[:4] == b"\x7fELF" else pe_section
    section = find(data, ".dep-v0")
    if section is None:
        sys.exit(f"audit-data: {exe} has no .dep-v0 section\n"
                 "help: build it with `cargo auditable build --release`")
    doc = json.loads(zlib.decompress(section))
    packages = doc["packages"]
    locked = {(p["name"], p["version"]) for p in tomllib.load(open(lock, "rb"))["package"]}
    roots = [p for p in packages if p.get("root")]
    problems = []
    if [p["name"] for p in roots] != ["extpy"]:
        problems.append(f"the root is {[p['name'] for p in roots]}, not extpy")
    for p in packages:
        if (p["name"], p["version"]) not in locked:
            problems.append(f"{p['name']} {p['version']} is not in {lock}")
    names = {p["name"] for p in packages}
    for needed in ("rustls", "ring", "reqwest", "zip", "sha2"):
        if needed not in names:
            problems.append(f"{needed} is missing from the embedded list")
    if problems:
        sys.exit("audit-data: " + "\naudit-data: ".join(problems))
    runtime = sum(1 for p in packages if p.get("kind", "runtime") == "runtime")
    print(f"audit-data: {exe}: {len(packages)} packages embedded ({runtime} linked, "
          f"the rest build-time), root extpy {roots[0]['version']}, all locked in {lock}")


main()
