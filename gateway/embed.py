#!/usr/bin/env python3
"""Writes a C file that embeds static files: embed.py OUT.c NAME=PATH[:CONTENT_TYPE]..."""
import sys

out, specs = sys.argv[1], sys.argv[2:]
lines = ['/* Generated at build time from static/: the files the gateway serves itself. */',
         '#include "static_files.h"', '']
entries = []
for i, spec in enumerate(specs):
    name, rest = spec.split("=", 1)
    path, ctype = rest.rsplit(":", 1)
    data = open(path, "rb").read()
    body = ",".join(str(b) for b in data)
    lines.append(f"static const unsigned char file_{i}[] = {{{body}}};")
    entries.append(f'    {{"{name}", "{ctype}", file_{i}, {len(data)}}},')
lines.append("const wsg_static_file_t wsg_static_files[] = {")
lines += entries
lines.append("    {0, 0, 0, 0},")
lines.append("};")
open(out, "w").write("\n".join(lines) + "\n")
