#!/usr/bin/env python3
"""Downloads with pip the files a five-platform lock pins, as a user without envpack would: one
`pip download --no-deps` per platform with that platform's tags, each file once (a file two
platforms share goes with the first), the sdists and their build packages in a last run.

  pip_download.py PYTHON LOCK INDEX_URL DEST
"""
import subprocess
import sys
import tomllib

python, lock_path, index, dest = sys.argv[1:5]
with open(lock_path, "rb") as f:
    lock = tomllib.load(f)
base = index.rstrip("/").rsplit("/simple", 1)[0] + "/files/"
seen = set()
plain = []
for platform in lock.get("platform", []):
    wheels, tags = [], set()
    for pkg in platform.get("package", []):
        name = pkg["filename"]
        if name in seen:
            continue
        seen.add(name)
        if name.endswith(".whl"):
            wheels.append(base + name)
            tags.update(name[:-4].rsplit("-", 1)[1].split("."))
        else:
            plain.append(base + name)
    if not wheels:
        continue
    flags = ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--abi", "abi3", "--abi", "none"]
    for t in sorted(tags):
        flags += ["--platform", t]
    subprocess.run([python, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                    "--no-cache-dir", "--no-deps", "--only-binary=:all:", *flags, "-d", dest, *wheels], check=True)
for pkg in lock.get("build-package", []):
    if pkg["filename"] not in seen:
        seen.add(pkg["filename"])
        plain.append(base + pkg["filename"])
if plain:
    subprocess.run([python, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                    "--no-cache-dir", "--no-deps", "--no-build-isolation", "-d", dest, *plain], check=True)
