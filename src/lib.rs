//! normal-form-app: a member-registration web form service (会員登録webフォーム).

pub mod address;
pub mod assets;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod health;
pub mod http;
pub mod registration;
pub mod startup;
pub mod telemetry;
