//! 確認待ち: the queue, its filters and pages, and decisions (approve/reject, stock reservation,
//! audit, the registrant's mail, races), for each role.

use normal_form_app::admin::actor::Role;
use normal_form_app::with_pool;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{Admin, admin};
use crate::helpers::{Backend, TestApp, location, spawn_app_with};
use crate::on_both_backends_with;

/// Both APIs forced into their fallback: every registration gets an inventory review and is
/// left region-`unchecked` (the background re-check cannot run while the fallback is forced).
const FALLBACK: &[(&str, &str)] = &[("FORCE_FALLBACK_INVENTORY", "true"), ("FORCE_FALLBACK_REGION", "true")];

/// Registers `email` in a browser of its own; returns the 受付番号 and the user id.
async fn register(app: &TestApp, email: &str) -> (String, i64) {
    let number = app.with_new_browser().register(email).await;
    let id: i64 = with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT id FROM users WHERE registration_number = $1")
        .bind(&number)
        .fetch_one(pool)
        .await)
    .expect("user id");
    (number, id)
}

async fn review_id(app: &TestApp, user_id: i64, kind: &str) -> i64 {
    with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT id FROM manual_reviews WHERE user_id = $1 AND kind = $2")
        .bind(user_id)
        .bind(kind)
        .fetch_one(pool)
        .await)
    .expect("review id")
}

/// What `region::recheck_unchecked` writes when RegionAPI answers 「not offered」.
async fn make_region_review(app: &TestApp, user_id: i64) -> i64 {
    with_pool!(&app.db, |pool| async {
        sqlx::query("UPDATE users SET region_status = 'ineligible' WHERE id = $1").bind(user_id).execute(pool).await?;
        sqlx::query(
            "INSERT INTO manual_reviews (user_id, kind, reason) VALUES ($1, 'region', 'このプランは東京都でのみお申し込みいただけます。')",
        )
        .bind(user_id)
        .execute(pool)
        .await
        .map(|_| ())
    }
    .await)
    .expect("region review");
    review_id(app, user_id, "region").await
}

async fn stock(app: &TestApp, plan: &str) -> i64 {
    with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT CAST(stock AS BIGINT) FROM plan_stock WHERE plan_id = $1")
        .bind(plan)
        .fetch_one(pool)
        .await)
    .expect("stock")
}

async fn set_stock(app: &TestApp, plan: &str, units: i64) {
    with_pool!(&app.db, |pool| sqlx::query("UPDATE plan_stock SET stock = $1 WHERE plan_id = $2")
        .bind(units)
        .bind(plan)
        .execute(pool)
        .await
        .map(|_| ()))
    .expect("set stock");
}

/// (inventory_status, region_status) of a user.
async fn statuses(app: &TestApp, user_id: i64) -> (String, String) {
    with_pool!(&app.db, |pool| sqlx::query_as("SELECT inventory_status, region_status FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await)
    .expect("statuses")
}

/// (status, decided_by, comment) of a review.
async fn review_state(app: &TestApp, id: i64) -> (String, Option<String>, Option<String>) {
    with_pool!(&app.db, |pool| sqlx::query_as("SELECT status, decided_by, comment FROM manual_reviews WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await)
    .expect("review")
}

/// Audit rows of review decisions: (actor, action, target, detail).
async fn decision_audits(app: &TestApp) -> Vec<(String, String, String, Value)> {
    let rows: Vec<(String, String, String, sqlx::types::Json<Value>)> = with_pool!(&app.db, |pool| sqlx::query_as(
        "SELECT actor, action, target, detail FROM audit_log WHERE action LIKE 'review.%' ORDER BY id"
    )
    .fetch_all(pool)
    .await)
    .expect("audit");
    rows.into_iter().map(|(a, b, c, d)| (a, b, c, d.0)).collect()
}

async fn result_mails(app: &TestApp, email: &str) -> Vec<String> {
    with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT body_text FROM outbox WHERE kind = 'review_result' AND recipient = $1")
        .bind(email)
        .fetch_all(pool)
        .await)
    .expect("outbox")
}

fn decision_path(id: i64) -> String {
    format!("/admin/reviews/{id}/decision")
}

/// Positions of each 受付番号 in a page (None when absent).
fn positions(html: &str, numbers: &[&str]) -> Vec<Option<usize>> {
    numbers.iter().map(|n| html.find(n)).collect()
}

on_both_backends_with! { FALLBACK;
    async fn queue_lists_oldest_first_with_filters_and_pages(app) {
        let (a, a_id) = register(&app, "first@example.jp").await;
        let (b, b_id) = register(&app, "second@example.jp").await;
        let (c, _) = register(&app, "third@example.jp").await;
        make_region_review(&app, b_id).await;
        let operator = admin(&app, Role::Operator).await;

        // Default: pending reviews of every kind, oldest first.
        let html = operator.get_html("/admin/reviews").await;
        let at = positions(&html, &[&a, &b, &c]);
        assert!(at.iter().all(Option::is_some), "all three listed: {at:?}");
        assert!(at[0] < at[1] && at[1] < at[2], "oldest first: {at:?}");
        assert!(html.contains("山田 太郎") && html.contains("スタンダードプラン") && html.contains("東京都（〒1500002）"), "{html}");
        assert!(html.contains("在庫APIで確認できませんでした"), "reason shown");
        assert!(html.contains("未対応の確認 <strong>4</strong> 件"), "three inventory reviews and one region review");
        assert!(html.contains("地域の自動再確認待ち <strong>2</strong> 件"), "a and c are still region-unchecked");

        // Kind filter.
        let html = operator.get_html("/admin/reviews?kind=region").await;
        assert_eq!(positions(&html, &[&a, &b, &c]).iter().map(Option::is_some).collect::<Vec<_>>(), [false, true, false]);
        assert!(html.contains("このプランは東京都でのみお申し込みいただけます。"));
        let html = operator.get_html("/admin/reviews?kind=inventory").await;
        assert!(html.contains(&a) && html.contains(&b) && html.contains(&c));
        assert!(!html.contains("このプランは東京都でのみ"), "no region review among inventory ones");
        // The still-unchecked registrations, shown but not decidable here.
        let html = operator.get_html("/admin/reviews?kind=unchecked").await;
        assert_eq!(positions(&html, &[&a, &b, &c]).iter().map(Option::is_some).collect::<Vec<_>>(), [true, false, true]);
        assert!(html.contains("自動再確認待ち") && !html.contains("/admin/reviews/"), "no link to a decision page");

        // Plan, status and date filters.
        let html = operator.get_html("/admin/reviews?plan=basic").await;
        assert!(!html.contains(&a) && html.contains("条件に合う確認待ちはありません"));
        let html = operator.get_html("/admin/reviews?plan=standard").await;
        assert!(html.contains(&a) && html.contains(&c));
        let html = operator.get_html("/admin/reviews?status=decided").await;
        assert!(!html.contains(&a), "nothing decided yet");
        let today = normal_form_app::values::jst::today();
        let html = operator.get_html(&format!("/admin/reviews?from={today}&to={today}")).await;
        assert!(html.contains(&a) && html.contains(&c));
        let tomorrow = today.next_day().expect("date");
        let html = operator.get_html(&format!("/admin/reviews?from={tomorrow}")).await;
        assert!(!html.contains(&a) && !html.contains(&c));
        let yesterday = today.previous_day().expect("date");
        let html = operator.get_html(&format!("/admin/reviews?to={yesterday}")).await;
        assert!(!html.contains(&a));
        // Bad filter values: a Japanese message, not an error status.
        let response = operator.get("/admin/reviews?from=31-12-2025&kind=everything&after=x").await;
        assert_eq!(response.status(), 200);
        let html = response.text().await.expect("body");
        assert!(html.contains("開始日は「2025-01-31」の形式で入力してください") && html.contains("種別の指定が正しくない"));

        // Decided ones show under 「判定済み」.
        let first = review_id(&app, a_id, "inventory").await;
        assert_eq!(operator.post(&decision_path(first), &[("decision", "approve"), ("comment", "")]).await.status(), 303);
        let html = operator.get_html("/admin/reviews?status=decided").await;
        assert!(html.contains(&a) && !html.contains(&c));
        let html = operator.get_html("/admin/reviews").await;
        assert!(!html.contains(&a) && html.contains(&c), "no longer pending");

        // Pages of 50, by keyset: 60 more decided reviews of one registration.
        with_pool!(&app.db, |pool| async {
            for _ in 0..60 {
                sqlx::query("INSERT INTO manual_reviews (user_id, kind, reason, status) VALUES ($1, 'inventory', 'old', 'rejected')")
                    .bind(a_id)
                    .execute(pool)
                    .await?;
            }
            Ok::<_, sqlx::Error>(())
        }
        .await)
        .expect("old reviews");
        let html = operator.get_html("/admin/reviews?status=rejected").await;
        let links = |html: &str| -> Vec<String> {
            html.match_indices("href=\"/admin/reviews/").map(|(i, _)| html[i + 6..].split('"').next().expect("href").to_string()).collect()
        };
        let page1 = links(&html);
        assert_eq!(page1.len(), 50);
        let next = crate::admin::between(&html, "<a href=\"", "\" rel=\"next\"");
        let next = next.rsplit("<a href=\"").next().expect("next link").replace("&amp;", "&").replace("&#38;", "&");
        assert!(next.contains("&after=") && next.contains("&status=rejected"), "{next}");
        let html = operator.get_html(&next).await;
        let page2 = links(&html);
        assert_eq!(page2.len(), 10);
        assert!(page2.iter().all(|l| !page1.contains(l)), "no entry on both pages");
        assert!(!html.contains("rel=\"next\""), "last page");
    }

    async fn approving_an_inventory_check_reserves_one_unit_and_is_audited(app) {
        let (number, user_id) = register(&app, "approve@example.jp").await;
        let review = review_id(&app, user_id, "inventory").await;
        let before = stock(&app, "standard").await;
        let operator = admin(&app, Role::Operator).await;
        let html = operator.get_html(&format!("/admin/reviews/{review}")).await;
        assert!(html.contains(&number) && html.contains("承認する") && html.contains(&format!("{before} 件")), "{html}");

        let response = operator.post(&decision_path(review), &[("decision", "approve"), ("comment", "倉庫に電話で確認済み")]).await;
        assert_eq!(location(&response), format!("/admin/reviews/{review}?done=approved"));
        assert_eq!(stock(&app, "standard").await, before - 1, "exactly one unit reserved");
        assert_eq!(statuses(&app, user_id).await.0, "confirmed");
        let (status, by, comment) = review_state(&app, review).await;
        assert_eq!((status.as_str(), by.as_deref(), comment.as_deref()), ("approved", Some(operator.email.as_str()), Some("倉庫に電話で確認済み")));
        let audits = decision_audits(&app).await;
        assert_eq!(audits.len(), 1);
        let (actor, action, target, detail) = &audits[0];
        assert_eq!((actor.as_str(), action.as_str(), target.as_str()), (operator.email.as_str(), "review.approve", format!("review:{review}").as_str()));
        assert_eq!(detail["registration_number"], json!(number));
        assert_eq!(detail["before"], json!({ "review_status": "pending", "inventory_status": "needs_check" }));
        assert_eq!(detail["after"], json!({ "review_status": "approved", "inventory_status": "confirmed" }));
        assert_eq!((detail["stock_before"].clone(), detail["stock_after"].clone()), (json!(before), json!(before - 1)));
        assert_eq!(detail["comment"], json!("倉庫に電話で確認済み"));
        let audit_text = detail.to_string();
        assert!(!audit_text.contains("approve@example.jp") && !audit_text.contains("山田"), "no personal data: {audit_text}");
        let mails = result_mails(&app, "approve@example.jp").await;
        assert_eq!(mails.len(), 1, "the registrant hears of it");
        assert!(mails[0].contains(&number) && mails[0].contains("ご登録は有効です") && !mails[0].contains("倉庫"), "{}", mails[0]);
        let html = operator.get_html(&format!("/admin/reviews/{review}?done=approved")).await;
        assert!(html.contains("承認しました。") && html.contains("倉庫に電話で確認済み") && !html.contains("承認する</button>"));

        // A second decision on a decided review is refused and changes nothing.
        let response = operator.post(&decision_path(review), &[("decision", "reject"), ("comment", "やはり却下")]).await;
        assert_eq!(response.status(), 409);
        assert!(response.text().await.expect("body").contains("すでに判定済みです"));
        assert_eq!(review_state(&app, review).await.0, "approved");
        assert_eq!(statuses(&app, user_id).await.0, "confirmed");
        assert_eq!(stock(&app, "standard").await, before - 1);
        assert_eq!(decision_audits(&app).await.len(), 1);
    }

    async fn rejecting_needs_a_comment_and_sets_rejected(app) {
        let (number, user_id) = register(&app, "reject@example.jp").await;
        let review = review_id(&app, user_id, "inventory").await;
        let before = stock(&app, "standard").await;
        let operator = admin(&app, Role::Operator).await;
        let response = operator.post(&decision_path(review), &[("decision", "reject"), ("comment", "  ")]).await;
        assert_eq!(response.status(), 400);
        assert!(response.text().await.expect("body").contains("却下する場合は、理由を選ぶか、メモに入力してください。"));
        assert_eq!(review_state(&app, review).await.0, "pending");
        let response = operator.post(&decision_path(review), &[("decision", "maybe"), ("comment", "x")]).await;
        assert_eq!(response.status(), 400);
        assert_eq!(review_state(&app, review).await.0, "pending");

        let response = operator.post(&decision_path(review), &[("decision", "reject"), ("comment", "在庫切れのため")]).await;
        assert_eq!(location(&response), format!("/admin/reviews/{review}?done=rejected"));
        assert_eq!(statuses(&app, user_id).await.0, "rejected");
        assert_eq!(stock(&app, "standard").await, before, "no unit taken");
        let (status, _, comment) = review_state(&app, review).await;
        assert_eq!((status.as_str(), comment.as_deref()), ("rejected", Some("在庫切れのため")));
        let audits = decision_audits(&app).await;
        assert_eq!(audits.len(), 1);
        assert_eq!(audits[0].1, "review.reject");
        assert_eq!(audits[0].3["after"]["inventory_status"], json!("rejected"));
        assert_eq!(audits[0].3["stock_after"], Value::Null);
        let mails = result_mails(&app, "reject@example.jp").await;
        assert!(mails.len() == 1 && mails[0].contains(&number) && mails[0].contains("お受けできませんでした"));
    }

    async fn notes_with_personal_data_are_refused_and_reason_codes_kept(app) {
        let (_, user_id) = register(&app, "pii.note@example.jp").await;
        let review = review_id(&app, user_id, "inventory").await;
        let operator = admin(&app, Role::Operator).await;
        // The registrant's own values (typed differently), an e-mail address, a phone number, a
        // postal code: each refused with what was found, nothing decided.
        for (note, found) in [
            ("ヤマダ タロウ様から電話", "フリガナ"),
            ("山田様に確認", "姓"),
            ("pii.note@example.jp 宛てに連絡", "メールアドレス"),
            ("０９０（１２３４）５６７８ に連絡", "電話番号"),
            ("〒150-0002 は対象外", "郵便番号"),
            ("渋谷2-21-1 は配送不可", "番地"),
        ] {
            let response = operator.post(&decision_path(review), &[("decision", "reject"), ("reason_code", "outside_region"), ("comment", note)]).await;
            assert_eq!(response.status(), 400, "{note}");
            let html = response.text().await.expect("body");
            assert!(html.contains(&format!("メモに個人情報（{found}）が含まれているようです")), "{note}: {html}");
            assert!(html.contains("<option value=\"outside_region\" selected>"), "the chosen reason is kept");
        }
        let response = operator.post(&decision_path(review), &[("decision", "reject"), ("reason_code", "nonsense")]).await;
        assert_eq!(response.status(), 400);
        let response = operator.post(&decision_path(review), &[("decision", "reject"), ("reason_code", "other")]).await;
        assert!(response.text().await.expect("body").contains("「その他」を選んだ場合は、メモに理由を入力してください。"));
        assert_eq!(review_state(&app, review).await.0, "pending");
        assert!(decision_audits(&app).await.is_empty());

        let response = operator.post(&decision_path(review), &[("decision", "reject"), ("reason_code", "out_of_stock"), ("comment", "問い合わせ #1234")]).await;
        assert_eq!(location(&response), format!("/admin/reviews/{review}?done=rejected"));
        let (_, _, comment) = review_state(&app, review).await;
        assert_eq!(comment.as_deref(), Some("在庫を確保できない：問い合わせ #1234"));
        let audits = decision_audits(&app).await;
        assert_eq!(audits[0].3["reason_code"], json!("out_of_stock"));
        assert_eq!(audits[0].3["comment"], json!("在庫を確保できない：問い合わせ #1234"));
    }

    async fn out_of_stock_refuses_the_approval_and_changes_nothing(app) {
        let (_, user_id) = register(&app, "late@example.jp").await;
        let review = review_id(&app, user_id, "inventory").await;
        set_stock(&app, "standard", 0).await;
        let operator = admin(&app, Role::Operator).await;
        let response = operator.post(&decision_path(review), &[("decision", "approve"), ("comment", "")]).await;
        assert_eq!(response.status(), 409);
        assert!(response.text().await.expect("body").contains("在庫がないため承認できません"));
        assert_eq!(stock(&app, "standard").await, 0);
        assert_eq!(statuses(&app, user_id).await.0, "needs_check");
        assert_eq!(review_state(&app, review).await, ("pending".to_string(), None, None));
        assert!(decision_audits(&app).await.is_empty());
        assert!(result_mails(&app, "late@example.jp").await.is_empty());
        // Restocked, the same review can be approved.
        set_stock(&app, "standard", 1).await;
        assert_eq!(operator.post(&decision_path(review), &[("decision", "approve"), ("comment", "")]).await.status(), 303);
        assert_eq!(stock(&app, "standard").await, 0);
        assert_eq!(statuses(&app, user_id).await.0, "confirmed");
    }

    async fn two_operators_deciding_at_once_exactly_one_wins(app) {
        let (_, user_id) = register(&app, "race@example.jp").await;
        let review = review_id(&app, user_id, "inventory").await;
        let before = stock(&app, "standard").await;
        let one = admin(&app, Role::Operator).await;
        let two = admin(&app, Role::Operator).await;
        let path = decision_path(review);
        let (first, second) = tokio::join!(
            one.post(&path, &[("decision", "approve"), ("comment", "一人目")]),
            two.post(&path, &[("decision", "approve"), ("comment", "二人目")]),
        );
        let mut codes = [first.status().as_u16(), second.status().as_u16()];
        codes.sort_unstable();
        assert_eq!(codes, [303, 409]);
        assert_eq!(stock(&app, "standard").await, before - 1, "one unit, not two");
        assert_eq!(decision_audits(&app).await.len(), 1);
        assert_eq!(result_mails(&app, "race@example.jp").await.len(), 1);
        let (status, by, _) = review_state(&app, review).await;
        assert_eq!(status, "approved");
        let winner = if first.status() == 303 { &one } else { &two };
        assert_eq!(by.as_deref(), Some(winner.email.as_str()));
    }

    async fn region_reviews_are_approved_and_rejected(app) {
        let (_, yes_id) = register(&app, "yes@example.jp").await;
        let (_, no_id) = register(&app, "no@example.jp").await;
        let yes = make_region_review(&app, yes_id).await;
        let no = make_region_review(&app, no_id).await;
        let before = stock(&app, "standard").await;
        let operator = admin(&app, Role::Operator).await;
        let html = operator.get_html(&format!("/admin/reviews/{yes}")).await;
        assert!(html.contains("地域の確認") && html.contains("提供地域外の可能性"), "{html}");
        assert_eq!(operator.post(&decision_path(yes), &[("decision", "approve"), ("comment", "住所は提供地域内と確認")]).await.status(), 303);
        assert_eq!(operator.post(&decision_path(no), &[("decision", "reject"), ("comment", "提供地域外")]).await.status(), 303);
        assert_eq!(statuses(&app, yes_id).await, ("needs_check".to_string(), "approved".to_string()), "only the region status moves");
        assert_eq!(statuses(&app, no_id).await.1, "rejected");
        assert_eq!(stock(&app, "standard").await, before, "a region decision takes no stock");
        let audits = decision_audits(&app).await;
        assert_eq!(audits.len(), 2);
        assert_eq!(audits[0].3["before"], json!({ "review_status": "pending", "region_status": "ineligible" }));
        assert_eq!(audits[0].3["after"], json!({ "review_status": "approved", "region_status": "approved" }));
        assert_eq!(audits[1].3["after"]["region_status"], json!("rejected"));
        assert!(result_mails(&app, "no@example.jp").await[0].contains("ご住所の地域ではこのプランを提供していないため"));
    }

    async fn every_route_checks_sign_in_role_and_csrf(app) {
        let (number, user_id) = register(&app, "roles@example.jp").await;
        let review = review_id(&app, user_id, "inventory").await;
        let before = stock(&app, "standard").await;
        let detail = format!("/admin/reviews/{review}");
        // Anonymous: sent to sign in, for reading and for deciding.
        for path in ["/admin/reviews", detail.as_str()] {
            assert_eq!(location(&app.get(path).await), "/admin/login", "{path}");
        }
        let response = app.post(&decision_path(review), &[("decision", "approve"), ("comment", "")]).await;
        assert_eq!(location(&response), "/admin/login");
        // Viewer: reads, but no form, and a POST is refused.
        let viewer = admin(&app, Role::Viewer).await;
        assert!(viewer.get_html("/admin/reviews").await.contains(&number));
        let html = viewer.get_html(&detail).await;
        assert!(html.contains(&number) && html.contains("閲覧のみの権限です") && !html.contains("承認する"));
        let response = viewer.post(&decision_path(review), &[("decision", "approve"), ("comment", "")]).await;
        assert_eq!(response.status(), 403);
        assert!(response.text().await.expect("body").contains("権限がありません"));
        // Operator without the CSRF token, or with a wrong one.
        let operator = admin(&app, Role::Operator).await;
        let response = operator.post_raw(&decision_path(review), &[("decision", "approve"), ("comment", "")]).await;
        assert_eq!(response.status(), 403);
        let response = operator.post_raw(&decision_path(review), &[("decision", "approve"), ("csrf_token", "forged")]).await;
        assert_eq!(response.status(), 403);
        assert_eq!(review_state(&app, review).await.0, "pending", "nothing decided by refused requests");
        assert_eq!(stock(&app, "standard").await, before);
        assert!(decision_audits(&app).await.is_empty());
        // Unknown and malformed ids: 404 pages, never 5xx.
        assert_eq!(operator.get("/admin/reviews/999999").await.status(), 404);
        assert_eq!(operator.get("/admin/reviews/abc").await.status(), 404);
        assert_eq!(operator.post("/admin/reviews/999999/decision", &[("decision", "approve"), ("comment", "")]).await.status(), 404);
        // The operator sees the form.
        assert!(operator.get_html(&detail).await.contains("承認する"));
    }
}

/// With the HTTP InventoryAPI, approval reserves through its `POST /reservations`, keyed by the
/// 受付番号; when the API refuses or cannot be reached, nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_http_inventory_api_approval_reserves_there() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/stock"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "plans": [{ "plan_id": "standard", "stock": 10 }] })))
        .mount(&server)
        .await;
    // Down at submit time: the registration goes to the queue.
    Mock::given(method("POST")).and(path("/reservations")).respond_with(ResponseTemplate::new(503)).up_to_n_times(1).mount(&server).await;
    let app = spawn_app_with(
        Backend::Sqlite,
        &[("INVENTORY_API_URL", &server.uri()), ("EXTERNAL_API_RETRIES", "0"), ("EXTERNAL_API_BREAKER_THRESHOLD", "100")],
    )
    .await;
    let (number, user_id) = register(&app, "http@example.jp").await;
    let review = review_id(&app, user_id, "inventory").await;
    let operator: Admin = admin(&app, Role::Operator).await;
    // Still sold out at the API: refused, nothing changes.
    let sold_out = Mock::given(method("POST"))
        .and(path("/reservations"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({ "reserved": false })))
        .up_to_n_times(1)
        .mount_as_scoped(&server)
        .await;
    let response = operator.post(&decision_path(review), &[("decision", "approve"), ("comment", "")]).await;
    assert_eq!(response.status(), 409);
    assert_eq!(review_state(&app, review).await.0, "pending");
    drop(sold_out);
    Mock::given(method("POST"))
        .and(path("/reservations"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "reserved": true })))
        .mount(&server)
        .await;
    let response = operator.post(&decision_path(review), &[("decision", "approve"), ("comment", "")]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(statuses(&app, user_id).await.0, "confirmed");
    let reservations: Vec<Value> = server
        .received_requests()
        .await
        .expect("recorded")
        .into_iter()
        .filter(|r| r.url.path() == "/reservations")
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect();
    assert_eq!(reservations.len(), 3, "submit, refused approval, approval");
    assert!(reservations.iter().all(|r| *r == json!({ "plan_id": "standard", "reference": number })));
    let audits = decision_audits(&app).await;
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0].3["reserved_by"], json!("InventoryAPI"));
}
