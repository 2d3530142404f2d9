//! Benchmark: the cost of verifying one VMCP (parse, required fields, canonical buffer, signature)
//! for RSA-2048, RSA-4096 and Ed25519 keys, against a baseline measured in the same run: the same
//! work without the signature check (parse + canonical buffer).
//!
//! Run: `cargo run --release -p webapi-core --example trust_bench` (results go to docs/benchmarks.md).

use std::hint::black_box;
use std::time::{Duration, Instant};

use rsa::pkcs8::EncodePrivateKey;
use webapi_core::trust::canonical::canonical_buffer;
use webapi_core::trust::tools::sign_vmcp;
use webapi_core::trust::vmcp::{parse_vmcp, validate_vmcp};
use webapi_core::trust::SigningKey;

const SALT: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-a";
const DOC: &str = r#"{"name":"cvm-test_vm2","secret":"s3cr3t","cpus":2,"memory":512,"disk":0,"flags":9,
 "cernvmVersion":"latest","cernvmFlavor":"prod","executionCap":50,
 "diskURL":"http://127.0.0.1:8000/img/disk.vdi.gz",
 "diskChecksum":"0000000000000000000000000000000000000000000000000000000000000000",
 "userData":"[cernvm]\nusers=user:users:${password:changeme}\n","canOverride":"password","apiPort":80}"#;

/// Mean time per call of `f`, measured for about `budget` after a short warm-up.
fn time_per_op(budget: Duration, mut f: impl FnMut()) -> Duration {
    for _ in 0..50 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < budget {
        for _ in 0..20 {
            f();
        }
        n += 20;
    }
    start.elapsed() / n
}

fn rsa_key(bits: usize) -> SigningKey {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).unwrap();
    SigningKey::from_der("PRIVATE KEY", key.to_pkcs8_der().unwrap().as_bytes()).unwrap()
}

fn ed25519_key() -> SigningKey {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    SigningKey::from_der("PRIVATE KEY", pkcs8.as_ref()).unwrap()
}

fn main() {
    let budget = Duration::from_secs(2);
    let baseline = time_per_op(budget, || {
        let map = parse_vmcp(black_box(DOC.as_bytes())).unwrap();
        black_box(canonical_buffer(&map, SALT));
    });
    println!("| key | µs per VMCP | × baseline |");
    println!("|---|---:|---:|");
    println!(
        "| baseline: parse + canonical buffer, no signature | {:.1} | 1.0 |",
        baseline.as_secs_f64() * 1e6
    );
    for (label, key) in [
        ("Ed25519", ed25519_key()),
        ("RSA-2048 PKCS#1 v1.5 SHA-512", rsa_key(2048)),
        ("RSA-4096 PKCS#1 v1.5 SHA-512", rsa_key(4096)),
    ] {
        let public = key.public_key().unwrap();
        let signed = sign_vmcp(DOC.as_bytes(), SALT, &key, false).unwrap().json;
        let t = time_per_op(budget, || {
            black_box(validate_vmcp(black_box(signed.as_bytes()), SALT, &public).unwrap());
        });
        println!(
            "| {label} (full check) | {:.1} | {:.1} |",
            t.as_secs_f64() * 1e6,
            t.as_secs_f64() / baseline.as_secs_f64()
        );
    }
}
