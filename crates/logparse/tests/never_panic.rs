//! Parsers never panic, whatever the line: each one is fed arbitrary text and text built from the
//! pieces its format is made of (so the generator reaches deep into the parser, not only its
//! first check).

use podmates_logparse::access::{AccessFormat, NGINX_COMBINED};
use podmates_logparse::syslog::SyslogParser;
use podmates_logparse::{
    Request, Timestamp, cri, detect, errorlog, klog, level, logfmt, syslog, time,
};
use proptest::prelude::*;

/// Fragments that appear in real lines, glued together at random.
fn pieces() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(" ".to_owned()),
        Just("-".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("\\\"".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(":".to_owned()),
        Just("<".to_owned()),
        Just(">".to_owned()),
        Just("=".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        Just("*".to_owned()),
        Just("1".to_owned()),
        Just("\u{e9}".to_owned()),
        Just("::1".to_owned()),
        Just("GET".to_owned()),
        Just("HTTP/1.1".to_owned()),
        Just("10/Oct/2000:13:55:36 -0700".to_owned()),
        Just("2026-11-22T01:47:31.123Z".to_owned()),
        Just("2026/11/22 01:47:31".to_owned()),
        Just("Oct 11 22:14:15".to_owned()),
        Just("Jun 8 2021 11:54:08".to_owned()),
        Just("I1202 07:00:00.123456 ".to_owned()),
        Just(" file.go:42] ".to_owned()),
        Just("[id k=\"v\"]".to_owned()),
        Just("Wed Oct 11 14:32:52.123456 2000".to_owned()),
        Just("stdout F".to_owned()),
        Just(", client: ".to_owned()),
        Just("[pid 1:tid 2]".to_owned()),
        Just("<34>".to_owned()),
        Just("<165>1 ".to_owned()),
        "[a-z0-9]{1,4}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), pieces()]
}

fn formats() -> Vec<AccessFormat> {
    vec![
        AccessFormat::nginx_combined(),
        AccessFormat::nginx_main(),
        AccessFormat::apache_common(),
        AccessFormat::apache_combined(),
        AccessFormat::nginx(r#"$remote_addr$remote_user [$time_iso8601] "$request" $status $request_time $upstream_response_time $msec"#).unwrap(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn access(s in line()) {
        for f in formats() {
            if let Ok(r) = f.parse(&s) {
                let _ = (r.time(), r.request(), r.status(), r.body_bytes_sent(), r.request_time());
                let _ = (r.upstream_response_time(), r.user_agent(), format!("{r:?}"));
                prop_assert!(r.fields().all(|(_, v)| s.contains(v)));
            }
        }
    }

    #[test]
    fn format_compilers(s in pieces()) {
        let _ = AccessFormat::nginx(&s);
        let _ = AccessFormat::apache(&s.replace('$', "%"));
    }

    #[test]
    fn other_parsers(s in line()) {
        let p = SyslogParser { reference: Timestamp::from_secs(1_800_000_000), offset: 3600 };
        let _ = p.parse(&s);
        let _ = errorlog::parse_nginx_error(&s, 0);
        let _ = errorlog::parse_apache_error(&s, -7200);
        let _ = cri::parse_cri(&s);
        let _ = logfmt::parse_logfmt(&s).count();
        let _ = detect(s.as_bytes());
        let _ = Request::parse(&s);
        let _ = level::severity_of(&s);
        let _ = time::parse_time_local(&s);
        let _ = time::parse_rfc3339(&s, 0);
        let _ = time::parse_epoch_seconds(&s);
        let _ = time::parse_ctime_prefix(s.as_bytes(), 0);
        let _ = time::parse_rfc3164(s.as_bytes(), Timestamp::from_secs(0), 0);
        let _ = time::parse_rfc3164_prefix(s.as_bytes(), Timestamp::from_secs(1_800_000_000), 0);
        let _ = klog::parse_klog(&s, Timestamp::from_secs(1_800_000_000), 0);
        let _ = syslog::sd_elements(&s).count();
        let _ = errorlog::split_client(&s);
    }

    /// Whatever values a combined line carries (within what nginx can write), they come back.
    #[test]
    fn combined_roundtrip(
        addr in "[0-9a-f:.]{1,39}",
        user in "[a-z-]{1,8}",
        path in "/[a-z0-9/%]{0,20}",
        query in proptest::option::of("[a-z0-9=&]{0,10}"),
        status in 100u16..600,
        bytes in 0u64..10_000_000,
        ua in "[ -~]{0,40}",
        secs in 0i64..4_000_000_000,
    ) {
        let ua = ua.replace('"', "\\x22");
        let target = match &query { Some(q) => format!("{path}?{q}"), None => path.clone() };
        let c = Timestamp::from_secs(secs).civil();
        const MON: [&str; 12] = ["Jan","Feb","Mar","Apr","May","Jun","Jul","Aug","Sep","Oct","Nov","Dec"];
        let t = format!("{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000", c.day, MON[c.month as usize - 1], c.year, c.hour, c.minute, c.second);
        let line = format!(r#"{addr} - {user} [{t}] "GET {target} HTTP/2.0" {status} {bytes} "-" "{ua}""#);
        let f = AccessFormat::nginx(NGINX_COMBINED).unwrap();
        let r = f.parse(&line).unwrap();
        prop_assert_eq!(r.get("remote_addr"), Some(addr.as_str()));
        prop_assert_eq!(r.status(), Some(status));
        prop_assert_eq!(r.body_bytes_sent(), Some(bytes));
        prop_assert_eq!(r.get("http_user_agent"), Some(ua.as_str()));
        prop_assert_eq!(r.time().unwrap().unwrap().secs, secs);
        let q = r.request().unwrap();
        prop_assert_eq!(q.path, Some(path.as_str()));
        prop_assert_eq!(q.query, query.as_deref());
        prop_assert_eq!(q.version(), Some("2.0"));
    }
}
