//! nutcracker.yml parsing (`config::parse`), then each valid pool's ring built as the pool builds
//! it (all servers live, then every other one ejected) and keys dispatched. Invariants: a config
//! error is an error, never a panic; a key lands on a live server of the pool.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_ambassador::config;
use redis_ambassador::dist::{Ring, RingServer, key_hash};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let pools = match config::parse(text) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for pool in &pools {
        for eject_odd in [false, true] {
            let rs: Vec<RingServer<'_>> = pool
                .servers
                .iter()
                .enumerate()
                .map(|(i, s)| RingServer {
                    label: &s.label,
                    weight: s.weight,
                    live: !(eject_odd && i % 2 == 1),
                })
                .collect();
            let ring = Ring::build(pool.distribution, &rs);
            assert_eq!(ring.is_empty(), !rs.iter().any(|s| s.live));
            for key in [&b"foo"[..], b"{user1}:a", b"", b"bar:{}:baz"] {
                let h = key_hash(pool.hash, key, pool.hash_tag, rs.len());
                if let Some(i) = ring.dispatch(h, h.rotate_left(7)) {
                    assert!(i < rs.len() && rs[i].live, "key on a server not live");
                }
            }
        }
    }
});
