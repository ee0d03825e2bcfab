//! What a backup holds, written beside it (`PATH.manifest.json`) when it is made and checked
//! whenever it is verified or restored: the row count of every table and a SHA-256 over every
//! column of every registration (`users`, in id order), and the dump file's own size and SHA-256.
//! On PostgreSQL the figures are read in the very snapshot `pg_dump` copies, so they describe the
//! dump exactly even while registrations go on.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const FORMAT: u32 = 1;

/// Tables whose rows make a restore target worth protecting from an accident.
pub const KEPT_TABLES: [&str; 3] = ["users", "user_sessions", "admin_users"];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contents {
    /// Rows per table, every table of the schema (the migrations' bookkeeping included).
    pub tables: BTreeMap<String, i64>,
    /// SHA-256 (hex) over every column of every `users` row, in id order.
    pub registrations_sha256: String,
}

impl Contents {
    pub fn registrations(&self) -> i64 {
        self.tables.get("users").copied().unwrap_or(0)
    }

    /// What differs from `expected`, one Japanese line each; empty when nothing does.
    pub fn differences(&self, expected: &Contents) -> Vec<String> {
        let mut out = Vec::new();
        let names: std::collections::BTreeSet<&String> = self.tables.keys().chain(expected.tables.keys()).collect();
        for name in names {
            match (expected.tables.get(name), self.tables.get(name)) {
                (Some(want), Some(got)) if want != got => out.push(format!("{name}: {want} 行のはずが {got} 行")),
                (Some(_), None) => out.push(format!("{name}: テーブルがありません")),
                (None, Some(_)) => out.push(format!("{name}: バックアップにないテーブルがあります")),
                _ => {}
            }
        }
        if self.registrations_sha256 != expected.registrations_sha256 {
            out.push("users: 登録データのチェックサムが一致しません".to_string());
        }
        out
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub created_at: String,
    pub app_version: String,
    pub file_bytes: u64,
    pub file_sha256: String,
    pub contents: Contents,
}

pub fn path_for(backup: &Path) -> PathBuf {
    let mut name = backup.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

impl Manifest {
    pub fn write(&self, backup: &Path) -> anyhow::Result<PathBuf> {
        let path = path_for(backup);
        std::fs::write(&path, serde_json::to_vec_pretty(self)?).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    pub fn read(backup: &Path) -> anyhow::Result<Manifest> {
        let path = path_for(backup);
        let text =
            std::fs::read(&path).with_context(|| format!("{} がありません（バックアップと同じ場所に置いてください）", path.display()))?;
        let manifest: Manifest = serde_json::from_slice(&text).with_context(|| format!("{} を読めません", path.display()))?;
        anyhow::ensure!(manifest.format == FORMAT, "{}: 未対応の形式 {}", path.display(), manifest.format);
        Ok(manifest)
    }

    /// Checks the backup file against its recorded size and SHA-256.
    pub fn check_file(&self, backup: &Path) -> anyhow::Result<()> {
        let (bytes, sha256) = file_digest(backup)?;
        anyhow::ensure!(
            bytes == self.file_bytes && sha256 == self.file_sha256,
            "{} が作成時と異なります（{} バイト、作成時 {} バイト）: 破損または別のファイルです",
            backup.display(),
            bytes,
            self.file_bytes
        );
        Ok(())
    }
}

/// Size and SHA-256 (hex) of a file, read in 1 MiB pieces.
pub fn file_digest(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buffer).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        total += n as u64;
    }
    Ok((total, hex(&hasher.finalize())))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds one row into the registrations checksum: each value length-prefixed, NULL marked, so no
/// two different rows hash alike.
pub fn hash_row(hasher: &mut Sha256, values: &[Option<String>]) {
    for value in values {
        match value {
            Some(text) => {
                hasher.update((text.len() as u64).to_be_bytes());
                hasher.update(text.as_bytes());
            }
            None => hasher.update(u64::MAX.to_be_bytes()),
        }
    }
    hasher.update(b"\n");
}

/// A table or column name from the database's own catalogue, quoted for SQL; anything but a plain
/// identifier is refused rather than escaped.
pub fn quoted(name: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "unexpected table or column name {name:?}"
    );
    Ok(format!("\"{name}\""))
}

/// Reads the contents of whatever connection `$conn` is (`&mut PgConnection` or
/// `&mut SqliteConnection`), with the backend's catalogue queries: a macro, as the two connection
/// types share no trait sqlx lets us name here.
macro_rules! read_contents {
    ($conn:expr, $tables_sql:expr, $columns_sql:expr) => {{
        use futures_util::TryStreamExt as _;
        use sha2::Digest as _;
        use sqlx::Row as _;
        let conn = $conn;
        let names: Vec<String> = sqlx::query_scalar($tables_sql).fetch_all(&mut *conn).await?;
        let mut tables = std::collections::BTreeMap::new();
        for name in names {
            let sql = format!("SELECT COUNT(*) FROM {}", $crate::backup::manifest::quoted(&name)?);
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut *conn).await?;
            tables.insert(name, count);
        }
        let mut hasher = sha2::Sha256::new();
        if tables.contains_key("users") {
            let columns: Vec<String> = sqlx::query_scalar($columns_sql).fetch_all(&mut *conn).await?;
            let list = columns
                .iter()
                .map(|c| $crate::backup::manifest::quoted(c).map(|q| format!("CAST({q} AS TEXT)")))
                .collect::<anyhow::Result<Vec<_>>>()?
                .join(", ");
            let sql = format!("SELECT {list} FROM users ORDER BY id");
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut *conn);
            while let Some(row) = rows.try_next().await? {
                let values = (0..columns.len()).map(|i| row.try_get::<Option<String>, _>(i)).collect::<Result<Vec<_>, _>>()?;
                $crate::backup::manifest::hash_row(&mut hasher, &values);
            }
        }
        $crate::backup::manifest::Contents { tables, registrations_sha256: $crate::backup::manifest::hex(&hasher.finalize()) }
    }};
}
pub(crate) use read_contents;

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(users: i64, sha: &str) -> Contents {
        Contents { tables: [("users".to_string(), users), ("plans".to_string(), 3)].into(), registrations_sha256: sha.to_string() }
    }

    #[test]
    fn differences_name_each_table_and_the_checksum() {
        assert!(contents(5, "a").differences(&contents(5, "a")).is_empty());
        let diff = contents(4, "b").differences(&contents(5, "a"));
        assert_eq!(diff, vec!["users: 5 行のはずが 4 行".to_string(), "users: 登録データのチェックサムが一致しません".to_string()]);
    }

    #[test]
    fn rows_hash_apart_even_when_their_text_joins_alike() {
        let digest = |rows: &[&[Option<&str>]]| {
            let mut hasher = Sha256::new();
            for row in rows {
                hash_row(&mut hasher, &row.iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>());
            }
            hex(&hasher.finalize())
        };
        assert_ne!(digest(&[&[Some("ab"), Some("c")]]), digest(&[&[Some("a"), Some("bc")]]));
        assert_ne!(digest(&[&[None]]), digest(&[&[Some("")]]));
        assert_eq!(digest(&[&[Some("x")]]), digest(&[&[Some("x")]]));
    }

    #[test]
    fn only_plain_identifiers_are_quoted() {
        assert_eq!(quoted("users").expect("plain"), "\"users\"");
        assert!(quoted("users\"; DROP TABLE x; --").is_err());
        assert!(quoted("").is_err());
    }

    #[test]
    fn a_changed_file_is_caught() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("b.dump");
        std::fs::write(&file, b"backup").expect("write");
        let (bytes, sha256) = file_digest(&file).expect("digest");
        let manifest = Manifest {
            format: FORMAT,
            backend: "sqlite".into(),
            created_at: String::new(),
            app_version: String::new(),
            file_bytes: bytes,
            file_sha256: sha256,
            contents: contents(1, "a"),
        };
        manifest.check_file(&file).expect("unchanged");
        manifest.write(&file).expect("write manifest");
        assert_eq!(Manifest::read(&file).expect("read").file_bytes, 6);
        std::fs::write(&file, b"backuq").expect("write");
        assert!(manifest.check_file(&file).is_err());
    }
}
