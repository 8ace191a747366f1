//! Signature checks: a public key's (a linear combination of two points,
//! as k256 verifies, plus the parity of y), a prepared key's (with the
//! precomputed tables of `fixed_base`; alone and in batches), and sender
//! recovery. Both checks accept exactly the signatures that recover to the
//! key.
//!
//! `cargo bench -p stele-types --bench crypto`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stele_types::{Hash, PreparedKey, SecretKey, Signature, keccak256, verify_recoverable_batch};

fn signatures(c: &mut Criterion) {
    let key = match SecretKey::from_bytes(&[7u8; 32]) {
        Ok(k) => k,
        Err(e) => panic!("fixed key: {e}"),
    };
    let digest = keccak256(b"stele crypto bench");
    let sig = key.sign_digest(&digest);
    let public = key.public_key();
    let prepared = match public.prepare() {
        Ok(p) => p,
        Err(e) => panic!("prepare: {e}"),
    };
    let mut g = c.benchmark_group("signature");
    g.bench_function("public_verify", |b| {
        b.iter(|| public.verify(&digest, &sig).is_ok())
    });
    g.bench_function("prepared_verify", |b| {
        b.iter(|| prepared.verify(&digest, &sig).is_ok())
    });
    g.bench_function("recover_address", |b| {
        b.iter(|| sig.recover_address(&digest).is_ok())
    });
    g.bench_function("prepare_key", |b| b.iter(|| public.prepare().is_ok()));
    g.finish();

    // 64 signatures by 64 keys, as a gossip batch brings them; reported
    // per signature.
    let signers: Vec<(PreparedKey, Hash, Signature)> = (1..=64u8)
        .map(|n| {
            let key = match SecretKey::from_bytes(&[n; 32]) {
                Ok(k) => k,
                Err(e) => panic!("fixed key: {e}"),
            };
            let digest = keccak256(&[n]);
            let prepared = match key.public_key().prepare() {
                Ok(p) => p,
                Err(e) => panic!("prepare: {e}"),
            };
            (prepared, digest, key.sign_digest(&digest))
        })
        .collect();
    let checks: Vec<(&PreparedKey, &Hash, &Signature)> =
        signers.iter().map(|(k, d, s)| (k, d, s)).collect();
    let mut g = c.benchmark_group("signature_x64");
    g.throughput(Throughput::Elements(64));
    g.bench_function("verify_recoverable_one_by_one", |b| {
        b.iter(|| checks.iter().all(|(k, d, s)| k.verify(d, s).is_ok()))
    });
    g.bench_function("verify_recoverable_batch", |b| {
        b.iter(|| verify_recoverable_batch(&checks).iter().all(Result::is_ok))
    });
    g.finish();
}

criterion_group!(benches, signatures);
criterion_main!(benches);
