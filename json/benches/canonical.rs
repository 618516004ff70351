//! `cargo bench -p sepia-json --bench canonical`: nanoseconds to re-encode
//! bench/run.sh's token-issuing backend answer (~0.5 KiB) in Go's encoding,
//! as a JSON endpoint does once a request and the signer once more.

use std::{hint::black_box, time::Instant};

const BODY: &[u8] = br#"{"access_token":{"aud":"https://api.example.com","iss":"https://auth.example.com","sub":"1234567890","jti":"mnb23vcsrt756yuiomnbvcx98ertyuiop","roles":["role_a","role_b"],"exp":1735689600},"refresh_token":{"aud":"https://api.example.com","iss":"https://auth.example.com","sub":"1234567890","jti":"mnb23vcsrt756yuiomn12876bvcx98ertyuiop","exp":1735689600},"exp":1735689600,"user":{"name":"John Doe","email":"john@example.com","plan":"pro","tags":["a","b","c"]}}"#;

fn main() {
    // As the backend wrote it (keys unsorted), and as the gateway hands it
    // to a response modifier such as the signer (already canonical).
    let mut canonical = Vec::new();
    let _ = sepia_json::write_canonical(&mut canonical, BODY);
    for (what, body) in [("backend's", BODY), ("canonical", canonical.as_slice())] {
        println!(
            "write_canonical_object, {what} {} bytes: {:.0} ns/call (median of 7)",
            body.len(),
            median_ns(body)
        );
    }
}

fn median_ns(body: &[u8]) -> f64 {
    const CALLS: u32 = 200_000;
    let mut runs = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        for _ in 0..CALLS {
            let mut out = Vec::with_capacity(body.len());
            let members = sepia_json::write_canonical_object(&mut out, black_box(body));
            black_box((&out, &members));
        }
        runs.push(start.elapsed().as_nanos() as f64 / f64::from(CALLS));
    }
    runs.sort_by(f64::total_cmp);
    runs[3]
}
