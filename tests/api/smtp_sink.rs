//! A minimal SMTP server for the tests: accepts every message and keeps it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub struct SmtpSink {
    pub address: SocketAddr,
    messages: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        SmtpSink::start_on("127.0.0.1:0".parse().expect("addr")).await
    }

    pub async fn start_on(address: SocketAddr) -> SmtpSink {
        let listener = TcpListener::bind(address).await.expect("bind SMTP sink");
        let address = listener.local_addr().expect("addr");
        let messages: Arc<Mutex<Vec<String>>> = Arc::default();
        let store = messages.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                    while let Ok(Some(line)) = lines.next_line().await {
                        let command = line.to_ascii_uppercase();
                        let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
                            b"250-sink\r\n250 8BITMIME\r\n"
                        } else if command.starts_with("DATA") {
                            let _ = write.write_all(b"354 go ahead\r\n").await;
                            let mut message = String::new();
                            while let Ok(Some(data)) = lines.next_line().await {
                                if data == "." {
                                    break;
                                }
                                message.push_str(&data);
                                message.push('\n');
                            }
                            if let Ok(mut store) = store.lock() {
                                store.push(message);
                            }
                            b"250 queued\r\n"
                        } else if command.starts_with("QUIT") {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        } else {
                            b"250 OK\r\n"
                        };
                        if write.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        SmtpSink { address, messages, task }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// The message's text with base64 and quoted-printable parts decoded, for assertions.
pub fn readable(message: &str) -> String {
    let mut out = String::new();
    let mut encoding = "";
    let mut in_body = false;
    let mut block = String::new();
    for line in message.lines() {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("content-transfer-encoding:") {
            encoding = if lower.contains("base64") {
                "base64"
            } else if lower.contains("quoted-printable") {
                "qp"
            } else {
                ""
            };
            in_body = false;
            continue;
        }
        if line.is_empty() && !encoding.is_empty() && !in_body {
            in_body = true;
            block.clear();
            continue;
        }
        if in_body && line.starts_with("--") {
            out.push_str(&decode(encoding, &block));
            in_body = false;
            encoding = "";
        }
        if in_body {
            block.push_str(line);
            block.push('\n');
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn decode(encoding: &str, block: &str) -> String {
    match encoding {
        "base64" => {
            let joined: String = block.split_whitespace().collect();
            String::from_utf8_lossy(&base64::engine::general_purpose::STANDARD.decode(joined).unwrap_or_default()).to_string()
        }
        "qp" => {
            let soft = block.replace("=\n", "");
            let bytes = soft.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'='
                    && i + 2 < bytes.len()
                    && let Ok(b) = u8::from_str_radix(&soft[i + 1..i + 3], 16)
                {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(bytes[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).to_string()
        }
        _ => block.to_string(),
    }
}

/// The verification link in a 登録確認 mail.
pub fn verification_link(message: &str) -> String {
    let text = readable(message);
    let start = text.find("http://").expect("a link in the mail");
    let end = text[start..].find(|c: char| c.is_whitespace() || c == '"' || c == '<').map_or(text.len(), |e| start + e);
    text[start..end].to_string()
}
