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
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("DATA_DIR", dir.path())
        .env("LOG_FORMAT", "json")
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
        let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("log line is not JSON: {line}"));
        if json["event"] == "listening" {
            address = json["address"].as_str().map(str::to_string);
            break;
        }
    }
    (child, address.expect("server reported its address"), rx, dir)
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
