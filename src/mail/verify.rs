//! Email verification: the link in the 登録確認 mail opens a page whose button (a POST, so mail
//! scanners that fetch links do not use it up) sets `users.email_verified_at`. Expired, reused
//! or altered links get a clear page with a way to ask for a new mail (rate-limited per address,
//! and the answer never says whether the address is registered).

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{Addressee, confirmation, link_signature, verify_url};
use crate::crypto::constant_time_eq;
use crate::db::Availability;
use crate::http::csrf::same_origin;
use crate::http::error::{AppError, render};
use crate::http::writer_gate::{Hold, WriterGateLayer};
use crate::state::AppState;
use crate::values::fields;
use crate::values::form::Input;
use crate::{claim_mail_slot, insert_outbox, with_pool};

/// The link's pages; confirming and resending pause (503) while the database writer is down.
pub fn routes(availability: &Availability) -> Router<AppState> {
    Router::new().route("/verify-email", get(show).post(confirm)).route("/verify-email/resend", post(resend)).layer(WriterGateLayer::new(
        availability.clone(),
        Hold::Writes,
        "verify_email",
        paused,
    ))
}

fn paused(_: &axum::http::request::Parts, _: Bytes) -> Response {
    render(
        StatusCode::SERVICE_UNAVAILABLE,
        &VerifyPage {
            title: "ただいま確認を一時停止しています",
            message: "システムの障害対応のため、メールアドレスの確認を一時的に停止しています。確認用のリンクは有効期限内であれば引き続き使えますので、しばらくしてからもう一度お試しください。",
            confirm: None,
            offer_resend: false,
        },
    )
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage<'a> {
    title: &'a str,
    message: &'a str,
    confirm: Option<(String, i64, String)>,
    offer_resend: bool,
}

fn problem(status: StatusCode, title: &str, message: &str) -> Response {
    render(status, &VerifyPage { title, message, confirm: None, offer_resend: true })
}

#[derive(Deserialize, Default)]
struct LinkQuery {
    #[serde(default)]
    n: String,
    #[serde(default)]
    e: String,
    #[serde(default)]
    s: String,
}

enum Link {
    Valid { number: String, expires: i64, signature: String },
    Expired,
    Invalid,
}

async fn check_link(state: &AppState, link: &LinkQuery) -> Result<Link, AppError> {
    let Ok(expires) = link.e.parse::<i64>() else { return Ok(Link::Invalid) };
    let email: Option<String> = with_pool!(&state.db, |pool| sqlx::query_scalar("SELECT email FROM users WHERE registration_number = $1")
        .bind(&link.n)
        .fetch_optional(pool)
        .await)?;
    let Some(email) = email else { return Ok(Link::Invalid) };
    let expected = link_signature(state.config.secret_key.expose(), &link.n, &email, expires);
    if !constant_time_eq(&expected, &link.s) {
        return Ok(Link::Invalid);
    }
    if OffsetDateTime::now_utc().unix_timestamp() > expires {
        return Ok(Link::Expired);
    }
    Ok(Link::Valid { number: link.n.clone(), expires, signature: link.s.clone() })
}

const EXPIRED: (&str, &str) =
    ("リンクの有効期限が切れています", "確認用リンクの有効期限（24時間）が過ぎています。下のフォームから確認メールを再送してください。");
const INVALID: (&str, &str) = (
    "このリンクは使用できません",
    "リンクが正しくないか、すでに使用されています。確認がお済みでない場合は、下のフォームから確認メールを再送してください。",
);

async fn show(State(state): State<AppState>, Query(link): Query<LinkQuery>) -> Result<Response, AppError> {
    Ok(match check_link(&state, &link).await? {
        Link::Valid { number, expires, signature } => render(
            StatusCode::OK,
            &VerifyPage {
                title: "メールアドレスの確認",
                message: "下のボタンを押すと、メールアドレスの確認が完了します。",
                confirm: Some((number, expires, signature)),
                offer_resend: false,
            },
        ),
        Link::Expired => problem(StatusCode::GONE, EXPIRED.0, EXPIRED.1),
        Link::Invalid => problem(StatusCode::NOT_FOUND, INVALID.0, INVALID.1),
    })
}

async fn confirm(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, AppError> {
    if !same_origin(&headers, &state.config.public_base_url) {
        crate::http::csrf::refused("verify_email");
        return Ok(problem(StatusCode::FORBIDDEN, INVALID.0, INVALID.1));
    }
    let input = Input::parse(&body);
    let link = LinkQuery { n: input.get("n").to_string(), e: input.get("e").to_string(), s: input.get("s").to_string() };
    let number = match check_link(&state, &link).await? {
        Link::Valid { number, .. } => number,
        Link::Expired => return Ok(problem(StatusCode::GONE, EXPIRED.0, EXPIRED.1)),
        Link::Invalid => return Ok(problem(StatusCode::NOT_FOUND, INVALID.0, INVALID.1)),
    };
    // Single use: only the first confirmation changes the row.
    let updated = with_pool!(&state.db, |pool| sqlx::query(
        "UPDATE users SET email_verified_at = $1 WHERE registration_number = $2 AND email_verified_at IS NULL"
    )
    .bind(OffsetDateTime::now_utc())
    .bind(&number)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    if updated == 0 {
        return Ok(problem(StatusCode::CONFLICT, INVALID.0, INVALID.1));
    }
    tracing::info!(event = "email_verified", "email address verified");
    Ok(render(
        StatusCode::OK,
        &VerifyPage {
            title: "確認完了",
            message: "メールアドレスの確認が完了しました。ご登録ありがとうございます。",
            confirm: None,
            offer_resend: false,
        },
    ))
}

/// A resend is allowed once every 10 minutes per address.
const RESEND_EVERY: time::Duration = time::Duration::minutes(10);

async fn resend(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, AppError> {
    const SENT: (&str, &str) = (
        "確認メールの再送を受け付けました",
        "ご登録があり、確認がお済みでないメールアドレスの場合、確認メールを再送しました。数分たっても届かない場合は、迷惑メールフォルダをご確認ください。",
    );
    if !same_origin(&headers, &state.config.public_base_url) {
        crate::http::csrf::refused("verify_resend");
        return Ok(problem(StatusCode::FORBIDDEN, INVALID.0, INVALID.1));
    }
    let input = Input::parse(&body);
    let Ok(email) = fields::email(input.get("email")) else {
        return Ok(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "メールアドレスをご確認ください",
            "メールアドレスの形式が正しくありません（例: taro@example.jp）。",
        ));
    };
    type Row = (String, String, String, String, String, String);
    let user: Option<Row> = with_pool!(&state.db, |pool| sqlx::query_as(
        "SELECT registration_number, family_name, given_name, family_name_kana, given_name_kana, plan_id \
         FROM users WHERE email = $1 AND email_verified_at IS NULL"
    )
    .bind(&email)
    .fetch_optional(pool)
    .await)?;
    if let Some((number, family_name, given_name, family_name_kana, given_name_kana, plan_id)) = user {
        let now = OffsetDateTime::now_utc();
        let addressee = Addressee {
            family_name: &family_name,
            given_name: &given_name,
            family_name_kana: &family_name_kana,
            given_name_kana: &given_name_kana,
            email: &email,
        };
        let plan = state.catalog.plan_name(&plan_id);
        let url = verify_url(&state.config.public_base_url, state.config.secret_key.expose(), &number, &email, now);
        let mail = confirmation(&state.config.mail, &addressee, plan, &number, &url)?;
        with_pool!(&state.db, |pool| {
            let mut tx = pool.begin().await?;
            if claim_mail_slot!(&mut *tx, "resend", &email, now, RESEND_EVERY).await?.is_some() {
                insert_outbox!(&mut *tx, mail, now).await?;
            }
            tx.commit().await
        })?;
    }
    Ok(render(StatusCode::OK, &VerifyPage { title: SENT.0, message: SENT.1, confirm: None, offer_resend: false }))
}
