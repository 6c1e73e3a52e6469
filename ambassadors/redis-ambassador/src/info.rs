//! INFO answered by the proxy: the sections of one server's reply, with what describes the
//! proxy (client count, role, loading) and what sums over the pool (keyspace).

/// Merges the INFO texts of the servers that answered into one reply.
///
/// The first server's text gives the layout and the version fields; `connected_clients` is the
/// proxy's own client count, `role` is `master` (the application writes through the proxy),
/// `loading` is 1 while any server loads (clients such as ioredis wait for `loading:0`), and
/// `blocked_clients` and the `dbN:keys=..,expires=..` lines are summed over the servers.
pub fn merge(texts: &[String], clients: i64) -> String {
    let Some(first) = texts.first() else {
        return String::new();
    };
    let loading = texts
        .iter()
        .any(|t| t.lines().any(|l| l.trim_end() == "loading:1"));
    // db -> (keys, expires, avg_ttl)
    let mut dbs: Vec<(String, u64, u64, u64)> = Vec::new();
    for t in texts {
        for l in t.lines() {
            let Some((db, rest)) = l.trim_end().split_once(':') else {
                continue;
            };
            if !db.starts_with("db") || !db[2..].bytes().all(|b| b.is_ascii_digit()) || db.len() < 3
            {
                continue;
            }
            let mut v = [0u64; 3];
            for kv in rest.split(',') {
                let Some((k, n)) = kv.split_once('=') else {
                    continue;
                };
                let n: u64 = n.parse().unwrap_or(0);
                match k {
                    "keys" => v[0] = n,
                    "expires" => v[1] = n,
                    "avg_ttl" => v[2] = n,
                    _ => {}
                }
            }
            match dbs.iter_mut().find(|d| d.0 == db) {
                Some(d) => {
                    d.1 += v[0];
                    d.2 += v[1];
                    d.3 = d.3.max(v[2]);
                }
                None => dbs.push((db.to_owned(), v[0], v[1], v[2])),
            }
        }
    }
    // Clients blocked in BLPOP and co: each has a connection of its own on some server.
    let blocked: u64 = texts
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(|l| l.trim_end().strip_prefix("blocked_clients:"))
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    let mut out = String::with_capacity(first.len() + 64);
    let mut in_keyspace = false;
    let mut keyspace_done = false;
    for l in first.lines() {
        let l = l.trim_end();
        if l.starts_with('#') {
            in_keyspace = l == "# Keyspace";
        }
        if in_keyspace && l.starts_with("db") {
            if !keyspace_done {
                for (db, k, e, t) in &dbs {
                    out.push_str(&format!("{db}:keys={k},expires={e},avg_ttl={t}\r\n"));
                }
                keyspace_done = true;
            }
            continue;
        }
        match l.split_once(':') {
            Some(("connected_clients", _)) => {
                out.push_str(&format!("connected_clients:{clients}\r\n"))
            }
            Some(("role", _)) => out.push_str("role:master\r\n"),
            Some(("blocked_clients", _)) => out.push_str(&format!("blocked_clients:{blocked}\r\n")),
            Some(("loading", _)) => out.push_str(if loading {
                "loading:1\r\n"
            } else {
                "loading:0\r\n"
            }),
            Some(("connected_slaves", _)) => out.push_str("connected_slaves:0\r\n"),
            Some(("master_host" | "master_port" | "master_link_status", _)) => {}
            _ => {
                out.push_str(l);
                out.push_str("\r\n");
            }
        }
        if in_keyspace && l == "# Keyspace" && !keyspace_done && !first.contains("\ndb") {
            for (db, k, e, t) in &dbs {
                out.push_str(&format!("{db}:keys={k},expires={e},avg_ttl={t}\r\n"));
            }
            keyspace_done = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::merge;

    #[test]
    fn sums_keyspace_and_shows_the_proxy() {
        let a = "# Server\r\nredis_version:7.0.15\r\n# Clients\r\nconnected_clients:3\r\nblocked_clients:1\r\n# Persistence\r\nloading:0\r\n# Replication\r\nrole:slave\r\nmaster_host:x\r\n# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=10\r\n".to_owned();
        let b = "# Server\r\nredis_version:7.0.15\r\n# Clients\r\nconnected_clients:9\r\nblocked_clients:2\r\n# Persistence\r\nloading:0\r\n# Replication\r\nrole:master\r\n# Keyspace\r\ndb0:keys=5,expires=0,avg_ttl=0\r\ndb1:keys=1,expires=0,avg_ttl=0\r\n".to_owned();
        let m = merge(&[a, b], 4);
        assert!(m.contains("redis_version:7.0.15\r\n"), "{m}");
        assert!(m.contains("connected_clients:4\r\n"), "{m}");
        assert!(m.contains("blocked_clients:3\r\n"), "{m}");
        assert!(
            m.contains("role:master\r\n") && !m.contains("master_host"),
            "{m}"
        );
        assert!(m.contains("loading:0\r\n"), "{m}");
        assert!(m.contains("db0:keys=7,expires=1,avg_ttl=10\r\n"), "{m}");
        assert!(m.contains("db1:keys=1,expires=0,avg_ttl=0\r\n"), "{m}");
    }
}
