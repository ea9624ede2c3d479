#!/usr/bin/env python3
"""Writes BENCHMARKS.md from the results directory scripts/bench.sh fills.

  report.py RESULTS_DIR OUT.md

Inputs: hyperfine JSON exports (unpack, bootstrap, build, conan), rss-*.txt (KiB from GNU time
%M), key=value files (facts, sizes, unchanged), build-cold.txt ("seconds KiB").
Ratios are always envpack / peer, so lower is better for every row.
"""
import json
import sys
from pathlib import Path

RSS_LIMIT_MB = 150


def load_hyperfine(path):
    """The results of one hyperfine export, in command order."""
    return json.loads(path.read_text())["results"]


def load_kv(path):
    """A key=value file as a dict (missing file: empty)."""
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs}


def read_int(path):
    return int(path.read_text().split()[-1])


def secs(t):
    """A duration for humans: milliseconds under a second."""
    return f"{t * 1000:.0f} ms" if t < 1 else f"{t:.2f} s"


def mb(kib):
    """KiB (GNU time %M) as decimal megabytes, the unit of the target."""
    return f"{kib * 1024 / 1e6:.1f} MB"


def cell(text):
    """Table-cell text: a bare `|` would end the cell."""
    return text.replace("|", "\\|")


def verdict(ok):
    return "**pass**" if ok else "**FAIL**"


def time_row(name, ours, peer, target_ratio, target_text):
    """A table row comparing two hyperfine results by median; no target → informational."""
    ratio = ours["median"] / peer["median"]
    speed = peer["median"] / ours["median"]
    ratio_text = (f"{ratio:.3f}" if ratio < 0.2 else f"{ratio:.2f}") + (f" ({speed:.1f}× faster)" if speed >= 1.5 else "")
    result = verdict(ratio <= target_ratio) if target_ratio is not None else "info"
    return [name, secs(ours["median"]), secs(peer["median"]), ratio_text, target_text, result]


def optional_row(res, name, label, target_ratio, target_text):
    """A time row from the hyperfine export `name` (envpack first), or None when it is absent."""
    path = res / name
    if not path.exists():
        return None
    ours, peer = load_hyperfine(path)[:2]
    return time_row(label, ours, peer, target_ratio, target_text)


def build_phases(text):
    """Stamped progress lines ("12.3 envpack: assembling x") as "12.3 s assembling x"; "built" ends."""
    out = []
    for line in text.splitlines():
        stamp, _, msg = line.partition(" ")
        if msg.startswith("envpack: "):
            out.append(f"{stamp} s {msg[len('envpack: '):]}")
        elif msg.startswith("built "):
            out.append(f"{stamp} s artifact written")
    return out


def cpu_vs_wall(r):
    """One command's CPU seconds against its wall seconds."""
    return f"{secs(r['user'] + r['system'])} CPU of {secs(r['median'])} wall"


def details(results):
    """Per-command statistics lines for the method section."""
    out = []
    for r in results:
        times = r.get("times") or []
        out.append(
            f"| {cell(r['command'])} "
            f"| {secs(r['median'])} | {secs(r['mean'])} ± {secs(r['stddev'] or 0)} "
            f"| {secs(r['min'])} – {secs(r['max'])} | {len(times)} "
            f"| {secs(r['user'])} / {secs(r['system'])} |"
        )
    return out


def latency_rows(res):
    """Rows 9a-9b (scripts/bench/latency.sh): a cold lock and a cold build's downloads through a
    loopback proxy that holds each request; absent when that part did not run."""
    delay = load_kv(res / "latency.txt").get("delay_ms", "?")
    rows = []
    lock = res / "lock-latency.json"
    if lock.exists():
        r = load_hyperfine(lock)
        if len(r) >= 3:
            rows.append(time_row(
                f"9a. Cold `envpack lock` of the example for five platforms vs `uv pip compile --universal` (cold cache), both through a loopback proxy adding {delay} ms to every request",
                r[0], r[2], 1.5, "≤ 1.5",
            ))
            rows.append(time_row(
                "9a1. The same lock with `ENVPACK_HTTP_CONCURRENCY=1` (one request at a time) vs the same uv run",
                r[1], r[2], None, "—",
            ))
    dl = res / "build-downloads.txt"
    pip = res / "pip-download.json"
    if dl.exists() and pip.exists():
        runs = {}
        for line in dl.read_text().splitlines():
            k, _, v = line.partition("=")
            runs.setdefault(k, []).append(float(v))
        median = lambda v: sorted(v)[len(v) // 2]
        peer = load_hyperfine(pip)[0]
        for key, label, target in (
            ("envpack", f"9b. A five-platform `envpack build` with only the CPython archives in its cache: its download phase (every package file the lock pins, hash-checked into the cache) vs `pip download --no-deps` of the same files, both through the {delay} ms proxy", 0.5),
            ("envpack_c1", "9b1. The same download phase with `ENVPACK_HTTP_CONCURRENCY=1`", None),
        ):
            if key in runs:
                rows.append(time_row(label, {"median": median(runs[key])}, peer, target, "≤ 0.5" if target else "—"))
    return rows


def trust_rows(res):
    """Rows 10a-10b (scripts/bench/trust.sh): signing in a warm build, checking at unpack."""
    rows = []
    for name, label in (
        ("trust-build.json", "10a. Warm-cache `envpack build --sign` (signature and signed provenance written) vs the same build unsigned"),
        ("trust-unpack.json", "10b. `envpack-unpack --trust` of a signed artifact (signature checked before anything is written) vs the same unpack unchecked; new directory per run"),
    ):
        if (res / name).exists():
            r = load_hyperfine(res / name)
            rows.append(time_row(label, r[0], r[1], 1.05, "≤ 1.05"))
    return rows


def main():
    res = Path(sys.argv[1])
    out = Path(sys.argv[2])
    facts = load_kv(res / "facts.txt")
    sizes = load_kv(res / "sizes.txt")
    unchanged = load_kv(res / "unchanged.txt")
    unpack = load_hyperfine(res / "unpack.json")
    boot = load_hyperfine(res / "bootstrap.json")
    unpack_fresh = load_hyperfine(res / "unpack-fresh.json")
    boot_fresh = load_hyperfine(res / "bootstrap-fresh.json")
    build = load_hyperfine(res / "build.json")
    conan = load_hyperfine(res / "conan.json")
    audit = load_hyperfine(res / "audit.json")
    push = load_kv(res / "push.txt")
    rss = {n: read_int(res / f"rss-{n}.txt") for n in ("build-warm", "build-peer", "unpack", "unpack-peer")}
    cold_secs, cold_kib = (res / "build-cold.txt").read_text().split()[-2:]
    reproduced = (res / "build-reproduced.txt").read_text().strip()
    phases = build_phases((res / "build-phases.txt").read_text())

    rows = [
        time_row(
            "1. Unpack the full linux-x86_64 env, every hash verified (`envpack-unpack ART --root R`) vs `tar --zstd -xf` of the same tree (zstd -10); new directory per run (fresh runner)",
            unpack_fresh[0], unpack_fresh[1], 1.0, "≤ 1.0",
        ),
        optional_row(res, "unpack-1core.json", "1c. The same as 1 on one core (`taskset -c 0` for both sides)", 1.0, "≤ 1.0"),
        time_row(
            "1r. The same as 1, each run right after deleting the previous run's tree (re-bootstrap)",
            unpack[0], unpack[1], 1.0, "≤ 1.0",
        ),
        time_row(
            "2. Bootstrap: unpack + first `conan --version` vs `venv` + `pip install --no-index --find-links` (builds the conan sdist) + `conan --version`; new directory per run (fresh runner)",
            boot_fresh[0], boot_fresh[1], 0.1, "≤ 0.10 (≥ 10× faster)",
        ),
        time_row(
            "2r. The same, each run right after deleting the previous run's tree (re-bootstrap)",
            boot[0], boot[1], 0.1, "≤ 0.10 (≥ 10× faster)",
        ),
    ]
    if len(boot) >= 4:
        rows.append(time_row("2b. Bootstrap vs `uv venv` + `uv pip install --offline` (cold uv cache, builds the sdist)", boot[0], boot[2], None, "—"))
        rows.append(time_row("2c. Bootstrap vs `uv venv` + `uv pip install --offline` (warm uv cache)", boot[0], boot[3], 0.6, "≤ 0.6"))
    rows.append(
        time_row(
            "3. Warm-cache `envpack build --platform linux-x86_64` (`--offline`) vs `tar --sort=name -c TREE | zstd -10`",
            build[0], build[1], 1.5, "≤ 1.5",
        )
    )
    rows.append(
        optional_row(
            res, "build-oci.json",
            "3o. Warm-cache `envpack build --format oci --platform linux-x86_64` (`--offline`) vs the same warm tarball build",
            2.0, "≤ 2.0",
        )
    )
    for label, ours, peer, peer_name in (
        ("4a. Peak RSS, warm `envpack build`", "build-warm", "build-peer", "tar | zstd"),
        ("4b. Peak RSS, `envpack-unpack` (fresh root)", "unpack", "unpack-peer", "tar --zstd -xf"),
    ):
        a, b = rss[ours], rss[peer]
        rows.append([label, mb(a), f"{mb(b)} ({peer_name})", f"{a / b:.2f}", f"< {RSS_LIMIT_MB} MB", verdict(a * 1024 < RSS_LIMIT_MB * 1e6)])
    env_ok = unchanged.get("verify") == "ok" and unchanged.get("files_written_in_env") == "0"
    r5 = time_row("5. `conan --version` in the unpacked env (`R/bin/conan`) vs in the pip venv", conan[0], conan[1], None, "")
    r5[4] = "info; env unchanged after"
    r5[5] = verdict(env_ok) + (" (unchanged)" if env_ok else " (env changed)")
    rows.append(r5)
    rows.append(
        time_row(
            "6. `envpack audit --root R` (every file re-hashed against the manifest, meta and SBOMs checked against the lock) vs `sha256sum` over the same files",
            audit[0], audit[1], 1.2, "≤ 1.2",
        )
    )

    pf, ps = float(push["envpack_push_median_s"]), float(push["skopeo_push_median_s"])
    nf, ns = float(push["envpack_noop_median_s"]), float(push["skopeo_noop_median_s"])
    rows.append([
        "7a. Push the linux-x86_64 image layout into an empty repository of a local `docker-registry` vs `skopeo copy --all --preserve-digests oci:… docker://…`",
        secs(pf), secs(ps), f"{pf / ps:.2f}", "≤ 1.0", verdict(pf <= ps),
    ])
    rows.append([
        "7b. Push it again (every blob already there) vs the same `skopeo copy`",
        secs(nf), secs(ns), f"{nf / ns:.2f}", "< 0.5 s", verdict(nf < 0.5),
    ])

    rows.append(
        optional_row(
            res, "pull.json",
            "8. `envpack unpack REF --root R` from a local `docker-registry` (new root and cache each run) vs `skopeo copy docker://REF oci:DIR` + `umoci unpack --rootless`",
            1.2, "≤ 1.2",
        )
    )
    rows.extend(latency_rows(res))
    rows.extend(trust_rows(res))
    rows = [r for r in rows if r is not None]

    lines = [
        "# Benchmarks",
        "",
        "Measured by `scripts/bench.sh` (one run of the script; re-run it to refresh this file).",
        "Times are hyperfine medians; ratios are envpack / peer, so lower is better everywhere.",
        "",
        "| benchmark | envpack | peer | ratio | target | result |",
        "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    lines += [
        "",
        "## Machine",
        "",
        f"- date: {facts.get('date', '?')}",
        f"- CPU: {facts.get('cpu', '?')}, nproc {facts.get('nproc', '?')}, memory {facts.get('mem_total', '?')}",
        f"- load average: {facts.get('load', '?')}",
        f"- OS: {facts.get('os', '?')}, kernel {facts.get('kernel', '?')}, filesystem {facts.get('fs', '?')}",
        f"- tools: {facts.get('envpack', '?')}; {facts.get('python', '?')}; {facts.get('pip', '?')}; "
        f"{facts.get('uv', 'uv not installed')}; {facts.get('tar', '?')}; {facts.get('zstd', '?')}; {facts.get('hyperfine', '?')}",
        "",
        "## Sizes and side facts",
        "",
        f"- env tree: {sizes.get('tree_files', '?')} files, {int(sizes.get('tree_bytes', 0)) / 1e6:.1f} MB",
        f"- artifact (`.envpack.tar`, zstd-10 layers): {int(sizes.get('artifact_bytes', 0)) / 1e6:.1f} MB; "
        f"peer `.tar.zst` of the same tree: {int(sizes.get('peer_tar_zst_bytes', 0)) / 1e6:.1f} MB",
        f"- cold build (empty cache: fetch from the local mirror/index, build the sdists, assemble, compress), one run: "
        f"{secs(float(cold_secs))}, peak RSS {mb(int(cold_kib))}",
        "- warm build phases (seconds since start when each progress line appeared): "
        + "; ".join(phases),
        f"- warm rebuild reproduces the cold build's artifact byte for byte: {reproduced}",
        f"- after the `conan --version` runs and an `import conan, yaml, jinja2, requests` in the env: "
        f"`envpack verify --root R` {unchanged.get('verify', '?')}, files written inside the env tree: "
        f"{unchanged.get('files_written_in_env', '?')} (it ships {unchanged.get('pycache_files_in_env', '?')} precompiled `.pyc` files)",
        f"- CPU time (user + system, mean) vs wall (median), fresh directories: {cpu_vs_wall(unpack_fresh[0])} for `envpack-unpack`, "
        f"{cpu_vs_wall(unpack_fresh[1])} for `tar --zstd -xf`, {cpu_vs_wall(boot_fresh[0])} for the envpack bootstrap; "
        "wall time beyond CPU time is mostly waiting for the disk (envpack-unpack syncs the filesystem before switching `current`), "
        "which depends on what else writes to the disk at the time.",
        "",
        "## Method",
        "",
        f"- hyperfine, `--warmup 1`, {facts.get('runs', '?')} runs for fast benchmarks and "
        f"{facts.get('slow_runs', '?')} for the installs; the median is reported. Every unpack goes to a new "
        "root and every install to a new venv (see the filesystem states below).",
        "- Dropping the page cache is not possible here (the machine is shared; dropping it is global and "
        "would disturb other work), so every run reads warm inputs; both sides of a comparison get the same treatment.",
        "- The machine has 2 cores shared with other work (builds and tests running at the same time), "
        "so single numbers are noisy; the per-command spread is below.",
        "- Same tree on both sides: the peer archives are made from the env tree `envpack-unpack` produced. "
        "The peer uses the artifact's own compression settings: zstd level 10, one worker (`-T1`).",
        "- `envpack-unpack` verifies every layer blob's digest before extracting, the meta layer's uncompressed digest, "
        "and the SHA-256 of every file against the manifest (the data layers' uncompressed digests are implied by their "
        "blob digests and not recomputed; `verify ARTIFACT` recomputes them), and syncs the filesystem (one `syncfs`) before "
        "switching `current`; `tar --zstd -xf` checks only zstd's frame checksums and does not fsync, so ratio 1 means the "
        "checks and durability are free.",
        "- The artifact's large layers are sequences of independent zstd frames, one per 8 MiB of tar "
        "stream (any zstd decoder reads them as one stream); `envpack-unpack` decompresses the frames on the "
        "machine's cores while one thread parses the tar stream in order. The peer's `.tar.zst` is one frame "
        "(what `zstd -T1` writes), which no decoder can split; `tar` runs `zstd -d` as a second process.",
        "- Two filesystem states, both reported. Rows 1 and 2: every run writes into a new directory and "
        "nothing is deleted while the group runs (a new CI runner or machine). Rows 1r and 2r: every run "
        "follows the deletion of the previous run's tree (`--prepare rm -rf`), and ext4 then spends much of "
        "each file creation skipping inodes it freed seconds ago, for both sides (this filesystem has no journal, "
        "and ext4 without one avoids reusing an inode for 60 s after its deletion). Before each group the script "
        "syncs and waits 65 s, so the previous group's cleanup (tens of thousands of inodes) does not slow it.",
        "- pip runs with `--no-cache-dir`, so each run builds the conan and patch-ng sdists (in build "
        "isolation, setuptools and wheel from the same wheelhouse), which is what a user pays. uv (installed "
        "with pip into a throwaway venv) runs with `--offline --no-index --find-links`, once with a fresh cache "
        "per run and once with a cache kept from the warmup run. With a warm cache uv hard-links "
        "each file from its cache (its default on Linux): no file is written and no inode allocated, "
        f"so the re-bootstrap state costs it nothing, while the unpacker creates {sizes.get('tree_files', '?')} new files.",
        "- Each Conan gets its own `CONAN_HOME` (the env's launcher uses `ROOT/state/<env-id>/conan-home`).",
        "- Warm build: the cache from the cold build is kept and `--offline` proves nothing is fetched; "
        "the output directory is removed before each run.",
        "- Rows 9 (`scripts/bench/latency.sh`): every request of both sides goes through `scripts/bench/slow_proxy.py`, "
        "a loopback reverse proxy in front of the local index that holds each request 50 ms and serves requests "
        "concurrently (a far index: one round trip per request). 9a: cold caches on both sides, each run in a new cache directory with nothing deleted while the group runs (after the same 65 s settle as rows 1 and 2); `envpack lock` "
        "also pins and copies five CPython archives from the `file://` mirror, downloads every chosen file whole "
        "(the lock records sizes and hashes) and builds the conan and patch-ng sdists into wheels (the lock pins "
        "the built wheels), where `uv pip compile` prepares only their metadata. 9b: the download phase of a "
        "five-platform `envpack build` (from its `fetching` progress line to the next step's line, then the "
        "build is stopped) with only the CPython archives already in its cache, against `pip download --no-deps` "
        "of the lock's package files, one pip run per platform with its tags plus one for the sdists and build "
        "packages, each file once (pip prepares the sdists' metadata with the build backend from a venv, "
        "`--no-build-isolation`). Rows 9a1 and 9b1 are the same with `ENVPACK_HTTP_CONCURRENCY=1`.",
        "- Rows 10 (`scripts/bench/trust.sh`): 10a signs with a key from `envpack keygen` (the `.minisig` over "
        "the whole artifact and the DSSE-signed provenance beside it), the output directory removed before each "
        "run; 10b unpacks an artifact signed by `envpack sign` with and without `--trust`, a new directory per run.",
        "- Peak RSS: GNU time `%M` (the largest single process of the command), "
        "maximum over three runs; MB are 10^6 bytes.",
        "",
        "| command | median | mean ± σ | min – max | runs | user / system |",
        "|---|---|---|---|---|---|",
    ]
    # The per-command table in the order of the rows above (optional exports where present).
    def optional(name):
        return [load_hyperfine(res / name)] if (res / name).exists() else []

    groups = (
        [unpack_fresh] + optional("unpack-1core.json") + [unpack, boot_fresh, boot, build]
        + optional("build-oci.json") + [conan, audit] + optional("pull.json")
        + optional("trust-build.json") + optional("trust-unpack.json")
    )
    for group in groups:
        lines += details(group)
    lines.append("")
    out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
