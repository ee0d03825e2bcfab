//! Throw-away PostgreSQL clusters of a test's own, on free ports: a primary and streaming
//! replicas made with `pg_basebackup -R`, started and stopped at will (the writer that goes away).
//! Built from the server binaries of the machine's PostgreSQL (`/usr/lib/postgresql/N/bin`); as
//! root, the server runs as the `postgres` user, as it must.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Cluster {
    dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

/// The newest installed server's binaries.
fn server_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql (package postgresql)")
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

impl Cluster {
    fn new_dir() -> (tempfile::TempDir, bool) {
        let dir = tempfile::Builder::new().prefix("nfa-cluster-").tempdir().expect("tempdir");
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown").args(["postgres:postgres"]).arg(dir.path()).status().expect("chown");
            assert!(status.success(), "chown the cluster folder to postgres");
        }
        (dir, as_postgres)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let binary = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        let output = command.args(args).current_dir(self.dir.path()).output().unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn write_conf(&self, lines: &str) {
        let path = self.data().join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(lines);
        std::fs::write(&path, text).expect("write postgresql.auto.conf");
    }

    /// A new primary, started, with a database `app`.
    pub fn primary() -> Cluster {
        let (dir, as_postgres) = Cluster::new_dir();
        let cluster = Cluster { dir, port: free_port(), bin: server_bin(), as_postgres };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &["-D", data.to_str().expect("path"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
        );
        cluster.write_conf(&format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nwal_level = replica\nmax_wal_senders = 5\nfsync = off\n",
            cluster.port,
            cluster.dir.path().display()
        ));
        let mut hba = std::fs::read_to_string(data.join("pg_hba.conf")).expect("pg_hba.conf");
        hba.push_str("host replication all 127.0.0.1/32 trust\n");
        std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        cluster.start();
        let psql = cluster.bin.join("psql");
        let status = Command::new(psql)
            .args(["-h", "127.0.0.1", "-p", &cluster.port.to_string(), "-U", "postgres", "-d", "postgres", "-qc", "CREATE DATABASE app"])
            .status()
            .expect("psql");
        assert!(status.success(), "create database app");
        cluster
    }

    /// A hot-standby replica of `primary`, streaming from it, started.
    pub fn replica_of(primary: &Cluster) -> Cluster {
        let (dir, as_postgres) = Cluster::new_dir();
        let cluster = Cluster { dir, port: free_port(), bin: server_bin(), as_postgres };
        let data = cluster.data();
        let primary_port = primary.port.to_string();
        cluster.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port,
                "-U",
                "postgres",
                "-D",
                data.to_str().expect("path"),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        cluster.write_conf(&format!(
            "port = {}\nunix_socket_directories = '{}'\nhot_standby = on\nwal_receiver_status_interval = 1s\n",
            cluster.port,
            cluster.dir.path().display()
        ));
        cluster.start();
        cluster
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/app", self.port)
    }

    pub fn start(&self) {
        let data = self.data();
        let log = self.dir.path().join("server.log");
        self.run("pg_ctl", &["-D", data.to_str().expect("path"), "-l", log.to_str().expect("path"), "-w", "-t", "60", "start"]);
    }

    /// Stops the server the way a crash or a failover looks to clients: connections end at once.
    pub fn stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", data.to_str().expect("path"), "-m", "fast", "-w", "stop"]);
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let binary = self.bin.join("pg_ctl");
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        let _ = command.args(["-D", data.to_str().unwrap_or_default(), "-m", "immediate", "stop"]).output();
    }
}

/// Waits until the replica has replayed everything the primary has written so far.
pub async fn wait_for_replay(primary: &Cluster, replica: &Cluster) {
    use sqlx::Connection;
    let mut writer = sqlx::PgConnection::connect(&primary.url()).await.expect("primary");
    let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text").fetch_one(&mut writer).await.expect("lsn");
    let mut reader = sqlx::PgConnection::connect(&replica.url()).await.expect("replica");
    for _ in 0..100 {
        let caught_up: bool = sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn")
            .bind(&lsn)
            .fetch_one(&mut reader)
            .await
            .expect("replay lsn");
        if caught_up {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the replica did not catch up with {lsn}");
}
