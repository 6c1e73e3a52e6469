//! The key distribution (`dist::Ring::build`, ketama points from `hash::ketama_md5`, modula and
//! random) over random server lists, and every key hash over random keys. Input: a selector, up
//! to 16 servers as (weight, 4 bytes little-endian; live bit and label length; label), then key bytes. Invariants: a key lands
//! on a live server; the ketama ring is empty exactly when no server is live.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_ambassador::dist::{Distribution, Ring, RingServer, key_hash, tagged_key};
use redis_ambassador::hash::{ALL, HashFn, ketama_md5};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let dist = match sel % 3 {
        0 => Distribution::Ketama,
        1 => Distribution::Modula,
        _ => Distribution::Random,
    };
    let hash = ALL[usize::from(sel >> 2) % ALL.len()].1;
    let mut labels = Vec::new();
    let mut specs = Vec::new();
    // Any weight the type allows: nutcracker.yml takes every positive u32.
    while specs.len() < 16 && rest.len() >= 6 {
        let weight = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]).max(1);
        let live = rest[4] & 1 == 1;
        let len = usize::from(rest[4] >> 1 & 15).min(rest.len() - 5);
        labels.push(String::from_utf8_lossy(&rest[5..5 + len]).into_owned());
        specs.push((weight, live));
        rest = &rest[5 + len..];
    }
    let servers: Vec<RingServer<'_>> = specs
        .iter()
        .zip(&labels)
        .map(|(&(weight, live), label)| RingServer {
            label,
            weight,
            live,
        })
        .collect();
    let ring = Ring::build(dist, &servers);
    assert_eq!(ring.is_empty(), !servers.iter().any(|s| s.live));
    let key = rest;
    for (_, h) in ALL {
        let _ = h.hash(key);
    }
    let _ = ketama_md5(key, usize::from(sel & 3));
    let tag = (key.len() >= 2).then(|| [key[0], key[1]]);
    let tagged = tagged_key(key, tag);
    assert!(tagged.len() <= key.len());
    let h = key_hash(hash, key, tag, servers.len());
    if let Some(i) = ring.dispatch(h, h ^ 0x9e37_79b9) {
        assert!(
            i < servers.len() && servers[i].live,
            "key on a server not live"
        );
    }
    let _ = HashFn::from_name(hash.name());
});
