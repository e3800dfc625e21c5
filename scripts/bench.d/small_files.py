#!/usr/bin/env python3
"""Create COUNT files of SIZE bytes in DIR, one open/write/close each, as an unpacker or an
editor saving many files would. Usage: small_files.py DIR COUNT SIZE
"""
import os
import sys

directory, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# Distinct content per file, so no layer can fold identical files together.
body = os.urandom(size)
for i in range(count):
    with open(os.path.join(directory, f"f{i:06d}"), "wb") as f:
        f.write(i.to_bytes(8, "little") + body[8:])
