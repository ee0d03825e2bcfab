//! Development tools: `normal-form-app dev seed --users N` fills the database with realistic fake
//! registrations (Japanese names and kana, unique emails, phones, addresses from the bundled
//! postal table, plans from the catalogue, a mix of statuses, created over the last 90 days) and
//! their flows — completed ones and abandoned ones — for screens and benchmarks. It refuses to run
//! when `APP_ENV=production`.
//!
//! Rows go in as multi-row INSERTs, a few thousand per statement and one transaction per batch;
//! every seeded row shares one precomputed Argon2id hash (of a random password nobody knows), so
//! a million users take a minute or two, not a million Argon2 runs.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sqlx::types::Json;
use time::{Date, Duration, OffsetDateTime};

use crate::catalog::Catalog;
use crate::config::Mode;
use crate::crypto::{random_token, token_hash};
use crate::db::Db;
use crate::values::registration_number::new_registration_number;

const FAMILY: [(&str, &str, &str); 30] = [
    ("佐藤", "サトウ", "sato"),
    ("鈴木", "スズキ", "suzuki"),
    ("高橋", "タカハシ", "takahashi"),
    ("田中", "タナカ", "tanaka"),
    ("伊藤", "イトウ", "ito"),
    ("渡辺", "ワタナベ", "watanabe"),
    ("山本", "ヤマモト", "yamamoto"),
    ("中村", "ナカムラ", "nakamura"),
    ("小林", "コバヤシ", "kobayashi"),
    ("加藤", "カトウ", "kato"),
    ("吉田", "ヨシダ", "yoshida"),
    ("山田", "ヤマダ", "yamada"),
    ("佐々木", "ササキ", "sasaki"),
    ("山口", "ヤマグチ", "yamaguchi"),
    ("松本", "マツモト", "matsumoto"),
    ("井上", "イノウエ", "inoue"),
    ("木村", "キムラ", "kimura"),
    ("林", "ハヤシ", "hayashi"),
    ("斎藤", "サイトウ", "saito"),
    ("清水", "シミズ", "shimizu"),
    ("山崎", "ヤマザキ", "yamazaki"),
    ("森", "モリ", "mori"),
    ("池田", "イケダ", "ikeda"),
    ("橋本", "ハシモト", "hashimoto"),
    ("阿部", "アベ", "abe"),
    ("石川", "イシカワ", "ishikawa"),
    ("山下", "ヤマシタ", "yamashita"),
    ("中島", "ナカジマ", "nakajima"),
    ("石井", "イシイ", "ishii"),
    ("小川", "オガワ", "ogawa"),
];

const GIVEN: [(&str, &str, &str); 24] = [
    ("太郎", "タロウ", "taro"),
    ("花子", "ハナコ", "hanako"),
    ("翔太", "ショウタ", "shota"),
    ("陽菜", "ヒナ", "hina"),
    ("大輔", "ダイスケ", "daisuke"),
    ("美咲", "ミサキ", "misaki"),
    ("健太", "ケンタ", "kenta"),
    ("さくら", "サクラ", "sakura"),
    ("蓮", "レン", "ren"),
    ("結衣", "ユイ", "yui"),
    ("拓海", "タクミ", "takumi"),
    ("葵", "アオイ", "aoi"),
    ("直樹", "ナオキ", "naoki"),
    ("由美", "ユミ", "yumi"),
    ("翼", "ツバサ", "tsubasa"),
    ("愛", "アイ", "ai"),
    ("誠", "マコト", "makoto"),
    ("恵", "メグミ", "megumi"),
    ("悠斗", "ユウト", "yuto"),
    ("彩", "アヤ", "aya"),
    ("和也", "カズヤ", "kazuya"),
    ("真由美", "マユミ", "mayumi"),
    ("浩二", "コウジ", "koji"),
    ("千尋", "チヒロ", "chihiro"),
];

const DOMAINS: [&str; 4] = ["example.jp", "example.com", "example.ne.jp", "example.co.jp"];
const BUILDINGS: [&str; 5] = ["コーポ", "ハイツ", "マンション", "レジデンス", "メゾン"];

/// Users per INSERT statement (and transaction): 19 parameters each, under SQLite's 32,766.
const USER_BATCH: usize = 1500;
/// Flow rows per INSERT statement: 9 parameters each.
const FLOW_BATCH: usize = 3000;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedSummary {
    pub users: u64,
    pub flows: u64,
    pub reviews: u64,
}

struct FakeUser {
    registration_number: String,
    email: String,
    family: &'static (&'static str, &'static str, &'static str),
    given: &'static (&'static str, &'static str, &'static str),
    phone: String,
    birth_date: Date,
    postal_code: String,
    prefecture: String,
    city: String,
    street: String,
    building: String,
    plan_id: String,
    inventory_status: &'static str,
    region_status: &'static str,
    email_verified_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
}

struct FakeFlow {
    token_hash: String,
    user_data: serde_json::Value,
    status: &'static str,
    registration_number: Option<String>,
    user_id: Option<i64>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    completed_at: Option<OffsetDateTime>,
}

struct FakeReview {
    user_id: i64,
    kind: &'static str,
    reason: &'static str,
    status: &'static str,
    created_at: OffsetDateTime,
    decided_at: Option<OffsetDateTime>,
}

/// Addresses to draw from: every n-th entry of the bundled postal table (a few thousand).
fn sample_addresses() -> Vec<(String, String, String, String)> {
    let table = crate::address::postal::PostalTable::embedded();
    let step = (table.address_count() / 4000).max(1);
    let sample: Vec<_> = table.iter().step_by(step).map(|a| (a.postal_code, a.prefecture, a.city, a.town)).collect();
    if sample.is_empty() { vec![("1000001".into(), "東京都".into(), "千代田区".into(), "千代田".into())] } else { sample }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Refuses when the configuration is production's.
pub fn ensure_not_production(mode: Mode) -> anyhow::Result<()> {
    if mode == Mode::Production {
        anyhow::bail!("dev seed refuses to run with APP_ENV=production: it inserts fake registrations");
    }
    Ok(())
}

/// Inserts `users` fake registrations with their flows (and ~25 % more abandoned flows), and
/// manual reviews for the statuses that have them. `progress` is called after each batch with
/// the number of users inserted so far.
pub async fn seed(db: &Db, catalog: &Catalog, users: u64, mut progress: impl FnMut(u64)) -> anyhow::Result<SeedSummary> {
    let hasher = crate::password::PasswordHasher::new();
    let password_hash = hasher.hash(random_token(24)).await?;
    let addresses = sample_addresses();
    let plans: Vec<String> = catalog.plans.iter().map(|p| p.id.clone()).collect();
    anyhow::ensure!(!plans.is_empty(), "the catalogue has no plans");
    let mut rng = StdRng::from_rng(&mut rand::rng());
    // Emails are unique across runs too: a random run tag plus the row's index.
    let run = random_token(6).to_lowercase().replace(['-', '_'], "x");
    let now = OffsetDateTime::now_utc();
    let today = now.date();
    let mut summary = SeedSummary::default();
    let mut done = 0u64;
    while done < users {
        let count = ((users - done) as usize).min(USER_BATCH);
        let batch: Vec<FakeUser> =
            (0..count).map(|i| fake_user(&mut rng, &run, (done + i as u64, users), now, today, &addresses, &plans)).collect();
        let (flows, reviews) = insert_batch(db, &batch, &password_hash, &mut rng, now).await?;
        summary.users += batch.len() as u64;
        summary.flows += flows;
        summary.reviews += reviews;
        done += count as u64;
        progress(done);
    }
    Ok(summary)
}

fn fake_user(
    rng: &mut StdRng,
    run: &str,
    (index, total): (u64, u64),
    now: OffsetDateTime,
    today: Date,
    addresses: &[(String, String, String, String)],
    plans: &[String],
) -> FakeUser {
    let family = pick(rng, &FAMILY);
    let given = pick(rng, &GIVEN);
    let domain = pick(rng, &DOMAINS);
    let email = format!("{}.{}.{run}{index}@{domain}", given.2, family.2);
    let prefix = *pick(rng, &["090", "080", "070", "03", "06"]);
    // Mobile 0X0 + 8 digits (11), landline 03 / 06 + 8 digits (10).
    let rest: String = (0..8).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect();
    let phone = format!("{prefix}{rest}");
    let birth_date = today - Duration::days(rng.random_range(18 * 365..80 * 365));
    let (postal_code, prefecture, city, town) = pick(rng, addresses).clone();
    let street = format!("{town}{}-{}-{}", rng.random_range(1..10), rng.random_range(1..30), rng.random_range(1..20));
    let building = if rng.random_bool(0.35) {
        format!("{}{}{}", pick(rng, &FAMILY).0, pick(rng, &BUILDINGS), rng.random_range(101..1205))
    } else {
        String::new()
    };
    let roll: f64 = rng.random();
    let inventory_status = match roll {
        r if r < 0.92 => "reserved",
        r if r < 0.96 => "confirmed",
        r if r < 0.99 => "needs_check",
        _ => "rejected",
    };
    let roll: f64 = rng.random();
    let region_status = match roll {
        r if r < 0.92 => "eligible",
        r if r < 0.95 => "unchecked",
        r if r < 0.97 => "ineligible",
        r if r < 0.99 => "approved",
        _ => "rejected",
    };
    // Spread over the last 90 days in insertion order (as a real table fills), with jitter.
    let span = 90 * 86_400 * 1_000_000_000i64;
    let slot = span / total.max(1) as i64;
    let age = span - slot * index as i64 - rng.random_range(0..slot.max(1));
    let created_at = now - Duration::nanoseconds(age.max(0));
    let email_verified_at = rng.random_bool(0.8).then(|| created_at + Duration::seconds(rng.random_range(30..3600)));
    FakeUser {
        registration_number: new_registration_number(),
        email,
        family,
        given,
        phone,
        birth_date,
        postal_code,
        prefecture,
        city,
        street,
        building,
        plan_id: pick(rng, plans).clone(),
        inventory_status,
        region_status,
        email_verified_at,
        created_at,
    }
}

fn flows_for(rng: &mut StdRng, users: &[FakeUser], ids: &[(i64, String)], now: OffsetDateTime) -> Vec<FakeFlow> {
    let mut flows = Vec::with_capacity(users.len() * 5 / 4);
    for (user, (id, _)) in users.iter().zip(ids) {
        let started = user.created_at - Duration::seconds(rng.random_range(90..1800));
        flows.push(FakeFlow {
            token_hash: token_hash(&random_token(16)),
            user_data: json!({
                "email": user.email, "family_name": user.family.0, "given_name": user.given.0,
                "family_name_kana": user.family.1, "given_name_kana": user.given.1, "plan_id": user.plan_id,
            }),
            status: "completed",
            registration_number: Some(user.registration_number.clone()),
            user_id: Some(*id),
            created_at: started,
            updated_at: user.created_at,
            completed_at: Some(user.created_at),
        });
        // Abandoned flows: someone who stopped at the first or second step.
        if rng.random_bool(0.25) {
            let started = user.created_at - Duration::minutes(rng.random_range(1..600));
            let family = pick(rng, &FAMILY);
            let given = pick(rng, &GIVEN);
            let mut data =
                json!({ "email": format!("{}.{}.abandoned{}@example.jp", given.2, family.2, rng.random_range(0..1_000_000u32)) });
            if rng.random_bool(0.5) {
                data["family_name"] = json!(family.0);
                data["given_name"] = json!(given.0);
            }
            let updated = started + Duration::seconds(rng.random_range(20..900));
            let status = if now - updated < Duration::minutes(30) { "active" } else { "expired" };
            flows.push(FakeFlow {
                token_hash: token_hash(&random_token(16)),
                user_data: data,
                status,
                registration_number: None,
                user_id: None,
                created_at: started,
                updated_at: updated,
                completed_at: None,
            });
        }
    }
    flows
}

fn reviews_for(users: &[FakeUser], ids: &[(i64, String)]) -> Vec<FakeReview> {
    let mut reviews = Vec::new();
    for (user, (id, _)) in users.iter().zip(ids) {
        let decided = Some(user.created_at + Duration::hours(3));
        let inventory = match user.inventory_status {
            "needs_check" => Some(("pending", None)),
            "confirmed" => Some(("approved", decided)),
            "rejected" => Some(("rejected", decided)),
            _ => None,
        };
        if let Some((status, decided_at)) = inventory {
            reviews.push(FakeReview {
                user_id: *id,
                kind: "inventory",
                reason: "在庫APIが応答しなかったため、在庫を手動で確認してください。",
                status,
                created_at: user.created_at,
                decided_at,
            });
        }
        let region = match user.region_status {
            "ineligible" => Some(("pending", None)),
            "approved" => Some(("approved", decided)),
            "rejected" => Some(("rejected", decided)),
            _ => None,
        };
        if let Some((status, decided_at)) = region {
            reviews.push(FakeReview {
                user_id: *id,
                kind: "region",
                reason: "地域制限の再確認で提供エリア外と判定されました。",
                status,
                created_at: user.created_at + Duration::minutes(10),
                decided_at,
            });
        }
    }
    reviews
}

/// One transaction: the users, then their flows and reviews. Returns (flows, reviews) inserted.
async fn insert_batch(
    db: &Db,
    users: &[FakeUser],
    password_hash: &str,
    rng: &mut StdRng,
    now: OffsetDateTime,
) -> anyhow::Result<(u64, u64)> {
    crate::with_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        let mut query = sqlx::QueryBuilder::new(
            "INSERT INTO users (registration_number, email, password_hash, family_name, given_name, family_name_kana, \
             given_name_kana, phone, birth_date, postal_code, prefecture, city, street, building, plan_id, inventory_status, \
             region_status, email_verified_at, created_at) ",
        );
        query.push_values(users, |mut row, u| {
            row.push_bind(u.registration_number.clone())
                .push_bind(u.email.clone())
                .push_bind(password_hash.to_string())
                .push_bind(u.family.0)
                .push_bind(u.given.0)
                .push_bind(u.family.1)
                .push_bind(u.given.1)
                .push_bind(u.phone.clone())
                .push_bind(u.birth_date)
                .push_bind(u.postal_code.clone())
                .push_bind(u.prefecture.clone())
                .push_bind(u.city.clone())
                .push_bind(u.street.clone())
                .push_bind(u.building.clone())
                .push_bind(u.plan_id.clone())
                .push_bind(u.inventory_status)
                .push_bind(u.region_status)
                .push_bind(u.email_verified_at)
                .push_bind(u.created_at);
        });
        query.push(" RETURNING id, registration_number");
        let returned: Vec<(i64, String)> = query.build_query_as().fetch_all(&mut *tx).await?;
        // Match ids to users by 受付番号, whatever order RETURNING gives.
        let by_number: std::collections::HashMap<&str, i64> = returned.iter().map(|(id, n)| (n.as_str(), *id)).collect();
        let ids: Vec<(i64, String)> = users
            .iter()
            .map(|u| by_number.get(u.registration_number.as_str()).map(|id| (*id, u.registration_number.clone())))
            .collect::<Option<_>>()
            .ok_or_else(|| anyhow::anyhow!("an inserted user was not returned"))?;
        let flows = flows_for(rng, users, &ids, now);
        for chunk in flows.chunks(FLOW_BATCH) {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO user_sessions (token_hash, csrf_token, user_data, status, registration_number, user_id, created_at, \
                 updated_at, completed_at) ",
            );
            query.push_values(chunk, |mut row, f| {
                row.push_bind(f.token_hash.clone())
                    .push_bind("seeded")
                    .push_bind(Json(f.user_data.clone()))
                    .push_bind(f.status)
                    .push_bind(f.registration_number.clone())
                    .push_bind(f.user_id)
                    .push_bind(f.created_at)
                    .push_bind(f.updated_at)
                    .push_bind(f.completed_at);
            });
            query.build().execute(&mut *tx).await?;
        }
        let reviews = reviews_for(users, &ids);
        for chunk in reviews.chunks(FLOW_BATCH) {
            let mut query =
                sqlx::QueryBuilder::new("INSERT INTO manual_reviews (user_id, kind, reason, status, created_at, decided_at, decided_by) ");
            query.push_values(chunk, |mut row, r| {
                row.push_bind(r.user_id)
                    .push_bind(r.kind)
                    .push_bind(r.reason)
                    .push_bind(r.status)
                    .push_bind(r.created_at)
                    .push_bind(r.decided_at)
                    .push_bind(r.decided_at.map(|_| "seed@example.jp"));
            });
            query.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok((flows.len() as u64, reviews.len() as u64))
    })
}

/// The `dev seed` command: progress on stderr, a summary on stdout.
pub async fn run_seed(db: &Db, catalog: &Catalog, users: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_report = 0u64;
    let step = (users / 20).max(1);
    let summary = seed(db, catalog, users, |done| {
        if done - last_report >= step || done == users {
            last_report = done;
            let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
            eprintln!("seeded {done}/{users} users ({:.0}%, {rate:.0} users/s)", done as f64 * 100.0 / users.max(1) as f64);
        }
    })
    .await?;
    println!(
        "seeded {} users, {} flows, {} manual reviews in {:.1}s",
        summary.users,
        summary.flows,
        summary.reviews,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
