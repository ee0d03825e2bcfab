//! The Argon2id ceiling: how many password hashes per second this machine can make with the app's
//! exact settings (m = 19456 KiB, t = 2, p = 1), on all cores. Every registration hashes its
//! password once (at the お客様情報 step), so this bounds registrations/s.
//!
//! It goes through the app's own `PasswordHasher` (blocking pool, one permit per core), as the
//! server does, keeping twice as many hashes requested as there are cores.
//!
//! ```sh
//! cargo run --release --example argon2_ceiling -- --seconds 10 [--json]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use normal_form_app::password::PasswordHasher;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 =
        args.iter().position(|a| a == "--seconds").and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let json = args.iter().any(|a| a == "--json");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);

    let hasher = PasswordHasher::new();
    let sample = hasher.hash("correct-horse-battery-42".into()).await?;
    let params = sample.split('$').nth(3).unwrap_or_default().to_string();

    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut workers = Vec::new();
    for _ in 0..cores * 2 {
        let (hasher, done) = (hasher.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if hasher.hash("correct-horse-battery-42".into()).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let hashes = done.load(Ordering::Relaxed);
    let per_second = hashes as f64 / elapsed;
    let per_hash_ms = elapsed * 1000.0 * cores as f64 / hashes.max(1) as f64;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "params": params, "cores": cores, "seconds": (elapsed * 100.0).round() / 100.0, "hashes": hashes,
                "hashes_per_s": (per_second * 100.0).round() / 100.0, "ms_per_hash_per_core": (per_hash_ms * 10.0).round() / 10.0,
            })
        );
    } else {
        println!(
            "argon2id {params}: {hashes} hashes in {elapsed:.1} s on {cores} cores -> {per_second:.1} hashes/s ({per_hash_ms:.1} ms per hash per core)"
        );
    }
    Ok(())
}
