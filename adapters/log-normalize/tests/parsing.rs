//! The parsing cases other parsers' test suites and real servers showed: vectordotdev/vrl's
//! parse_nginx_log, parse_apache_log, parse_common_log, parse_syslog and parse_klog vectors
//! (their lines and expected values, our code) and lines of real Debian nginx, Apache 2.4 and
//! rsyslog, normalized by the binary and checked field by field in ECS.

use crate::common::{json_lines, normalize};
use serde_json::{Value, json};

fn ecs(args: &[&str], line: &str) -> Value {
    let mut a = vec!["--year-reference", "2026-12-02T12:00:00Z"];
    a.extend_from_slice(args);
    let (out, err, ok) = normalize(&a, format!("{line}\n").as_bytes());
    assert!(ok, "{err}");
    let v = json_lines(&out).remove(0);
    assert!(v.get("error").is_none(), "{line} did not parse: {v}");
    v
}

#[test]
fn vrl_nginx_combined() {
    for format in ["nginx-combined", "auto"] {
        let args = ["--format", format];
        // combined_line_valid: a trailing quoted field is not part of the agent.
        let v = ecs(
            &args,
            r#"172.17.0.1 - - [31/Mar/2021:12:04:07 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/7.75.0" "-""#,
        );
        assert_eq!(v["source"]["ip"], "172.17.0.1");
        assert_eq!(v["@timestamp"], "2021-03-31T12:04:07Z");
        assert_eq!(v["http"]["request"]["method"], "GET");
        assert_eq!(v["http"]["response"]["status_code"], 200);
        assert_eq!(v["http"]["response"]["body"]["bytes"], 612);
        assert_eq!(v["user_agent"]["original"], "curl/7.75.0");
        assert!(v["http"]["request"].get("referrer").is_none());

        // combined_line_valid_all_fields: `"2.75"` ($gzip_ratio) after the agent.
        let v = ecs(
            &args,
            r#"172.17.0.1 - alice [01/Apr/2021:12:02:31 +0000] "POST /not-found HTTP/1.1" 404 153 "http://localhost/somewhere" "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/72.0.3626.119 Safari/537.36" "2.75""#,
        );
        assert_eq!(v["user"]["name"], "alice");
        assert_eq!(
            v["http"]["request"]["referrer"],
            "http://localhost/somewhere"
        );
        assert_eq!(
            v["user_agent"]["original"],
            "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/72.0.3626.119 Safari/537.36"
        );
        assert_eq!(v["http"]["response"]["status_code"], 404);

        // combined_line_valid_empty_fields.
        let v = ecs(
            &args,
            r#"0.0.0.0 - - [04/Oct/2022:04:34:49 +0000] "" 400 0 "" """#,
        );
        assert_eq!(v["http"]["response"]["status_code"], 400);
        assert!(v["http"].get("request").is_none(), "{v}");

        // combined_line_valid_bot_request: bytes that are no request have no method.
        let v = ecs(
            &args,
            r#"0.0.0.0 - - [04/Oct/2022:03:07:27 +0000] "]&\xDF\xBDV\xE7\xBB<\x10;\xA2b}\xDFM\x1D" 400 150 "-" "-""#,
        );
        assert!(v["http"].get("request").is_none(), "{v}");
        assert_eq!(v["http"]["response"]["body"]["bytes"], 150);
    }
}

#[test]
fn tls_handshake_on_a_plain_port() {
    // What nginx 1.22 logs for `openssl s_client` against its plain-HTTP port.
    let v = ecs(
        &["--format", "nginx-combined"],
        r#"127.0.0.1 - - [02/Dec/2026:07:00:00 +0000] "\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03\xA6" 400 157 "-" "-""#,
    );
    assert!(v["http"].get("request").is_none(), "{v}");
    assert!(v.get("url").is_none(), "{v}");
    assert_eq!(v["http"]["response"]["status_code"], 400);
}

#[test]
fn nginx_hex_escapes_are_decoded_in_path_and_user() {
    let v = ecs(
        &["--format", "nginx-combined"],
        r#"127.0.0.1 - j\xC3\xBCrgen [02/Dec/2026:07:00:00 +0000] "GET /caf\xC3\xA9/\x22q\x22 HTTP/1.1" 404 0 "-" "curl/8""#,
    );
    assert_eq!(v["user"]["name"], "jürgen");
    assert_eq!(v["url"]["path"], "/café/\"q\"");
    // url.original is the target as logged.
    assert_eq!(v["url"]["original"], r#"/caf\xC3\xA9/\x22q\x22"#);
}

#[test]
fn vrl_apache() {
    // common_line_valid.
    let v = ecs(
        &["--format", "apache-common"],
        r#"127.0.0.1 bob frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
    );
    assert_eq!(v["@timestamp"], "2000-10-10T20:55:36Z");
    assert_eq!(v["user"]["name"], "frank");
    assert_eq!(v["url"]["path"], "/apache_pb.gif");
    assert_eq!(v["http"]["version"], "1.0");
    assert_eq!(v["http"]["response"]["body"]["bytes"], 2326);

    for format in ["apache-combined", "auto"] {
        // combined_line_valid.
        let v = ecs(
            &["--format", format],
            r#"224.92.49.50 bob frank [25/Feb/2021:12:44:08 +0000] "PATCH /one-to-one HTTP/1.1" 401 84170 "http://www.seniorinfomediaries.com/vertical/channels/front-end/bandwidth" "Mozilla/5.0 (X11; Linux i686; rv:5.0) Gecko/1945-10-12 Firefox/37.0""#,
        );
        assert_eq!(v["http"]["request"]["method"], "PATCH");
        assert_eq!(v["http"]["response"]["status_code"], 401);
        assert_eq!(v["http"]["response"]["bytes"], 84170);
        assert_eq!(
            v["user_agent"]["original"],
            "Mozilla/5.0 (X11; Linux i686; rv:5.0) Gecko/1945-10-12 Firefox/37.0"
        );
        // combined_line_missing_fields_valid: unquoted `- -`.
        let v = ecs(
            &["--format", format],
            r#"224.92.49.50 bob frank [25/Feb/2021:12:44:08 +0000] "PATCH /one-to-one HTTP/1.1" 401 84170 - -"#,
        );
        assert_eq!(v["event"]["dataset"], "apache.access");
        assert_eq!(v["url"]["path"], "/one-to-one");
        assert_eq!(v["http"]["response"]["status_code"], 401);
        assert!(v.get("user_agent").is_none());
    }

    // error_line_ip_v6 (with Apache 2.4's own time format), and a real Debian Apache 2.4 line.
    for (line, ip, port, pid) in [
        (
            "[Mon Mar 01 12:00:19.000000 2021] [ab:alert] [pid 4803:tid 3814] [client eda7:35d:3ceb:ef1e:2133:e7bf:116e:24cc:24259] I'll bypass the haptic COM bandwidth, that should matrix the CSS driver!",
            "eda7:35d:3ceb:ef1e:2133:e7bf:116e:24cc",
            24259,
            4803,
        ),
        (
            "[Wed Dec 02 07:00:00.123456 2026] [authz_core:error] [pid 4242:tid 4243] [client ::1:34840] AH01630: client denied by server configuration: /var/www/html/private",
            "::1",
            34840,
            4242,
        ),
    ] {
        let v = ecs(&["--format", "apache-error"], line);
        assert_eq!(v["source"]["ip"], ip, "{v}");
        assert_eq!(v["source"]["port"], port);
        assert_eq!(v["process"]["pid"], pid);
    }
}

#[test]
fn vhost_combined_is_detected() {
    let v = ecs(
        &[],
        r#"www.example.com:443 ::1 - - [02/Dec/2026:07:00:00 +0000] "GET / HTTP/1.1" 200 3380 "-" "curl/8""#,
    );
    assert_eq!(v["source"]["ip"], "::1");
    assert_eq!(v["http"]["response"]["bytes"], 3380);
    assert_eq!(v["apache"]["access"]["server_name"], "www.example.com");
    assert_eq!(v["apache"]["access"]["server_port"], "443");
}

#[test]
fn rfc3164_variants() {
    for (line, host, app, msg, time) in [
        (
            "<34>Jun  8 11:54:08 web1 su[1]: m",
            Some("web1"),
            "su",
            "m",
            "2026-06-08T11:54:08Z",
        ),
        (
            "<34>Jun 8 11:54:08 web1 su[1]: m",
            Some("web1"),
            "su",
            "m",
            "2026-06-08T11:54:08Z",
        ),
        (
            "<34>Jun  8 2021 11:54:08 web1 su: m",
            Some("web1"),
            "su",
            "m",
            "2021-06-08T11:54:08Z",
        ),
        (
            "<133>Jun 13 16:33:35 haproxy[73411]: Proxy sticky-servers started.",
            None,
            "haproxy",
            "Proxy sticky-servers started.",
            "2026-06-13T16:33:35Z",
        ),
        (
            "<13>Dec  2 07:00:00 web1 root[8539]:msg",
            Some("web1"),
            "root",
            "msg",
            "2026-12-02T07:00:00Z",
        ),
        (
            "Dec  2 07:00:00 web1 app[77] started",
            Some("web1"),
            "app",
            "started",
            "2026-12-02T07:00:00Z",
        ),
    ] {
        let v = ecs(&[], line);
        assert_eq!(v["event"]["dataset"], "system.syslog", "{line}");
        assert_eq!(v["@timestamp"], time, "{line}");
        assert_eq!(v["log"]["syslog"]["hostname"].as_str(), host, "{line}");
        assert_eq!(v["log"]["syslog"]["appname"], app, "{line}");
        assert_eq!(v["message"], msg, "{line}");
    }
}

#[test]
fn klog_lines() {
    for args in [&["--format", "klog"][..], &[]] {
        let v = ecs(args, "I1202 07:00:00.123456 12345 file.go:42] msg");
        assert_eq!(v["event"]["dataset"], "kubernetes.klog");
        assert_eq!(v["@timestamp"], "2026-12-02T07:00:00.123456Z");
        assert_eq!(v["log"]["level"], "info");
        assert_eq!(
            v["log"]["origin"],
            json!({"file": {"name": "file.go", "line": 42}})
        );
        assert_eq!(v["process"]["thread"]["id"], 12345);
        assert_eq!(v["message"], "msg");
    }
    // vrl's parse_klog log_line_valid.
    let v = ecs(
        &[],
        "I0505 17:59:40.692994   28133 klog.go:70] hello from klog",
    );
    assert_eq!(v["@timestamp"], "2026-05-05T17:59:40.692994Z");
    assert_eq!(v["message"], "hello from klog");
    let (out, _, _) = normalize(
        &["--schema", "otel", "--format", "klog"],
        b"W1202 07:00:00.5 1 a.go:7] careful\n",
    );
    let r = &json_lines(&out)[0]["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    assert_eq!(r["severityNumber"], 13);
}

#[test]
fn logfmt_quoted_keys() {
    let v = ecs(&[], r#"level=info msg=hi "user id"=7"#);
    assert_eq!(v["logfmt"]["user id"], "7");
    assert_eq!(v["message"], "hi");
}

#[test]
fn vrl_common_log() {
    // log_line_valid.
    let v = ecs(
        &["--format", "apache-common"],
        r#"127.0.0.1 bob frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
    );
    assert_eq!(v["@timestamp"], "2000-10-10T20:55:36Z");
    assert_eq!(
        (v["source"]["ip"].as_str(), v["user"]["name"].as_str()),
        (Some("127.0.0.1"), Some("frank"))
    );
    assert_eq!(v["http"]["request"]["method"], "GET");
    assert_eq!(v["http"]["response"]["status_code"], 200);
    assert_eq!(v["http"]["response"]["body"]["bytes"], 2326);
    // log_line_valid_empty_variant: every field absent, none invented.
    let v = ecs(&["--format", "apache-common"], r#"- - - [-] "-" - -"#);
    for k in ["source", "user", "http", "url"] {
        assert!(v.get(k).is_none(), "{k}: {v}");
    }
    // log_line_invalid, log_line_invalid_timestamp: errors, with the line kept. (vrl also
    // accepts `- - - - - - -`, with no brackets or quotes; here it is an error, line kept.)
    for line in [
        "not a common log line",
        "- - - [1234] - - -",
        "- - - - - - -",
    ] {
        let (out, _, ok) = normalize(
            &["--format", "apache-common"],
            format!("{line}\n").as_bytes(),
        );
        assert!(ok);
        let v = &json_lines(&out)[0];
        assert!(v["error"]["message"].is_string(), "{v}");
        assert_eq!(v["event"]["original"], line);
        assert_eq!(v["event"]["kind"], "pipeline_error");
    }
}
