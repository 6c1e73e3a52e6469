//! Key distribution: twemproxy's ketama, modula and random, and the hash_tag rule.
//!
//! A [`Ring`] is built from the *live* servers only, exactly like twemproxy rebuilds its continuum
//! after an ejection, so keys move while a server is out and move back when it returns.

use crate::hash::{HashFn, ketama_md5};

/// `distribution:` in nutcracker.yml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// Consistent hashing, 160 points per server scaled by weight.
    Ketama,
    /// `hash % total weight`.
    Modula,
    /// A random server for every request.
    Random,
}

impl Distribution {
    /// Parses the nutcracker.yml name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "ketama" => Some(Self::Ketama),
            "modula" => Some(Self::Modula),
            "random" => Some(Self::Random),
            _ => None,
        }
    }
}

/// What the ring needs to know about one server.
#[derive(Debug, Clone)]
pub struct RingServer<'a> {
    /// The ketama label: the server's name, or `host:port` (just `host` for port 11211).
    pub label: &'a str,
    /// The configured weight (> 0).
    pub weight: u32,
    /// Whether the server is on the ring (not ejected).
    pub live: bool,
}

/// The key -> server map for one pool at one moment.
#[derive(Debug, Clone)]
pub struct Ring {
    dist: Distribution,
    /// Ketama: sorted (point, server index).
    points: Vec<(u32, u32)>,
    /// Modula and random: (end of the server's range of slots, server index). twemproxy repeats
    /// each server `weight` times and picks `hash % total weight`; a range of `weight` slots per
    /// server picks the same server with one entry each, so any weight nutcracker.yml allows
    /// (up to `u32::MAX`) costs no memory.
    ranges: Vec<(u64, u32)>,
}

const KETAMA_POINTS_PER_SERVER: f32 = 160.0;

impl Ring {
    /// Builds the ring from the servers in configuration order.
    pub fn build(dist: Distribution, servers: &[RingServer<'_>]) -> Self {
        let live: Vec<(usize, &RingServer<'_>)> =
            servers.iter().enumerate().filter(|(_, s)| s.live).collect();
        let mut points = Vec::new();
        let mut ranges = Vec::new();
        match dist {
            Distribution::Ketama => {
                // u64: weights up to u32::MAX each must not overflow the sum.
                let total: u64 = live.iter().map(|(_, s)| u64::from(s.weight)).sum();
                let nlive = live.len() as f32;
                for (idx, s) in &live {
                    // twemproxy computes this in float (f32) with a double epsilon; f64 gives a
                    // different point count for some server counts.
                    let pct = s.weight as f32 / total as f32;
                    let x = pct * KETAMA_POINTS_PER_SERVER / 4.0 * nlive;
                    let per_server = ((f64::from(x) + 0.000_000_000_1) as f32).floor() as u32 * 4;
                    let mut label = Vec::with_capacity(s.label.len() + 8);
                    for i in 0..per_server / 4 {
                        label.clear();
                        label.extend_from_slice(s.label.as_bytes());
                        label.push(b'-');
                        label.extend_from_slice(i.to_string().as_bytes());
                        for x in 0..4 {
                            points.push((ketama_md5(&label, x), *idx as u32));
                        }
                    }
                }
                // qsort is not stable: equal points could be in either order there. With 32-bit
                // md5 points a tie between different servers is practically never seen.
                points.sort_unstable_by_key(|p| p.0);
            }
            Distribution::Modula | Distribution::Random => {
                let mut end = 0u64;
                // A server of weight 0 owns no slot; leaving it out also keeps `dispatch` from
                // dividing by a zero total when every live server weighs 0 (nutcracker.yml
                // rejects weight 0, but the ring is built from other callers too).
                for (idx, s) in live.iter().filter(|(_, s)| s.weight > 0) {
                    end += u64::from(s.weight);
                    ranges.push((end, *idx as u32));
                }
            }
        }
        Self {
            dist,
            points,
            ranges,
        }
    }

    /// Whether no server is live.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.ranges.is_empty()
    }

    /// The server index for a key hash; `random` is a caller-supplied random number used by the
    /// random distribution. `None` when no server is live.
    pub fn dispatch(&self, hash: u32, random: u32) -> Option<usize> {
        let n = match self.dist {
            Distribution::Ketama => {
                if self.points.is_empty() {
                    return None;
                }
                let i = self.points.partition_point(|p| p.0 < hash);
                return Some(self.points[if i == self.points.len() { 0 } else { i }].1 as usize);
            }
            Distribution::Modula => hash,
            Distribution::Random => random,
        };
        let total = self.ranges.last()?.0;
        let slot = u64::from(n) % total;
        let i = self.ranges.partition_point(|r| r.0 <= slot);
        Some(self.ranges[i].1 as usize)
    }
}

/// The part of `key` that is hashed: with a hash tag such as `{}`, the bytes between the first
/// opening tag and the next closing tag if that part is non-empty, else the whole key.
pub fn tagged_key(key: &[u8], tag: Option<[u8; 2]>) -> &[u8] {
    let Some([open, close]) = tag else {
        return key;
    };
    if let Some(start) = memchr::memchr(open, key) {
        let rest = &key[start + 1..];
        if let Some(end) = memchr::memchr(close, rest)
            && end > 0
        {
            return &rest[..end];
        }
    }
    key
}

/// The hash twemproxy uses to place `key`: 0 for an empty key or a pool of one server.
pub fn key_hash(hash: HashFn, key: &[u8], tag: Option<[u8; 2]>, servers: usize) -> u32 {
    if servers == 1 {
        return 0;
    }
    let k = tagged_key(key, tag);
    if k.is_empty() { 0 } else { hash.hash(k) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("127.0.0.1:{}", 7000 + i)).collect()
    }

    #[test]
    fn rings_whose_live_servers_all_weigh_zero_place_no_key() {
        let labels = servers(3);
        let rs: Vec<RingServer<'_>> = labels
            .iter()
            .map(|l| RingServer {
                label: l,
                weight: 0,
                live: true,
            })
            .collect();
        for dist in [
            Distribution::Modula,
            Distribution::Random,
            Distribution::Ketama,
        ] {
            let ring = Ring::build(dist, &rs);
            assert!(ring.is_empty(), "{dist:?}");
            assert_eq!(ring.dispatch(12345, 678), None, "{dist:?}");
        }
        // One server of weight 0 beside others: it is never chosen, the others share the slots.
        let mixed: Vec<RingServer<'_>> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| RingServer {
                label: l,
                weight: if i == 1 { 0 } else { 1 },
                live: true,
            })
            .collect();
        let ring = Ring::build(Distribution::Modula, &mixed);
        let chosen: Vec<_> = (0..6).map(|h| ring.dispatch(h, 0)).collect();
        assert_eq!(chosen, [0, 2, 0, 2, 0, 2].map(Some));
    }

    #[test]
    fn ketama_point_counts_follow_float_arithmetic() {
        // 25 equal servers: in float32, 0.04 * 160 / 4 * 25 is 39.999996, so 156 points each
        // (float64 arithmetic would give 160).
        let labels = servers(25);
        let rs: Vec<RingServer<'_>> = labels
            .iter()
            .map(|l| RingServer {
                label: l,
                weight: 1,
                live: true,
            })
            .collect();
        let ring = Ring::build(Distribution::Ketama, &rs);
        assert_eq!(ring.points.len(), 25 * 156);
        let mut per = vec![0; 25];
        for p in &ring.points {
            per[p.1 as usize] += 1;
        }
        assert!(per.iter().all(|&c| c == 156), "{per:?}");
    }

    #[test]
    fn ketama_weights_and_ejection() {
        let labels = servers(3);
        let mut rs: Vec<RingServer<'_>> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| RingServer {
                label: l,
                weight: i as u32 + 1,
                live: true,
            })
            .collect();
        let ring = Ring::build(Distribution::Ketama, &rs);
        // pct = w/6, pts = floor(pct*40*3)*4: 80, 160, 240.
        assert_eq!(ring.points.len(), 480);
        rs[1].live = false;
        let ring = Ring::build(Distribution::Ketama, &rs);
        assert!(ring.points.iter().all(|p| p.1 != 1));
        assert_eq!(ring.points.len(), 80 + 240);
    }

    #[test]
    fn modula_and_dispatch_wrap() {
        let labels = servers(2);
        let rs: Vec<RingServer<'_>> = labels
            .iter()
            .map(|l| RingServer {
                label: l,
                weight: 2,
                live: true,
            })
            .collect();
        let ring = Ring::build(Distribution::Modula, &rs);
        assert_eq!(ring.dispatch(0, 0), Some(0));
        assert_eq!(ring.dispatch(1, 0), Some(0));
        assert_eq!(ring.dispatch(2, 0), Some(1));
        let ring = Ring::build(Distribution::Ketama, &rs);
        let last = ring.points.last().unwrap().0;
        assert_eq!(ring.dispatch(u32::MAX, 0), ring.dispatch(0, 0));
        assert_eq!(
            ring.dispatch(last, 0),
            Some(ring.points.last().unwrap().1 as usize)
        );
    }

    /// Found by the `ketama` fuzz target: modula and random rings held one entry per unit of
    /// weight, so `host:port:300000000` in nutcracker.yml allocated gigabytes, and ketama's sum
    /// of two weights near `u32::MAX` overflowed.
    #[test]
    fn huge_weights_keep_the_ring_small() {
        let labels = servers(3);
        let rs: Vec<RingServer<'_>> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| RingServer {
                label: l,
                weight: if i == 2 { 1 } else { u32::MAX },
                live: true,
            })
            .collect();
        let ring = Ring::build(Distribution::Modula, &rs);
        assert_eq!(ring.ranges.len(), 3);
        assert_eq!(ring.dispatch(7, 0), Some(0));
        assert_eq!(ring.dispatch(u32::MAX, 0), Some(1));
        let ring = Ring::build(Distribution::Random, &rs);
        assert_eq!(ring.dispatch(0, u32::MAX - 1), Some(0));
        // Ketama: the two heavy servers share the points, the light one gets none (as in
        // twemproxy's float arithmetic), and the sum does not overflow.
        let ring = Ring::build(Distribution::Ketama, &rs);
        assert_eq!(ring.points.len(), 2 * 240);
        assert!(ring.points.iter().all(|p| p.1 != 2));
    }

    #[test]
    fn random_uses_the_random_number_and_only_live_servers() {
        let labels = servers(3);
        let mut rs: Vec<RingServer<'_>> = labels
            .iter()
            .map(|l| RingServer {
                label: l,
                weight: 1,
                live: true,
            })
            .collect();
        rs[0].live = false;
        let ring = Ring::build(Distribution::Random, &rs);
        let picked: std::collections::HashSet<usize> =
            (0..20).filter_map(|r| ring.dispatch(7, r)).collect();
        assert_eq!(picked, [1, 2].into_iter().collect());
        rs.iter_mut().for_each(|s| s.live = false);
        assert!(
            Ring::build(Distribution::Random, &rs)
                .dispatch(7, 0)
                .is_none()
        );
    }

    #[test]
    fn hash_tags() {
        let tag = Some(*b"{}");
        assert_eq!(tagged_key(b"user:{42}:name", tag), b"42");
        assert_eq!(tagged_key(b"user:{}:name", tag), b"user:{}:name");
        assert_eq!(tagged_key(b"user:{42", tag), b"user:{42");
        assert_eq!(tagged_key(b"plain", tag), b"plain");
        assert_eq!(tagged_key(b"a{b}c", None), b"a{b}c");
        assert_eq!(key_hash(HashFn::Fnv1a64, b"", None, 10), 0);
    }
}
