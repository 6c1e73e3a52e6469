//! log-normalize's whole line-to-JSON path (`Normalizer::line`: parser choice, every parser,
//! both schemas, added fields, syslog framing) on random lines. Invariant: every output is one
//! JSON object on one line (with `--syslog-tcp` framing: an octet count that is the JSON's length).
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use log_normalize::event::Kind;
use log_normalize::parse::Parsers;
use log_normalize::{Access, AddField, Format, Normalizer, Pattern, Schema};
use podmates_logparse::{AccessFormat, Timestamp};

const FORMATS: &[Format] = &[
    Format::Auto,
    Format::NginxCombined,
    Format::NginxMain,
    Format::NginxError,
    Format::ApacheCommon,
    Format::ApacheCombined,
    Format::ApacheError,
    Format::ApacheVhostCombined,
    Format::Klog,
    Format::Syslog,
    Format::Json,
    Format::Logfmt,
    Format::Cri,
    Format::Plain,
];

/// Every configuration, built once (formats and patterns compile at start-up in the binary too).
fn normalizers() -> Vec<(Normalizer, bool)> {
    let reference = Timestamp::from_secs(1_800_000_000);
    let mut v = Vec::new();
    for schema in [Schema::Ecs, Schema::Otel] {
        for &format in FORMATS {
            let add = vec![AddField::parse("labels.team=a\"b").expect("valid")];
            let p = Parsers::new(format, None, reference, 3600);
            v.push((Normalizer::new(p, schema, add), false));
        }
        let custom = AccessFormat::nginx(
            r#"$remote_addr [$time_iso8601] "$request" $status $request_time "$http_x_y" $x-y"#,
        )
        .expect("compiles");
        let p = Parsers::new(
            Format::Auto,
            Some(Access::new(custom, Kind::NginxCustom)),
            reference,
            0,
        );
        v.push((Normalizer::new(p, schema, Vec::new()), false));
        let apache =
            AccessFormat::apache(r#"%h %{X-Req}i "%{Cookie}C" %D %>s "%r" %t"#).expect("compiles");
        let p = Parsers::new(
            Format::Auto,
            Some(Access::new(apache, Kind::ApacheCustom)),
            reference,
            -3600,
        );
        v.push((Normalizer::new(p, schema, Vec::new()), false));
        let pattern =
            Pattern::new("%{@timestamp}#%{level} %{n:int} %{message}", None).expect("compiles");
        let p = Parsers::new(Format::Auto, None, reference, 0).with_pattern(Some(pattern));
        let resource = vec![AddField::parse_resource("k8s.pod.name=p").expect("valid")];
        v.push((
            Normalizer::new(p, schema, Vec::new()).with_resource(resource),
            false,
        ));
        let p = Parsers::new(Format::Auto, None, reference, 0);
        v.push((
            Normalizer::new(p, schema, Vec::new()).with_syslog_framing("host".to_owned()),
            true,
        ));
    }
    v
}

thread_local! {
    static NORMALIZERS: RefCell<Vec<(Normalizer, bool)>> = RefCell::new(normalizers());
}

fn check_json(json: &[u8], input: &[u8]) {
    let v: serde_json::Value = serde_json::from_slice(json).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}) for input {:?}: {}",
            String::from_utf8_lossy(input),
            String::from_utf8_lossy(json)
        )
    });
    assert!(v.is_object(), "not an object");
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, line)) = data.split_first() else {
        return;
    };
    // One line: the caller splits at newlines before `line`.
    if line.contains(&b'\n') {
        return;
    }
    NORMALIZERS.with_borrow_mut(|all| {
        let n = all.len();
        let (norm, framed) = &mut all[usize::from(sel) % n];
        let mut out = Vec::new();
        norm.line(line, Timestamp::from_secs(1_800_000_001), &mut out);
        if *framed {
            let sp = out.iter().position(|b| *b == b' ').expect("octet count");
            let len: usize = std::str::from_utf8(&out[..sp])
                .expect("digits")
                .parse()
                .expect("a count");
            let msg = &out[sp + 1..];
            assert_eq!(len, msg.len(), "octet count is not the message length");
            // The message is the RFC 5424 header (seven fields without spaces: PRI+VERSION,
            // TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID, `-` for no STRUCTURED-DATA), then
            // the JSON.
            let json = msg
                .splitn(8, |b| *b == b' ')
                .nth(7)
                .expect("JSON after the header");
            assert!(!msg.contains(&b'\n'), "newline inside a framed message");
            check_json(json, line);
        } else {
            assert_eq!(out.last(), Some(&b'\n'), "output does not end a line");
            let body = &out[..out.len() - 1];
            assert!(!body.contains(&b'\n'), "output is more than one line");
            check_json(body, line);
        }
    });
});
