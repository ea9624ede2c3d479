//! Signed images: `build --format oci --sign` and `envpack sign LAYOUT` give the same
//! referrers byte for byte; the signed layout, and the same image pushed to the local
//! docker-registry and pulled by tag, unpack with `--trust` on new roots; an unsigned image, an
//! untrusted key and a root that requires signatures are refused before anything is written.

use super::*;
use envpack_e2e::registry::Registry;
use serde_json::Value;

/// When the images are signed.
const IMAGE_TIME: &str = "1700001000";

fn index_json(layout: &Path) -> Value {
    serde_json::from_slice(&fs_err::read(layout.join("index.json")).unwrap()).unwrap()
}

/// The referrer entries of `artifact_type` in a layout's index.json.
fn referrers(layout: &Path, artifact_type: &str) -> Vec<Value> {
    index_json(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["artifactType"] == artifact_type)
        .cloned()
        .collect()
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    fs_err::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap()
}

fn envpack_unpack(source: &str, root: &Path, extra: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(envpack_bin());
    cmd.args(["--cache-dir"])
        .arg(built().work.join("cache"))
        .args(["unpack", source, "--root"])
        .arg(root);
    for a in extra {
        cmd.arg(a);
    }
    cmd.output().unwrap()
}

#[test]
fn signed_images_unpack_with_trust_from_a_layout_and_a_registry() {
    let f = fixture();
    let b = built();
    let work = f.work.join("images");
    fs_err::create_dir_all(&work).unwrap();
    let index = IndexServer::start(&index_dir(), &[]);
    let mirror = format!("file://{}", python_mirror().display());
    let cache = b.work.join("cache");
    let build = |out: &str, sign: bool| {
        let mut cmd = envpack_cmd(&b.work, &cache, &index.url, &mirror);
        cmd.env("ENVPACK_SIGN_TIME", IMAGE_TIME)
            .args(["build", "--format", "oci", "--out"])
            .arg(work.join(out));
        if sign {
            cmd.arg("--sign").arg(&f.keys.k1);
        }
        run(&mut cmd);
        work.join(out)
    };
    let signed = build("signed", true);
    let unsigned = build("unsigned", false);

    // One signature and one provenance referrer of the platform manifest; the same bytes from
    // `envpack sign` on the unsigned layout at the same time.
    let manifest = index_json(&signed)["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let sigs = referrers(&signed, "application/vnd.dev.envpack.signature.v1+minisign");
    let provs = referrers(&signed, "application/vnd.in-toto+json");
    assert_eq!((sigs.len(), provs.len()), (1, 1), "{}", index_json(&signed));
    assert_eq!(
        sigs[0]["annotations"]["dev.envpack.signature.subject"],
        manifest.as_str()
    );
    let doc: Value =
        serde_json::from_slice(&blob(&signed, sigs[0]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(doc["subject"]["digest"], manifest.as_str());
    let text =
        String::from_utf8(blob(&signed, doc["layers"][0]["digest"].as_str().unwrap())).unwrap();
    assert!(
        text.contains("trusted comment: envpack:1\ttimestamp:1700001000\t"),
        "{text}"
    );
    let prov: Value =
        serde_json::from_slice(&blob(&signed, provs[0]["digest"].as_str().unwrap())).unwrap();
    let envelope: Value = serde_json::from_slice(&blob(
        &signed,
        prov["layers"][0]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    // Signed by k1; its subjects are the restored artifact and the platform manifest.
    let parsed: envpack_trust::Envelope = serde_json::from_value(envelope.clone()).unwrap();
    let keys = envpack_trust::TrustedKeys::load(&[pubkey(&f.keys.k1)]).unwrap();
    let (_, payload) = parsed.verify(&keys).unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    let subjects = statement["subject"].as_array().unwrap();
    assert_eq!(subjects.len(), 2, "{statement}");
    assert!(subjects[0]["name"]
        .as_str()
        .unwrap()
        .ends_with(".envpack.tar"));
    assert_eq!(subjects[1]["digest"]["sha256"], &manifest[7..]);
    assert_eq!(
        prov["layers"][0]["mediaType"],
        "application/vnd.dsse.envelope.v1+json"
    );

    let later = work.join("signed-later");
    run(Command::new("cp").arg("-a").arg(&unsigned).arg(&later));
    let said = run(Command::new(envpack_bin())
        .env("ENVPACK_SIGN_TIME", IMAGE_TIME)
        .arg("sign")
        .arg(&later)
        .arg("--key")
        .arg(&f.keys.k1));
    assert!(String::from_utf8_lossy(&said.stdout).contains("signature and provenance referrers"));
    assert_eq!(
        fs_err::read(later.join("index.json")).unwrap(),
        fs_err::read(signed.join("index.json")).unwrap()
    );
    // Signing again replaces the signature rather than adding one.
    run(Command::new(envpack_bin())
        .env("ENVPACK_SIGN_TIME", IMAGE_TIME)
        .arg("sign")
        .arg(&later)
        .arg("--key")
        .arg(&f.keys.k1));
    assert_eq!(
        fs_err::read(later.join("index.json")).unwrap(),
        fs_err::read(signed.join("index.json")).unwrap()
    );

    // A second key co-signs (later): both signatures stay, and each key's holder gets theirs.
    run(Command::new(envpack_bin())
        .env("ENVPACK_SIGN_TIME", "1700002000")
        .arg("sign")
        .arg(&later)
        .arg("--key")
        .arg(&f.keys.k2));
    let both = referrers(&later, "application/vnd.dev.envpack.signature.v1+minisign");
    assert_eq!(both.len(), 2, "{}", index_json(&later));
    for key in [&f.keys.k1, &f.keys.k2] {
        let r = work.join(format!(
            "root-cosigned-{}",
            key.file_stem().unwrap().to_string_lossy()
        ));
        let out = envpack_unpack(later.to_str().unwrap(), &r, &[&"--trust", &pubkey(key)]);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    // From the layout: trusted key in; another key, or no signature, refused with nothing made.
    let root = work.join("root-layout");
    let out = envpack_unpack(
        signed.to_str().unwrap(),
        &root,
        &[&"--trust", &pubkey(&f.keys.k1)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let trust: Value =
        serde_json::from_slice(&fs_err::read(root.join(".envpack/trust.json")).unwrap()).unwrap();
    assert_eq!(trust["newest_signed"], IMAGE_TIME.parse::<u64>().unwrap());
    for (source, key, want) in [
        (&signed, &f.keys.k2, "which is not trusted"),
        (&unsigned, &f.keys.k1, "carries no envpack signature"),
    ] {
        let fresh = work.join("root-refused");
        let out = envpack_unpack(
            source.to_str().unwrap(),
            &fresh,
            &[&"--trust", &pubkey(key)],
        );
        assert!(!out.status.success());
        assert!(stderr(&out).contains(want), "{}", stderr(&out));
        assert!(!fresh.exists(), "{}", fresh.display());
    }

    // Pushed to a registry (the referrers under the sha256-<hex> fallback tag) and pulled by
    // tag on new roots.
    let reg = Registry::start();
    let signed_ref = reg.reference("team/env", "signed");
    let unsigned_ref = reg.reference("team/env", "unsigned");
    for (reference, layout) in [(&signed_ref, &signed), (&unsigned_ref, &unsigned)] {
        run(Command::new(envpack_bin())
            .args(["push", reference, "--layout"])
            .arg(layout));
    }
    let pulled = work.join("root-registry");
    let out = envpack_unpack(&signed_ref, &pulled, &[&"--trust", &pubkey(&f.keys.k1)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs_err::read_link(pulled.join("current")).unwrap(),
        fs_err::read_link(root.join("current")).unwrap()
    );
    let other = work.join("unsigned-other");
    run(
        envpack_cmd(&f.work.join("b-spec"), &cache, &index.url, &mirror)
            .args(["build", "--format", "oci", "--out"])
            .arg(&other),
    );
    let other_ref = reg.reference("team/env", "other");
    run(Command::new(envpack_bin())
        .args(["push", &other_ref, "--layout"])
        .arg(&other));
    // Signatures are about content, not tags: the unsigned layout's tag names the same
    // manifest, which the registry now holds a signature for. An unsigned env is refused.
    let out = envpack_unpack(
        &unsigned_ref,
        &work.join("root-same"),
        &[&"--trust", &pubkey(&f.keys.k1)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let fresh = work.join("root-registry-refused");
    let out = envpack_unpack(&other_ref, &fresh, &[&"--trust", &pubkey(&f.keys.k1)]);
    assert!(
        stderr(&out).contains("carries no envpack signature"),
        "{}",
        stderr(&out)
    );
    assert!(!fresh.exists());

    // A root that requires signatures takes the signed image, then refuses the unsigned image
    // of another env with no --trust given.
    let strict = work.join("root-strict");
    let out = envpack_unpack(
        &signed_ref,
        &strict,
        &[&"--trust", &pubkey(&f.keys.k1), &"--require-signature"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let before = snapshot(&strict);
    let out = envpack_unpack(&other_ref, &strict, &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("requires"), "{}", stderr(&out));
    assert_eq!(snapshot(&strict), before);

    // `envpack sign REF` signs an image where it is: fetched, signed, its referrers pushed.
    run(Command::new(envpack_bin())
        .arg("--cache-dir")
        .arg(&cache)
        .env("ENVPACK_SIGN_TIME", "1700003000")
        .args(["sign", &other_ref, "--key"])
        .arg(&f.keys.k1));
    let out = envpack_unpack(&other_ref, &strict, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let _ = fs_err::remove_dir_all(&work);
}
