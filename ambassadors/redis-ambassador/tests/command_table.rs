//! The command table against the real redis-server's `COMMAND INFO`: every command the proxy
//! routes exists there, and where the proxy looks for the first key is where redis-server says
//! it is (or redis-server marks the keys as movable, for numkeys and STREAMS forms).

use crate::common::{Client, redis};
use redis_ambassador::command::{COMMANDS, Kind};
use redis_ambassador::resp;

fn elements(r: &[u8]) -> Vec<Vec<u8>> {
    resp::array_elements(r)
        .unwrap_or_default()
        .into_iter()
        .map(|(s, e)| r[s..e].to_vec())
        .collect()
}

#[test]
fn key_positions_agree_with_redis_server() {
    let server = redis();
    let mut c = Client::connect(server.port);
    let mut checked = 0;
    for cmd in COMMANDS {
        let (name, want_first): (String, Option<i64>) = match cmd.kind {
            Kind::Local
            | Kind::Tx
            | Kind::Fan(_)
            | Kind::Scan
            | Kind::Publish
            | Kind::Subscribe => {
                continue;
            }
            Kind::KeyAt(2) => {
                // Container commands: the key is argument 2 of the subcommand.
                let sub = match cmd.name {
                    "OBJECT" => "ENCODING",
                    "MEMORY" => "USAGE",
                    "XINFO" => "STREAM",
                    _ => "CREATE",
                };
                (format!("{}|{}", cmd.name, sub), Some(2))
            }
            Kind::NumKeys { dest: false, .. } | Kind::Streams => (cmd.name.to_owned(), None),
            _ => (cmd.name.to_owned(), Some(1)),
        };
        let r = c.call(&[b"COMMAND", b"INFO", name.as_bytes()]);
        let outer = elements(&r);
        assert_eq!(outer.len(), 1, "{name}: {}", String::from_utf8_lossy(&r));
        let info = elements(&outer[0]);
        assert!(info.len() >= 6, "redis-server does not know {name}");
        let first = resp::parse_int_reply(&info[3]).unwrap();
        let flags = String::from_utf8_lossy(&info[2]).to_lowercase();
        match want_first {
            Some(w) => assert_eq!(first, w, "{name}: first key"),
            None => assert!(
                flags.contains("movablekeys") || first == 0,
                "{name}: redis-server has fixed keys at {first}, the table counts them"
            ),
        }
        if cmd.kind == Kind::SplitMset || cmd.kind == Kind::PairsSameServer {
            assert_eq!(resp::parse_int_reply(&info[5]), Some(2), "{name}: key step");
        }
        checked += 1;
    }
    assert!(checked > 150, "only {checked} commands checked");
}
