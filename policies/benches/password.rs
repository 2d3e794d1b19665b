//! Checking a 30-character password must cost well under 10 µs (it runs on every password change
//! and every policy-check request).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use policies::password::{PasswordContext, PasswordPolicy};

fn check_30_chars(c: &mut Criterion) {
    let policy = PasswordPolicy::default();
    let ok = "Xk7#pR2@mW9$qT4%vN6&hJ3*fL8!zB";
    let bad = "Xk7#pR2@mW9$qT4%vN6&hJ0 fL8!zz";
    assert_eq!(ok.chars().count(), 30);
    let ctx = PasswordContext {
        user_id: Some("staff01"),
        current_password: Some("Old#pass1"),
    };
    assert!(policy.check(ok, &ctx).is_empty());
    c.bench_function("check 30-char valid password", |b| {
        b.iter(|| policy.check(black_box(ok), black_box(&ctx)))
    });
    c.bench_function("check 30-char invalid password", |b| {
        b.iter(|| policy.check(black_box(bad), black_box(&ctx)))
    });
}

criterion_group!(benches, check_30_chars);
criterion_main!(benches);
