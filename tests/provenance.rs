//! Provenance through the CLI: `fetch` and `build` verify the publisher a manifest pins,
//! against a Sigstore made in the test (`--sigstore-trust-root`), offline from the cache.

use support::World;
use support::sigstore::{Sign, TestSigstore};

const DEMO: &str = "{repository: example/alpha, workflow: publish.yml}";
const CPYTHON: &str = "{identity: thomas@python.org, issuer: 'https://accounts.google.com'}";

/// A world whose first wheel (alpha) is pinned to example/alpha's publish.yml, the index
/// serving the provenance `sign` makes; returns the world, the instance and its root file.
fn signed_world(sign: &Sign) -> (World, TestSigstore, String) {
    let w = World::new();
    let sig = TestSigstore::new();
    let root = w.path("trusted_root.json");
    std::fs::write(&root, sig.trust_root_json()).unwrap();
    let (file, bytes) = &w.wheels[0];
    let doc = sig.provenance(file, &support::sha256_hex(bytes), sign);
    w.serve_provenance(0, &doc);
    w.pin_provenance(&bytes.clone(), DEMO);
    (w, sig, root.to_string_lossy().into_owned())
}

fn good() -> Sign {
    Sign::github("example/alpha", "publish.yml")
}

#[test]
fn a_pinned_publisher_verifies_is_cached_and_verifies_again_offline() {
    let (w, _sig, root) = signed_world(&good());
    let doc = w
        .run(&["fetch", "--json", "--sigstore-trust-root", &root])
        .ok()
        .json();
    let arts = doc["artifacts"].as_array().unwrap();
    assert_eq!(arts[1]["publisher"]["status"], "verified", "{doc}");
    assert_eq!(
        arts[1]["publisher"]["identity"],
        "https://github.com/example/alpha/.github/workflows/publish.yml@refs/tags/v1.0"
    );
    assert_eq!(arts[2]["publisher"]["status"], "none");
    let cached = w.blob(&w.wheels[0].1).with_extension("provenance");
    assert!(
        cached.is_file(),
        "the verified provenance is kept beside the wheel"
    );
    // Offline, from the cache: verified again, no connection.
    let connections = w.mirror.connections();
    w.run(&["fetch", "--offline", "--sigstore-trust-root", &root])
        .ok();
    assert_eq!(w.mirror.connections(), connections);
}

fn refused(sign: &Sign) -> String {
    let (w, _sig, root) = signed_world(sign);
    let r = w.run(&["fetch", "--sigstore-trust-root", &root]).code(3);
    let cached = w.blob(&w.wheels[0].1).with_extension("provenance");
    assert!(!cached.exists(), "a refused provenance is not kept");
    assert!(
        r.stderr.contains("alpha-1.0-py3-none-any.whl"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("expected: GitHub repository example/alpha, workflow publish.yml"),
        "{}",
        r.stderr
    );
    r.stderr
}

#[test]
fn another_publisher_is_refused_with_exit_3_naming_both() {
    let stderr = refused(&Sign::github("attacker/alpha", "publish.yml"));
    assert!(
        stderr
            .contains("found:    https://github.com/attacker/alpha/.github/workflows/publish.yml@"),
        "{stderr}"
    );
}

#[test]
fn a_signature_for_another_digest_is_refused() {
    let mut s = good();
    s.subject_sha256 = Some(support::sha256_hex(b"other bytes"));
    let stderr = refused(&s);
    assert!(stderr.contains("the signed sha256 is"), "{stderr}");
}

#[test]
fn a_certificate_from_outside_the_trust_root_is_refused() {
    let mut s = good();
    s.foreign_ca = true;
    let stderr = refused(&s);
    assert!(
        stderr.contains("not issued by a certificate authority of the trust root"),
        "{stderr}"
    );
}

#[test]
fn a_missing_inclusion_proof_is_refused() {
    let mut s = good();
    s.no_inclusion_proof = true;
    let stderr = refused(&s);
    assert!(stderr.contains("no inclusion proof"), "{stderr}");
}

#[test]
fn the_pinned_public_root_refuses_a_test_signature() {
    let (w, _sig, _root) = signed_world(&good());
    let r = w.run(&["fetch"]).code(3);
    assert!(
        r.stderr.contains("is not in the trust root"),
        "{}",
        r.stderr
    );
}

#[test]
fn require_provenance_refuses_the_artifacts_that_pin_none() {
    let (w, _sig, root) = signed_world(&good());
    let r = w
        .run(&[
            "fetch",
            "--require-provenance",
            "--sigstore-trust-root",
            &root,
        ])
        .code(3);
    assert!(
        r.stderr.contains("beta_pkg-2.1-py3-none-any.whl"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--require-provenance"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("alpha-1.0"),
        "alpha verified: {}",
        r.stderr
    );
}

#[test]
fn a_provenance_the_index_does_not_serve_fails_and_offline_names_the_cache() {
    let w = World::new();
    w.pin_provenance(
        &w.wheels[1].1.clone(),
        "{repository: example/beta, workflow: release.yml}",
    );
    let r = w.run(&["fetch"]).code(4);
    assert!(
        r.stderr
            .contains("/integrity/beta-pkg/2.1/beta_pkg-2.1-py3-none-any.whl/provenance"),
        "{}",
        r.stderr
    );
    let r = w.run(&["fetch", "--offline"]).code(4);
    assert!(
        r.stderr.contains("its provenance is not in the cache"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_cpython_bundle_verifies_and_one_for_another_file_is_refused() {
    let w = World::new();
    let sig = TestSigstore::new();
    let root = w.path("trusted_root.json");
    std::fs::write(&root, sig.trust_root_json()).unwrap();
    let root = root.to_string_lossy().into_owned();
    w.pin_provenance(&w.embed.clone(), CPYTHON);
    let signer = Sign::signer("thomas@python.org", "https://accounts.google.com");
    w.serve_embeddable_bundle(&sig.bundle(b"another release", &signer));
    let r = w.run(&["fetch", "--sigstore-trust-root", &root]).code(3);
    assert!(
        r.stderr.contains("python-3.12.10-embed-amd64.zip"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("expected: thomas@python.org (issuer https://accounts.google.com)"),
        "{}",
        r.stderr
    );
    w.serve_embeddable_bundle(&sig.bundle(&w.embed, &signer));
    let doc = w
        .run(&["fetch", "--json", "--sigstore-trust-root", &root])
        .ok()
        .json();
    assert_eq!(
        doc["artifacts"][0]["publisher"]["identity"],
        "thomas@python.org"
    );
}

#[test]
fn build_verifies_before_it_places_anything() {
    let (w, _sig, root) = signed_world(&Sign::github("attacker/alpha", "publish.yml"));
    let dest = w.path("dist");
    let dest_s = dest.to_string_lossy().into_owned();
    w.run(&["build", &dest_s, "--sigstore-trust-root", &root])
        .code(3);
    assert!(
        !dest.exists(),
        "nothing is placed when a publisher does not verify"
    );
}

#[test]
fn a_bad_trust_root_or_provenance_field_is_an_input_error() {
    let w = World::new();
    let bad = w.path("root.json");
    std::fs::write(&bad, "{}").unwrap();
    let r = w
        .run(&["fetch", "--sigstore-trust-root", &bad.to_string_lossy()])
        .code(2);
    assert!(r.stderr.contains("--sigstore-trust-root"), "{}", r.stderr);
    w.pin_provenance(&w.wheels[0].1.clone(), "someone");
    let r = w.run(&["fetch"]).code(2);
    assert!(r.stderr.contains("wheels[0].provenance"), "{}", r.stderr);
}
