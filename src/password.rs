//! Passwords: the rules (length, not a common breached password, not the email's local part) and
//! Argon2id hashing with OWASP's parameters, run on the blocking pool so the async executor keeps
//! serving other requests.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use argon2::{Algorithm, Argon2, Block, Params, PasswordVerifier as _, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand::RngCore;
use tokio::sync::Semaphore;

use crate::values::fields::Rule;

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("../assets/common-passwords.txt").lines().filter(|l| !l.is_empty()).collect());

pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 128;

/// Rules from NIST SP 800-63B: a length range, no composition rules, and no password that is
/// known from breaches or built from the person's own address.
pub fn check(password: &str, email: &str) -> Rule<()> {
    let chars = password.chars().count();
    if chars == 0 {
        return Err("パスワードを入力してください。".into());
    }
    if chars < MIN_CHARS {
        return Err(format!("パスワードは{MIN_CHARS}文字以上で入力してください。"));
    }
    if chars > MAX_CHARS {
        return Err(format!("パスワードは{MAX_CHARS}文字以内で入力してください。"));
    }
    if COMMON_PASSWORDS.contains(password.to_lowercase().as_str()) {
        return Err("このパスワードは流出したパスワードの一覧に含まれているため使えません。推測されにくいものにしてください。".into());
    }
    let local = email.split('@').next().unwrap_or_default();
    // Very short local parts (“a@…”) would forbid too much; three characters is already a name.
    if local.chars().count() >= 3 && password.to_lowercase().contains(local) {
        return Err("パスワードにメールアドレスの一部を含めないでください。".into());
    }
    Ok(())
}

/// OWASP: m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes into a caller's work area and writes the PHC string (`$argon2id$v=19$m=…$salt$hash`,
/// unpadded standard base64) that `verify` and any Argon2 library read.
fn hash_into(password: &[u8], blocks: &mut [Block]) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; 32];
    argon2().hash_password_into_with_memory(password, &salt, &mut out, blocks).map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(format!("$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={LANES}${}${}", STANDARD_NO_PAD.encode(salt), STANDARD_NO_PAD.encode(out)))
}

/// Hashes on the blocking pool, at most one hash per core at a time, so a burst of sign-ups queues
/// instead of oversubscribing the CPU. The 19 MiB work areas are kept and reused (one per
/// core): allocating one per hash left the allocator holding over a gigabyte after a burst
/// (docs/BENCHMARKS.md).
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    work_areas: Arc<std::sync::Mutex<Vec<Vec<Block>>>>,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl PasswordHasher {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        PasswordHasher { permits: Arc::new(Semaphore::new(cores)), work_areas: Arc::default() }
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let work_areas = self.work_areas.clone();
        let hash = tokio::task::spawn_blocking(move || {
            let take = work_areas.lock().ok().and_then(|mut areas| areas.pop());
            let mut blocks = take.unwrap_or_else(|| vec![Block::default(); MEMORY_KIB as usize]);
            let hash = hash_into(password.as_bytes(), &mut blocks);
            if let Ok(mut areas) = work_areas.lock() {
                areas.push(blocks);
            }
            hash
        })
        .await??;
        Ok(hash)
    }

    pub async fn verify(&self, password: String, hash: String) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        let ok = tokio::task::spawn_blocking(move || argon2().verify_password(password.as_bytes(), hash.as_str()).is_ok()).await?;
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(COMMON_PASSWORDS.len() >= 10_000);
        assert!(check("correct-horse-battery-42", "taro@example.jp").is_ok());
        assert!(check("", "taro@example.jp").is_err());
        assert!(check("short", "taro@example.jp").is_err());
        assert!(check(&"x".repeat(129), "taro@example.jp").is_err());
        assert!(check(&"長い日本語のパスフレーズ".repeat(10), "taro@example.jp").is_ok(), "counts characters, not bytes");
        assert!(check("Password123", "taro@example.jp").expect_err("breached").contains("流出"));
        assert!(check("my-taroyamada-secret", "taroyamada@example.jp").expect_err("local part").contains("メールアドレス"));
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters() {
        let hasher = PasswordHasher::new();
        let hash = hasher.hash("correct-horse-battery-42".into()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify("correct-horse-battery-42".into(), hash.clone()).await.expect("verify"));
        assert!(!hasher.verify("wrong-password".into(), hash).await.expect("verify"));
    }
}
