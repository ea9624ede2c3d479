#!/usr/bin/env python3
"""Times the download phase of a cold `envpack build`: from its "fetching CPython for …" line
to the next step's line ("rebuilding … from its sdist" or "assembling …": every input is
gathered before any wheel is rebuilt or any platform assembled), then stops the build, whose
later steps are measured elsewhere. Prints the seconds.

  download_phase.py ENVPACK_ARG...
"""
import subprocess
import sys
import time

proc = subprocess.Popen(sys.argv[1:], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
start = None
for line in proc.stderr:
    now = time.monotonic()
    if start is None and "fetching CPython for" in line:
        start = now
    elif start is not None and ("assembling" in line or "rebuilding" in line):
        proc.kill()
        proc.wait()
        print(f"{now - start:.3f}")
        sys.exit(0)
code = proc.wait()
sys.exit(f"download_phase: the build ended (exit {code}) without a fetching line and a next step")
