//! The signed SLSA provenance beside each signed artifact: verified independently by
//! securesystemslib's DSSE and ed25519 (from the package index), its statement checked against
//! the in-toto Statement v1 / SLSA Provenance v1 shapes and the lock, and refused by
//! `verify --trust` when it is another artifact's or was changed.

use std::path::PathBuf;
use std::process::Command;

use envpack_e2e::*;

use super::*;

fn dsse_python() -> PathBuf {
    let dir = std::env::var_os("ENVPACK_DSSE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| fixtures_dir().join("dsse-tools"));
    let py = dir.join("bin/python");
    assert!(
        py.is_file(),
        "{} is missing: run scripts/test.sh once",
        py.display()
    );
    py
}

/// Verifies the envelope with securesystemslib and checks the statement's shape; prints the
/// statement's subject digest, lock digest and input count.
const CHECK: &str = r#"
import base64, json, re, sys
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
path, keyid, public_hex = sys.argv[1:4]
lines = [l for l in open(path) if l.strip()]
assert len(lines) == 1, lines
env = Envelope.from_dict(json.loads(lines[0]))
key = SSlibKey(keyid, "ed25519", "ed25519", {"public": public_hex})
accepted = env.verify([key], 1)
assert list(accepted) == [keyid], accepted
assert env.payload_type == "application/vnd.in-toto+json"
st = json.loads(env.payload)
assert st["_type"] == "https://in-toto.io/Statement/v1", st["_type"]
assert st["predicateType"] == "https://slsa.dev/provenance/v1"
hexre = re.compile("^[0-9a-f]{64}$")
assert len(st["subject"]) == 1 and hexre.match(st["subject"][0]["digest"]["sha256"])
bd = st["predicate"]["buildDefinition"]
assert bd["buildType"].startswith("urn:envpack:")
assert isinstance(bd["externalParameters"], dict)
deps = bd["resolvedDependencies"]
for d in deps:
    assert set(d) == {"name", "digest"}, d
    assert hexre.match(d["digest"]["sha256"]), d
rd = st["predicate"]["runDetails"]
assert rd["builder"]["id"].startswith("urn:envpack:")
print(st["subject"][0]["digest"]["sha256"], bd["externalParameters"]["lock"]["sha256"], len(deps))
print("\n".join(d["name"] for d in deps))
"#;

#[test]
fn provenance_is_a_signed_slsa_statement_of_the_artifact_and_its_inputs() {
    let f = fixture();
    let public = fs_err::read_to_string(pubkey(&f.keys.k1)).unwrap();
    let pk = envpack_trust::PublicKey::parse(&public, "k1.pub").unwrap();
    for art in [&f.a, &f.b] {
        let prov = envpack_trust::intoto::provenance_path(art);
        let out = run(Command::new(dsse_python())
            .arg("-c")
            .arg(CHECK)
            .arg(&prov)
            .arg(pk.id.to_string())
            .arg(hex::encode(pk.key.as_bytes())));
        let said = String::from_utf8_lossy(&out.stdout);
        let mut lines = said.lines();
        let head: Vec<&str> = lines.next().unwrap().split(' ').collect();
        assert_eq!(
            head[0],
            sha256_file(art),
            "the subject is the artifact file"
        );
        let inputs: Vec<&str> = lines.collect();
        assert_eq!(inputs.len().to_string(), head[2]);
        // Every input of the lock: the lock, CPython, the Conan closure, the profile.
        for want in [
            "envpack.lock",
            "cpython-3.11.7",
            "conan-2.21.0",
            "conan/profiles/default",
        ] {
            assert!(
                inputs.iter().any(|i| i.starts_with(want)),
                "{want} not in {inputs:?}"
            );
        }
        // The lock digest in the statement is the artifact's lock.
        let lock_hex = {
            let out = run(Command::new("tar").arg("-xOf").arg(art).arg("envpack.lock"));
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&out.stdout))
        };
        assert_eq!(head[1], lock_hex);
        // And `verify --trust` says so.
        let out = run(Command::new(envpack_bin())
            .arg("verify")
            .arg(art)
            .arg("--trust")
            .arg(pubkey(&f.keys.k1)));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains(&format!(
                "provenance: good (SLSA v1, {} inputs), by trusted key {}",
                head[2], pk.id
            )),
            "{said}"
        );
    }

    // Deterministic: signing again gives the same provenance bytes.
    let again = with_signature(&f.work.join("prov-again"), &f.a, None);
    run(Command::new(envpack_bin())
        .env("ENVPACK_SIGN_TIME", "1")
        .arg("sign")
        .arg(&again)
        .arg("--key")
        .arg(&f.keys.k1));
    assert_eq!(
        fs_err::read(envpack_trust::intoto::provenance_path(&again)).unwrap(),
        fs_err::read(envpack_trust::intoto::provenance_path(&f.a)).unwrap()
    );

    // Swapped (B's beside A), changed, or signed by another key: refused by verify --trust.
    let b_prov = fs_err::read_to_string(envpack_trust::intoto::provenance_path(&f.b)).unwrap();
    let a_prov = fs_err::read_to_string(envpack_trust::intoto::provenance_path(&f.a)).unwrap();
    let mut env: serde_json::Value = serde_json::from_str(&a_prov).unwrap();
    env["payloadType"] = "application/json".into();
    let by_k2 = with_signature(&f.work.join("prov-k2"), &f.a, None);
    run(Command::new(envpack_bin())
        .arg("sign")
        .arg(&by_k2)
        .arg("--key")
        .arg(&f.keys.k2));
    let k2_prov = fs_err::read_to_string(envpack_trust::intoto::provenance_path(&by_k2)).unwrap();
    let cases = [
        ("swapped", b_prov, "the provenance of another artifact"),
        (
            "changed",
            format!("{env}\n"),
            "does not verify: the provenance",
        ),
        ("other-key", k2_prov, "which is not trusted"),
        ("not-json", "{\n".to_owned(), "not a DSSE envelope"),
        ("empty", "\n".to_owned(), "no envelope in it"),
    ];
    // Stripped: envpack writes a provenance with every signature, so none is an error.
    let stripped = with_signature(&f.work.join("prov-stripped"), &f.a, Some(&sig_text(&f.a)));
    let out = Command::new(envpack_bin())
        .arg("verify")
        .arg(&stripped)
        .arg("--trust")
        .arg(pubkey(&f.keys.k1))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("missing: envpack signed this artifact"),
        "{}",
        stderr(&out)
    );
    // Other attestations in the bundle are left alone.
    let bundle = with_signature(&f.work.join("prov-bundle"), &f.a, Some(&sig_text(&f.a)));
    let b_line = fs_err::read_to_string(envpack_trust::intoto::provenance_path(&f.b)).unwrap();
    fs_err::write(
        envpack_trust::intoto::provenance_path(&bundle),
        format!("{a_prov}{b_line}"),
    )
    .unwrap();
    let out = run(Command::new(unpack_bin())
        .arg("verify")
        .arg(&bundle)
        .arg("--trust")
        .arg(pubkey(&f.keys.k1)));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("; 1 other lines left alone"), "{said}");

    for (name, prov, want) in cases {
        let art = with_signature(
            &f.work.join(format!("prov-{name}")),
            &f.a,
            Some(&sig_text(&f.a)),
        );
        fs_err::write(envpack_trust::intoto::provenance_path(&art), prov).unwrap();
        let out = Command::new(envpack_bin())
            .arg("verify")
            .arg(&art)
            .arg("--trust")
            .arg(pubkey(&f.keys.k1))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(
            stderr(&out).contains(want),
            "{name}: want {want:?} in {}",
            stderr(&out)
        );
    }
}
