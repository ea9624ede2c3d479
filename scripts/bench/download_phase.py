#!/usr/bin/env python3
"""Times the download phase of a cold `envpack build`: from its "fetching CPython for …" line
to its first "assembling" line (every input is gathered before any platform is assembled),
then stops the build, whose assembly is measured elsewhere. Prints the seconds.

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
    elif "assembling" in line:
        proc.kill()
        proc.wait()
        if start is None:
            sys.exit("download_phase: no fetching line before the first assembling line")
        print(f"{now - start:.3f}")
        sys.exit(0)
code = proc.wait()
sys.exit(f"download_phase: the build ended (exit {code}) before assembling anything")
