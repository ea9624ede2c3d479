//! Every hostile signature, refused before the root is touched.

use std::path::PathBuf;
use std::process::Command;

use envpack_e2e::*;

use super::*;

#[test]
fn every_hostile_signature_is_refused_before_the_root_is_touched() {
    let f = fixture();
    let k1 = pubkey(&f.keys.k1);
    let k2_signed = with_signature(&f.work.join("k2-signed"), &f.a, None);
    run(Command::new(envpack_bin())
        .arg("sign")
        .arg(&k2_signed)
        .arg("--key")
        .arg(&f.keys.k2));
    let good = sig_text(&f.a);
    let lines: Vec<&str> = good.lines().collect();
    let k1_id = envpack_trust::Signature::parse(&good, "a").unwrap().key_id;
    let legacy = with_signature(&f.work.join("legacy"), &f.a, None);
    run(Command::new("minisign")
        .args(["-S", "-l", "-s"])
        .arg(&f.keys.m)
        .arg("-m")
        .arg(&legacy));
    let other_file = f.work.join("other-file");
    fs_err::write(&other_file, b"not the artifact").unwrap();
    run(Command::new("minisign")
        .args(["-S", "-s"])
        .arg(&f.keys.m)
        .arg("-m")
        .arg(&other_file));
    let not_a_key = f.work.join("not-a-key.pub");
    fs_err::write(&not_a_key, "hello\n").unwrap();

    struct Case {
        name: &'static str,
        artifact: PathBuf,
        extra: Vec<PathBuf>,
        want: &'static str,
    }
    let case = |name: &'static str, sig: Option<String>, want: &'static str| Case {
        name,
        artifact: with_signature(&f.work.join(format!("case-{name}")), &f.a, sig.as_deref()),
        extra: vec!["--trust".into(), k1.clone()],
        want,
    };
    let mut flipped_sig = envpack_trust::Signature::parse(&good, "a").unwrap();
    flipped_sig.file_signature[0] ^= 1;
    let mut cases = vec![
        case(
            "unsigned",
            None,
            "is not signed: --trust requires a signature",
        ),
        case("empty-signature", Some(String::new()), "lines, expected 4"),
        case(
            "truncated-signature",
            Some(lines[..2].join("\n")),
            "lines, expected 4",
        ),
        case(
            "truncated-global-signature",
            Some(good[..good.len() - 30].to_owned()),
            "line 4 is not base64",
        ),
        case(
            "signature-bit-flip",
            Some(flipped_sig.to_text()),
            "does not verify: the trusted comment",
        ),
        case(
            "global-signature-bit-flip",
            Some(edited(&f.a, |s| s.global_signature[5] ^= 0x80)),
            "does not verify: the trusted comment",
        ),
        case(
            "edited-timestamp",
            Some(edited(&f.a, |s| {
                s.trusted_comment = s
                    .trusted_comment
                    .replace("timestamp:1700000000", "timestamp:1900000000")
            })),
            "does not verify: the trusted comment",
        ),
        case(
            "signed-by-an-untrusted-key",
            Some(sig_text(&k2_signed)),
            "which is not trusted",
        ),
        case(
            "untrusted-key-claiming-the-trusted-id",
            Some(edited(&k2_signed, |s| s.key_id = k1_id)),
            "does not verify",
        ),
        case(
            "signature-of-another-artifact",
            Some(sig_text(&f.b)),
            "the signature is for another artifact",
        ),
        case(
            "minisign-signature-of-another-file",
            Some(sig_text(&other_file)),
            "which is not trusted",
        ),
        case(
            "oversized-signature",
            Some(format!("{good}{}", "x".repeat(20 << 10))),
            "more than",
        ),
        case(
            "garbage-signature",
            Some("untrusted comment: x\n!!!\ntrusted comment: y\n!!!\n".into()),
            "line 2 is not base64",
        ),
    ];
    // The same, with the key that did sign them but the artifact changed after signing.
    let tampered = with_signature(&f.work.join("case-tampered"), &f.a, Some(&good));
    flip_byte_in_last_blob(&tampered);
    cases.push(Case {
        name: "artifact-changed-after-signing",
        artifact: tampered,
        extra: vec!["--trust".into(), k1.clone()],
        want: "sha256 mismatch for layer",
    });
    let m_trust = vec!["--trust".into(), pubkey(&f.keys.m)];
    cases.push(Case {
        name: "legacy-signature",
        artifact: legacy,
        extra: m_trust.clone(),
        want: "legacy signature",
    });
    cases.push(Case {
        name: "minisign-signature-of-another-file-with-its-key",
        artifact: with_signature(
            &f.work.join("case-mother"),
            &f.a,
            Some(&sig_text(&other_file)),
        ),
        extra: m_trust,
        want: "does not verify: the artifact",
    });
    cases.push(Case {
        name: "missing-signature-file",
        artifact: f.a.clone(),
        extra: vec![
            "--trust".into(),
            k1.clone(),
            "--signature".into(),
            f.work.join("nowhere.minisig"),
        ],
        want: "nowhere.minisig",
    });
    cases.push(Case {
        name: "not-a-public-key",
        artifact: f.a.clone(),
        extra: vec!["--trust".into(), not_a_key],
        want: "not-a-key.pub: the key line is not base64",
    });
    assert_eq!(cases.len(), 18, "the README counts them");

    for c in &cases {
        for existing in [false, true] {
            let root = f.work.join(format!("root-{}-{existing}", c.name));
            if existing {
                let out = unpack(&[&f.b, &"--root", &root]);
                assert!(out.status.success(), "{}", stderr(&out));
            }
            let before = snapshot(&root);
            let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&c.artifact, &"--root", &root];
            for e in &c.extra {
                args.push(e);
            }
            let out = unpack(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{}: {err}", c.name);
            assert!(
                err.contains(c.want),
                "{}: want {:?} in:\n{err}",
                c.name,
                c.want
            );
            assert!(
                !err.contains("Some(") && !err.contains("{ "),
                "{}: {err}",
                c.name
            );
            assert_eq!(snapshot(&root), before, "{}: the root changed", c.name);
        }
    }
}
