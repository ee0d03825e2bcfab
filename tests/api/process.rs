//! The binary as operators run it: configuration errors, JSON logs, graceful shutdown.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_normal-form-app");

/// Starts `normal-form-app serve` on a free port with SQLite in a temp folder; returns the child,
/// its address and a channel of its stdout lines.
fn serve(extra: &[(&str, &str)]) -> (Child, String, mpsc::Receiver<String>, tempfile::TempDir) {
    serve_logging("json", extra)
}

/// `serve` with `LOG_FORMAT` set to `format` (`json` or `text`).
fn serve_logging(format: &str, extra: &[(&str, &str)]) -> (Child, String, mpsc::Receiver<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("DATA_DIR", dir.path())
        .env("LOG_FORMAT", format)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut address = None;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        if format == "text" {
            if line.contains("event=\"listening\"") {
                address = text_field(&line, "address");
                break;
            }
            continue;
        }
        let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("log line is not JSON: {line}"));
        if json["event"] == "listening" {
            address = json["address"].as_str().map(str::to_string);
            break;
        }
    }
    (child, address.expect("server reported its address"), rx, dir)
}

/// The value of `key=value` or `key="value"` in a text log line.
fn text_field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    Some(match rest.strip_prefix('"') {
        Some(quoted) => quoted[..quoted.find('"')?].to_string(),
        None => rest.split(' ').next()?.to_string(),
    })
}

fn sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "process did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn help_explains_each_subcommand() {
    let output = Command::new(BIN).arg("--help").output().expect("help");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("serve") && text.contains("Run the web server"), "{text}");
    assert!(text.contains("migrate") && text.contains("Apply pending database migrations"), "{text}");
}

#[test]
fn bad_configuration_exits_2_with_one_line_naming_the_variable() {
    for (var, value) in
        [("LISTEN_ADDR", "not-an-address"), ("DATABASE_URL", "mysql://x"), ("LOG_FORMAT", "yaml"), ("FLOW_IDLE_MINUTES", "soon")]
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = Command::new(BIN).arg("serve").env("DATA_DIR", dir.path()).env(var, value).output().expect("run");
        assert_eq!(output.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(var), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn production_mode_refuses_to_start_without_a_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(BIN)
        .arg("serve")
        .env("DATA_DIR", dir.path())
        .env("APP_ENV", "production")
        .env("PUBLIC_BASE_URL", "https://form.example.jp")
        .env_remove("SECRET_KEY")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SECRET_KEY"));
}

#[test]
fn request_logs_are_json_lines_with_the_request_id() {
    let (mut child, address, lines, _dir) = serve(&[]);
    let mut stream = TcpStream::connect(&address).expect("connect");
    write!(stream, "GET /health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let request_id = response.lines().find_map(|l| l.strip_prefix("x-request-id: ")).expect("x-request-id header").trim().to_string();
    let line = loop {
        let line = lines.recv_timeout(Duration::from_secs(5)).expect("access log line");
        if line.contains("\"path\":\"/health\"") {
            break line;
        }
    };
    let json: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(json["level"], "INFO");
    assert_eq!(json["path"], "/health");
    assert_eq!(json["status"], 200);
    assert_eq!(json["request_id"], request_id.as_str());
    assert!(json["latency_ms"].is_number());
    assert!(json["message"].is_string());
    assert!(json["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
}

/// One request on its own connection: (status line, x-request-id).
fn send(address: &str, request: &str) -> (String, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let id = response.lines().find_map(|l| l.strip_prefix("x-request-id: ")).expect("x-request-id header").trim().to_string();
    (response.lines().next().unwrap_or_default().to_string(), id)
}

fn line_with(lines: &mpsc::Receiver<String>, needle: &str) -> serde_json::Value {
    loop {
        let line = lines.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| panic!("a log line with {needle}"));
        if line.contains(needle) {
            return serde_json::from_str(&line).expect("JSON");
        }
    }
}

#[test]
fn security_events_carry_the_id_and_path_of_their_request() {
    let (mut child, address, lines, _dir) = serve(&[("RATE_LIMIT_PER_MINUTE", "1")]);
    let post = format!(
        "POST /register/customer HTTP/1.1\r\nHost: {address}\r\nOrigin: http://{address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\nConnection: close\r\n\r\na=b"
    );
    // Logged by the handler while it runs: a POST without the form's token.
    let (status, csrf_id) = send(&address, &post);
    assert!(status.contains(" 403 "), "{status}");
    let csrf = line_with(&lines, "\"csrf_failure\"");
    assert_eq!((csrf["request_id"].as_str(), csrf["path"].as_str()), (Some(csrf_id.as_str()), Some("/register/customer")));
    assert_eq!(csrf["method"], "POST");
    // Logged by the rate limit before any handler runs.
    let (status, limited_id) = send(&address, &post);
    assert!(status.contains(" 429 "), "{status}");
    let limited = line_with(&lines, "\"rate_limited\"");
    assert_eq!((limited["request_id"].as_str(), limited["path"].as_str()), (Some(limited_id.as_str()), Some("/register/customer")));
    assert_eq!(limited["category"], "SECURITY");
    assert_ne!(csrf_id, limited_id);
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
}

/// `LOG_FORMAT=text` carries the same request fields as JSON on the lines logged inside a request.
#[test]
fn text_logs_carry_the_request_on_lines_logged_while_serving_it() {
    let (mut child, address, lines, _dir) = serve_logging("text", &[]);
    let post = format!(
        "POST /register/customer HTTP/1.1\r\nHost: {address}\r\nOrigin: http://{address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\nConnection: close\r\n\r\na=b"
    );
    let (status, request_id) = send(&address, &post);
    assert!(status.contains(" 403 "), "{status}");
    let csrf = loop {
        let line = lines.recv_timeout(Duration::from_secs(5)).expect("a csrf_failure line");
        if line.contains("event=\"csrf_failure\"") {
            break line;
        }
    };
    assert!(csrf.contains(" WARN ") && csrf.contains("category=\"SECURITY\""), "{csrf}");
    assert_eq!(text_field(&csrf, "request_id").as_deref(), Some(request_id.as_str()), "{csrf}");
    assert_eq!(text_field(&csrf, "method").as_deref(), Some("POST"), "{csrf}");
    assert_eq!(text_field(&csrf, "path").as_deref(), Some("/register/customer"), "{csrf}");
    assert!(!csrf.contains('\x1b'), "no colour codes in a pipe: {csrf}");
    // The access-log line names the same request in the same form.
    let completed = loop {
        let line = lines.recv_timeout(Duration::from_secs(5)).expect("the access-log line");
        if line.contains("event=\"request_completed\"") {
            break line;
        }
    };
    assert_eq!(text_field(&completed, "request_id").as_deref(), Some(request_id.as_str()), "{completed}");
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
}

#[test]
fn sigterm_lets_a_slow_request_finish_then_exits_0() {
    let (mut child, address, lines, _dir) = serve(&[]);
    let body = "family_name=%E5%B1%B1%E7%94%B0&given_name=%E5%A4%AA%E9%83%8E";
    let mut stream = TcpStream::connect(&address).expect("connect");
    // Headers and half the body now; the rest only after SIGTERM has arrived.
    write!(
        stream,
        "POST /register/customer HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..20]
    )
    .expect("write head");
    stream.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(300));
    sigterm(&child);
    let started = loop {
        let line = lines.recv_timeout(Duration::from_secs(5)).expect("shutdown log");
        if line.contains("shutdown_started") {
            break true;
        }
    };
    assert!(started);
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().expect("try_wait").is_none(), "still draining the in-flight request");
    stream.write_all(&body.as_bytes()[20..]).expect("write rest");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    // No CSRF token in this request, so the complete answer is the 403 page.
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(response.contains("もう一度送信してください"));
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    assert!(TcpStream::connect(&address).is_err(), "no longer accepting");
}

#[test]
fn cloudwatch_emf_lines_carry_the_runbooks_namespaces() {
    let (mut child, address, lines, _dir) = serve(&[("METRICS_CLOUDWATCH_EMF", "1"), ("METRICS_CLOUDWATCH_EMF_INTERVAL_SECS", "1")]);
    let mut stream = TcpStream::connect(&address).expect("connect");
    write!(stream, "GET /health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let emf = loop {
        let line = lines.recv_timeout(Duration::from_secs(10)).expect("an EMF line within the interval");
        let json: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
        if json.get("_aws").is_some() {
            break json;
        }
    };
    assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Normal-Form-App/Application");
    for name in ["ErrorRate", "ResponseTime", "ActiveSessions", "Registrations", "CSRFFailures", "RateLimited"] {
        assert!(emf[name].is_number(), "{name}");
    }
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
}

/// Canary values go through every form; none may appear in any log line, even at debug level.
#[test]
fn no_personal_data_reaches_the_logs() {
    const PASSWORD: &str = "Canary-Pass-7Q9Z-horse";
    const EMAIL: &str = "canary.mail.7q9z@example.jp";
    const PHONE: &str = "09077779999";
    let (mut child, address, lines, _dir) = serve(&[("RUST_LOG", "debug"), ("OUTBOX_POLL_SECS", "1")]);
    let base = format!("http://{address}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let client = crate::helpers::client();
        let token = |html: &str| crate::helpers::csrf_token(html);
        let get = |path: &str| {
            let client = client.clone();
            let url = format!("{base}{path}");
            async move { client.get(url).send().await.expect("get").text().await.expect("body") }
        };
        let customer = [
            ("family_name", "山田"),
            ("given_name", "太郎"),
            ("family_name_kana", "やまだ"),
            ("given_name_kana", "たろう"),
            ("email", EMAIL),
            ("email_confirm", EMAIL),
            ("password", PASSWORD),
            ("phone", PHONE),
            ("birth_date", "1990-04-01"),
        ];
        // A CSRF failure and a validation error carrying the canaries, then the real thing.
        client.post(format!("{base}/register/customer")).form(&customer).send().await.expect("post");
        let html = get("/register/customer").await;
        let mut invalid = customer.to_vec();
        invalid.push(("email_confirm", "other@example.jp"));
        invalid.retain(|(k, v)| *k != "email_confirm" || *v == "other@example.jp");
        let t = token(&html);
        invalid.push(("csrf_token", &t));
        // The rejected post stores the flow; the page shown again carries the flow's token.
        let shown = client.post(format!("{base}/register/customer")).form(&invalid).send().await.expect("post");
        let t = token(&shown.text().await.expect("body"));
        let mut form = customer.to_vec();
        form.push(("csrf_token", &t));
        client.post(format!("{base}/register/customer")).form(&form).send().await.expect("post");
        let t = token(&get("/register/address").await);
        let mut form = ADDRESS_FORM.to_vec();
        form.push(("csrf_token", &t));
        client.post(format!("{base}/register/address")).form(&form).send().await.expect("post");
        let t = token(&get("/register/plan").await);
        client.post(format!("{base}/register/plan")).form(&[("plan_id", "basic"), ("csrf_token", &t)]).send().await.expect("post");
        let t = token(&get("/register/confirm").await);
        client.post(format!("{base}/register/confirm")).form(&[("agree", "yes"), ("csrf_token", &t)]).send().await.expect("post");
        client
            .post(format!("{base}/register/validate"))
            .form(&[("field", "password"), ("value", PASSWORD), ("email", EMAIL)])
            .send()
            .await
            .expect("post");
        client.post(format!("{base}/verify-email/resend")).form(&[("email", EMAIL)]).send().await.expect("post");
        client.get(format!("{base}/verify-email?n=X&e=1&s={PASSWORD}")).send().await.expect("get");
        tokio::time::sleep(Duration::from_secs(2)).await; // let the outbox worker send (to .eml files)
    });
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
    let logged: Vec<String> = lines.try_iter().collect();
    assert!(logged.len() > 10, "the run was logged");
    for line in &logged {
        for canary in [PASSWORD, EMAIL, "canary.mail", PHONE, "090-7777"] {
            assert!(!line.contains(canary), "{canary} leaked into the log: {line}");
        }
    }
    assert!(logged.iter().any(|l| l.contains("\"category\":\"SECURITY\"") && l.contains("csrf_failure")));
}

const ADDRESS_FORM: &[(&str, &str)] = &[("postal_code", "1500002"), ("prefecture", "東京都"), ("city", "渋谷区"), ("street", "渋谷2-21-1")];

#[test]
fn oversized_bodies_are_logged_as_security_events() {
    let (mut child, address, lines, _dir) = serve(&[]);
    let mut stream = TcpStream::connect(&address).expect("connect");
    let body = "a".repeat(70 * 1024);
    write!(
        stream,
        "POST /register/customer HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    let line = loop {
        let line = lines.recv_timeout(Duration::from_secs(5)).expect("security log line");
        if line.contains("malformed_request") {
            break line;
        }
    };
    let json: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(json["category"], "SECURITY");
    assert_eq!(json["level"], "WARN");
    assert_eq!(json["path"], "/register/customer");
    assert!(json["request_id"].is_string());
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
}
