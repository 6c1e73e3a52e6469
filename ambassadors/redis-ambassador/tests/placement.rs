//! Differential placement test: the real nutcracker (Debian's twemproxy 0.5.0) and redis-ambassador
//! run the same pools over the same redis-server backends; thousands of random keys are written
//! through each and every backend is asked directly where each key landed. Both must agree for
//! every hash function, ketama and modula, weights, named and unnamed servers, hash tags, and a
//! ring rebuilt after an ejection.

use crate::common::{Client, cmd, free_ports, nutcracker, ours, redis, write};

const HASHES: &[&str] = &[
    "one_at_a_time",
    "md5",
    "crc16",
    "crc32",
    "crc32a",
    "fnv1_64",
    "fnv1a_64",
    "fnv1_32",
    "fnv1a_32",
    "hsieh",
    "murmur",
    "jenkins",
];

const KEYS_PER_POOL: usize = 1500;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random keys: printable and arbitrary bytes (>= 0x80 exercises twemproxy's signed chars),
/// some with a `{tag}`.
fn keys(seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut r = Rng(seed | 1);
    let mut out = std::collections::HashSet::new();
    while out.len() < n {
        let len = 1 + r.below(24) as usize;
        let binary = r.below(10) < 3;
        let mut k: Vec<u8> = (0..len)
            .map(|_| {
                if binary {
                    r.below(256) as u8
                } else {
                    b'!' + r.below(94) as u8
                }
            })
            .collect();
        if r.below(4) == 0 {
            let tag: Vec<u8> = (0..1 + r.below(4))
                .map(|_| b'a' + r.below(26) as u8)
                .collect();
            let mut t = b"user:{".to_vec();
            t.extend_from_slice(&tag);
            t.extend_from_slice(b"}:");
            t.extend_from_slice(&k);
            k = t;
        }
        out.insert(k);
    }
    out.into_iter().collect()
}

struct PoolSpec {
    name: String,
    body: String,
}

fn pools(backends: &[u16], dead: u16) -> Vec<PoolSpec> {
    let mut v = Vec::new();
    for h in HASHES {
        // ketama, named servers, weights, hash tag.
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, p)| format!("   - 127.0.0.1:{p}:{} shard-{i}\n", [1, 2, 1, 3][i % 4]))
            .collect();
        v.push(PoolSpec {
            name: format!("ketama_{h}"),
            body: format!(
                "  hash: {h}\n  hash_tag: \"{{}}\"\n  distribution: ketama\n  redis: true\n  servers:\n{servers}"
            ),
        });
        // modula, unnamed servers, weights.
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, p)| format!("   - 127.0.0.1:{p}:{}\n", [1, 1, 2, 1][i % 4]))
            .collect();
        v.push(PoolSpec {
            name: format!("modula_{h}"),
            body: format!(
                "  hash: {h}\n  distribution: modula\n  redis: true\n  servers:\n{servers}"
            ),
        });
    }
    // Unnamed ketama servers with the default hash.
    let servers: String = backends
        .iter()
        .map(|p| format!("   - 127.0.0.1:{p}:1\n"))
        .collect();
    v.push(PoolSpec {
        name: "ketama_default".into(),
        body: format!("  redis: true\n  servers:\n{servers}"),
    });
    // A dead server that both proxies eject: the ring is rebuilt from the live ones.
    let mut servers: String = backends
        .iter()
        .map(|p| format!("   - 127.0.0.1:{p}:1\n"))
        .collect();
    servers.push_str(&format!("   - 127.0.0.1:{dead}:1\n"));
    v.push(PoolSpec {
        name: "ejected".into(),
        body: format!(
            "  hash: fnv1a_64\n  distribution: ketama\n  redis: true\n  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000\n  timeout: 2000\n  servers:\n{servers}"
        ),
    });
    v
}

fn conf(specs: &[PoolSpec], ports: &[u16]) -> String {
    specs
        .iter()
        .zip(ports)
        .map(|(s, p)| format!("{}:\n  listen: 127.0.0.1:{p}\n{}", s.name, s.body))
        .collect()
}

/// Writes `keys` through the proxy at `port` and returns, per key, the backend holding it.
fn placement(port: u16, backends: &mut [Client], keys: &[Vec<u8>], warm_up: bool) -> Vec<usize> {
    for b in backends.iter_mut() {
        assert_eq!(b.q("FLUSHALL"), "+OK\r\n");
    }
    let mut c = Client::connect(port);
    if warm_up {
        // Requests to the dead server fail until it is ejected (asynchronously in nutcracker);
        // wait until a whole round of SETs succeeds.
        let mut ok = false;
        for round in 0..50 {
            let cmds: Vec<Vec<u8>> = (0..100)
                .map(|i| cmd(&[b"SET", format!("warm-{round}-{i}").as_bytes(), b"w"]))
                .collect();
            if c.pipeline(&cmds).iter().all(|r| r == b"+OK\r\n") {
                ok = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(ok, "port {port} never ejected the dead server");
    }
    let cmds: Vec<Vec<u8>> = keys.iter().map(|k| cmd(&[b"SET", k, b"v"])).collect();
    // Right after an ejection nutcracker now and then still answers a request with
    // "-ERR Connection refused"; writing the same keys again is harmless, so such a pool gets a
    // few attempts. Other pools must succeed at once.
    let attempts = if warm_up { 5 } else { 1 };
    for attempt in 1..=attempts {
        let replies = c.pipeline(&cmds);
        let bad = keys
            .iter()
            .zip(&replies)
            .find(|(_, r)| r.as_slice() != b"+OK\r\n");
        match bad {
            None => break,
            Some((k, r)) if attempt == attempts => panic!(
                "SET {k:?} through port {port}: {}",
                String::from_utf8_lossy(r)
            ),
            Some(_) => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
    }
    let mut found = vec![usize::MAX; keys.len()];
    for (bi, b) in backends.iter_mut().enumerate() {
        let cmds: Vec<Vec<u8>> = keys.iter().map(|k| cmd(&[b"EXISTS", k])).collect();
        for (i, r) in b.pipeline(&cmds).iter().enumerate() {
            if r == b":1\r\n" {
                assert_eq!(found[i], usize::MAX, "key {:?} on two backends", keys[i]);
                found[i] = bi;
            }
        }
    }
    assert!(found.iter().all(|&f| f != usize::MAX), "a key was lost");
    found
}

#[test]
fn placement_matches_nutcracker_for_every_hash_and_distribution() {
    let dir = tempfile::tempdir().unwrap();
    let servers: Vec<_> = (0..4).map(|_| redis()).collect();
    let ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    let n = pools(&ports, 0).len();
    let mut free = free_ports(2 * n + 1);
    let dead = free.pop().unwrap();
    let specs = pools(&ports, dead);
    let our_ports = free.split_off(n);
    let nc_ports = free;
    let nc_conf = write(dir.path(), "nutcracker.yml", &conf(&specs, &nc_ports));
    let our_conf = write(dir.path(), "ours.yml", &conf(&specs, &our_ports));
    let _nc = nutcracker(&nc_conf, *nc_ports.last().unwrap(), dir.path());
    let _ours = ours(&our_conf, *our_ports.last().unwrap(), &[]);
    let mut backends: Vec<Client> = ports.iter().map(|p| Client::connect(*p)).collect();
    for (i, spec) in specs.iter().enumerate() {
        let ks = keys(0x9e37_79b9 + i as u64, KEYS_PER_POOL);
        let warm = spec.name == "ejected";
        let theirs = placement(nc_ports[i], &mut backends, &ks, warm);
        let mine = placement(our_ports[i], &mut backends, &ks, warm);
        let differ: Vec<_> = ks
            .iter()
            .zip(theirs.iter().zip(&mine))
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(k, (a, b))| format!("{k:?}: nutcracker {a}, ours {b}"))
            .collect();
        assert!(
            differ.is_empty(),
            "pool {}: placement differs: {differ:#?}",
            spec.name
        );
        // Keys were spread, so the comparison saw more than one server. (crc32's hashes are 15
        // bits: on a ketama ring they all fall before the first point above 32767, one server.)
        let used = (0..ports.len()).filter(|b| theirs.contains(b)).count();
        assert!(
            used >= 2 || spec.name == "ketama_crc32",
            "pool {}: all keys on one backend",
            spec.name
        );
    }
}
