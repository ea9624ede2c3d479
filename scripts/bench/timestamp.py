#!/usr/bin/env python3
"""Prefixes each line of stdin with the seconds since this filter started (for phase timings)."""
import sys
import time

start = time.monotonic()
for line in sys.stdin:
    print(f"{time.monotonic() - start:.2f} {line}", end="", flush=True)
