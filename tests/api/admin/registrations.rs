//! 登録一覧: every search filter, keyset pagination, the detail page (never the password hash),
//! and who may see them.

use std::collections::HashSet;

use normal_form_app::admin::actor::Role;
use normal_form_app::with_pool;
use time::{Date, Duration, OffsetDateTime};

use super::{Admin, admin};
use crate::helpers::{TestApp, location};
use crate::on_both_backends;

/// A registration to insert directly (the form's validation is tested elsewhere; this lets a
/// test choose every field, including ones the form would refuse).
#[derive(Clone)]
pub struct Person {
    pub number: String,
    pub email: String,
    pub family: String,
    pub given: String,
    pub family_kana: String,
    pub given_kana: String,
    pub phone: String,
    pub street: String,
    pub building: String,
    pub inventory: &'static str,
    pub region: &'static str,
    pub verified: bool,
    pub created_at: OffsetDateTime,
}

impl Person {
    pub fn new(n: u32) -> Person {
        Person {
            number: format!("TEST-{:04}-ABCD", n),
            email: format!("person{n}@example.jp"),
            family: "佐藤".into(),
            given: "花子".into(),
            family_kana: "サトウ".into(),
            given_kana: "ハナコ".into(),
            phone: format!("0311{:06}", n),
            street: "渋谷2-21-1".into(),
            building: String::new(),
            inventory: "reserved",
            region: "eligible",
            verified: true,
            created_at: OffsetDateTime::now_utc() - Duration::minutes(i64::from(n)),
        }
    }
}

pub const PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2VlZHNlZWRzZWVk$MZ7Uq0QJ3fVQ1Yb0j6m4qLJ0y3Jm2cV9l7x2C9qY0aA";

/// Inserts a registration and returns its id.
pub async fn insert(app: &TestApp, p: &Person) -> i64 {
    let birth = Date::from_calendar_date(1985, time::Month::May, 5).expect("date");
    let verified = p.verified.then_some(p.created_at + Duration::minutes(5));
    with_pool!(&app.db, |pool| {
        sqlx::query_scalar(
            "INSERT INTO users (registration_number, email, password_hash, family_name, given_name, family_name_kana, given_name_kana, \
             phone, birth_date, postal_code, prefecture, city, street, building, plan_id, inventory_status, region_status, \
             email_verified_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '1500002', '東京都', '渋谷区', $10, $11, \
             'standard', $12, $13, $14, $15) RETURNING id",
        )
        .bind(&p.number)
        .bind(&p.email)
        .bind(PASSWORD_HASH)
        .bind(&p.family)
        .bind(&p.given)
        .bind(&p.family_kana)
        .bind(&p.given_kana)
        .bind(&p.phone)
        .bind(birth)
        .bind(&p.street)
        .bind(&p.building)
        .bind(p.inventory)
        .bind(p.region)
        .bind(verified)
        .bind(p.created_at)
        .fetch_one(pool)
        .await
    })
    .expect("insert user")
}

/// The 受付番号 in a list page, in order.
pub fn numbers(html: &str) -> Vec<String> {
    html.split("<td><a href=\"/admin/registrations/")
        .skip(1)
        .map(|s| s.split("<code>").nth(1).expect("code").split('<').next().expect("number").to_string())
        .collect()
}

/// The href of the link with `rel`, unescaped.
fn link(html: &str, rel: &str) -> Option<String> {
    let end = html.find(&format!("rel=\"{rel}\""))?;
    let start = html[..end].rfind("href=\"")? + 6;
    Some(html[start..end].trim_end_matches("\" ").trim_end_matches('"').replace("&amp;", "&").replace("&#38;", "&"))
}

async fn search(admin: &Admin, query: &str) -> Vec<String> {
    numbers(&admin.get_html(&format!("/admin/registrations?{query}")).await)
}

on_both_backends! {
    async fn anonymous_is_sent_to_sign_in(app) {
        for path in ["/admin/registrations", "/admin/registrations/1", "/admin/registrations/export.csv"] {
            let response = app.get(path).await;
            assert_eq!(response.status(), 303, "{path}");
            assert_eq!(location(&response), "/admin/login", "{path}");
        }
    }

    async fn each_filter_finds_the_right_registration(app) {
        let mut yamada = Person::new(1);
        yamada.number = "ABCD-2345-EFGH".into();
        yamada.email = "taro.yamada@example.jp".into();
        yamada.family = "山田".into();
        yamada.given = "太郎".into();
        yamada.family_kana = "ヤマダ".into();
        yamada.given_kana = "タロウ".into();
        yamada.phone = "09012345678".into();
        yamada.inventory = "needs_check";
        yamada.verified = false;
        let mut yamamoto = Person::new(2);
        yamamoto.email = "yamamoto@example.com".into();
        yamamoto.family = "山本".into();
        yamamoto.given = "太一".into();
        yamamoto.family_kana = "ヤマモト".into();
        yamamoto.given_kana = "タイチ".into();
        // Not `unchecked`: the background re-check would settle that one.
        yamamoto.region = "ineligible";
        yamamoto.created_at = OffsetDateTime::now_utc() - Duration::days(40);
        let mut sato = Person::new(3);
        sato.email = "hanako@example.jp".into();
        sato.created_at = OffsetDateTime::now_utc() - Duration::days(40);
        for p in [&yamada, &yamamoto, &sato] {
            insert(&app, p).await;
        }
        let admin = admin(&app, Role::Viewer).await;
        let (a, b, c) = (yamada.number.clone(), yamamoto.number.clone(), sato.number.clone());
        let cases: Vec<(String, Vec<&String>)> = vec![
            // 受付番号: case, hyphens and full width do not matter; exact.
            ("number=abcd2345efgh".into(), vec![&a]),
            (format!("number={}", urlencode("ＡＢＣＤ－２３４５－ＥＦＧＨ")), vec![&a]),
            // Email: exact whatever the case; without @ a prefix.
            ("email=Taro.Yamada%40Example.JP".into(), vec![&a]),
            ("email=yama".into(), vec![&b]),
            ("email=taro%40example.jp".into(), vec![]),
            // Names: kanji prefix of family or given name, kana (hiragana accepted), full name.
            (format!("name={}", urlencode("山")), vec![&a, &b]),
            (format!("name={}", urlencode("山田")), vec![&a]),
            (format!("name={}", urlencode("太")), vec![&a, &b]),
            (format!("name={}", urlencode("やまも")), vec![&b]),
            (format!("name={}", urlencode("ハナ")), vec![&c]),
            (format!("name={}", urlencode("山本 太")), vec![&b]),
            (format!("name={}", urlencode("ヤマダ たろ")), vec![&a]),
            // Phone: written as people write it.
            (format!("phone={}", urlencode("０９０－１２３４－５６７８")), vec![&a]),
            ("phone=090-1234-5678".into(), vec![&a]),
            // Statuses.
            ("inventory=needs_check".into(), vec![&a]),
            ("region=ineligible".into(), vec![&b]),
            ("verified=no".into(), vec![&a]),
            ("verified=yes".into(), vec![&b, &c]),
        ];
        for (query, expected) in cases {
            let mut found = search(&admin, &query).await;
            found.sort();
            let mut expected: Vec<String> = expected.into_iter().cloned().collect();
            expected.sort();
            assert_eq!(found, expected, "{query}");
        }
        // Date range in Japan days: 40 days ago holds the two older ones.
        let day = (OffsetDateTime::now_utc() - Duration::days(40)).to_offset(time::UtcOffset::from_hms(9, 0, 0).expect("jst")).date();
        let (before, after) = (day - Duration::days(1), day + Duration::days(1));
        let mut found = search(&admin, &format!("from={before}&to={after}")).await;
        found.sort();
        let mut expected = vec![b.clone(), c.clone()];
        expected.sort();
        assert_eq!(found, expected, "date range");
        assert_eq!(search(&admin, &format!("from={}", after + Duration::days(1))).await, vec![a.clone()], "from only");
        // Filters combine with AND.
        assert_eq!(search(&admin, &format!("name={}&region=ineligible", urlencode("山"))).await, vec![b.clone()]);
    }

    async fn bad_filters_get_a_japanese_message(app) {
        let admin = admin(&app, Role::Viewer).await;
        for (query, message) in [
            ("from=2026-02-30", "登録日（から）を正しい日付で入力してください"),
            ("to=yesterday", "登録日（まで）を正しい日付で入力してください"),
            ("from=2026-05-01&to=2026-04-01", "登録日の範囲が正しくありません"),
            ("number=ABC", "受付番号は"),
            ("phone=12", "電話番号は"),
            ("inventory=bogus", "在庫確認の状態"),
        ] {
            let response = admin.get(&format!("/admin/registrations?{query}")).await;
            assert_eq!(response.status(), 422, "{query}");
            let html = response.text().await.expect("body");
            assert!(html.contains(message), "{query}: {html}");
        }
        // A nonsense cursor or page size is ignored rather than an error.
        let response = admin.get("/admin/registrations?after=xyz&limit=abc").await;
        assert_eq!(response.status(), 200);
    }

    async fn pagination_walks_every_row_once_both_ways(app) {
        let now = OffsetDateTime::now_utc();
        let mut expected = Vec::new();
        for n in 0..25u32 {
            let mut p = Person::new(100 + n);
            // Pairs share a timestamp, so the id must break ties.
            p.created_at = now - Duration::seconds(i64::from(n / 2) * 60);
            insert(&app, &p).await;
            expected.push(p.number);
        }
        let admin = admin(&app, Role::Viewer).await;
        let mut seen = Vec::new();
        let mut pages = Vec::new();
        let mut path = "/admin/registrations?limit=10".to_string();
        loop {
            let html = admin.get_html(&path).await;
            let page = numbers(&html);
            assert!(page.len() <= 10);
            seen.extend(page.clone());
            pages.push(page);
            match link(&html, "next") {
                Some(next) => path = next,
                None => break,
            }
            assert!(pages.len() < 10, "pagination does not end");
        }
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 5]);
        assert_eq!(seen.len(), 25);
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 25, "no duplicates");
        // Newest first: within a pair (same time) the later id comes first.
        let order: Vec<usize> = (0..12).flat_map(|k| [2 * k + 1, 2 * k]).chain([24]).collect();
        let newest_first: Vec<String> = order.into_iter().map(|i| expected[i].clone()).collect();
        assert_eq!(seen, newest_first);
        // And back with 前へ from the last page.
        let mut html = admin.get_html(&path).await;
        let mut back = vec![numbers(&html)];
        while let Some(prev) = link(&html, "prev") {
            html = admin.get_html(&prev).await;
            back.push(numbers(&html));
        }
        back.reverse();
        assert_eq!(back, pages, "前へ walks the same pages");
        assert!(html.contains("該当: 25件"), "count shown");
        // The first page has no 前へ.
        assert!(link(&html, "prev").is_none());
    }

    async fn detail_shows_every_field_but_never_the_password_hash(app) {
        let number = app.register("detail@example.jp").await;
        let admin = admin(&app, Role::Operator).await;
        let list = admin.get_html(&format!("/admin/registrations?number={number}")).await;
        let id: i64 = list.split("<td><a href=\"/admin/registrations/").nth(1).expect("row").split('"').next().expect("id").parse().expect("id");
        let html = admin.get_html(&format!("/admin/registrations/{id}")).await;
        for text in [number.as_str(), "山田 太郎", "ヤマダ タロウ", "detail@example.jp", "09012345678", "1990-04-01", "〒150-0002", "東京都渋谷区渋谷2-21-1", "在庫確保済み", "完了", "未確認"] {
            assert!(html.contains(text), "{text} in detail: {html}");
        }
        assert!(!html.contains("$argon2id$"), "no password hash");
        assert!(!html.contains("argon2"), "no password hash");
        assert!(html.contains(&format!("href=\"/admin/registrations/{id}/delete\"")), "削除依頼 link for operators");
        // A review shows with its decision.
        with_pool!(&app.db, |pool| {
            sqlx::query("INSERT INTO manual_reviews (user_id, kind, reason, status, created_at, decided_at, decided_by, comment) VALUES ($1, 'region', '地域の再確認', 'approved', $2, $3, 'op@example.jp', '確認済みです')")
                .bind(id).bind(OffsetDateTime::now_utc()).bind(OffsetDateTime::now_utc()).execute(pool).await.map(|_| ())
        }).expect("review");
        let html = admin.get_html(&format!("/admin/registrations/{id}")).await;
        for text in ["地域確認", "地域の再確認", "承認", "op@example.jp", "確認済みです"] {
            assert!(html.contains(text), "{text} in detail");
        }
        // Viewers read it too, without the deletion link.
        let viewer = super::admin(&app, Role::Viewer).await;
        let html = viewer.get_html(&format!("/admin/registrations/{id}")).await;
        assert!(html.contains(number.as_str()));
        assert!(!html.contains("/delete\""), "no 削除依頼 for viewers");
        assert!(!html.contains("CSVダウンロード"));
        assert!(!viewer.get_html("/admin/registrations").await.contains("export.csv"), "no export link for viewers");
        assert!(admin.get_html("/admin/registrations").await.contains("/admin/registrations/export.csv"), "export link for operators");
        // Unknown or malformed ids are a Japanese 404.
        for path in ["/admin/registrations/999999", "/admin/registrations/abc"] {
            let response = admin.get(path).await;
            assert_eq!(response.status(), 404, "{path}");
            assert!(response.text().await.expect("body").contains("見つかりません"));
        }
    }

    async fn deleted_notice_on_the_list(app) {
        let admin = admin(&app, Role::Operator).await;
        assert!(admin.get_html("/admin/registrations?deleted=1").await.contains("削除しました"));
        assert!(!admin.get_html("/admin/registrations").await.contains("削除しました"));
    }
}

pub fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
