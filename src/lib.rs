//! normal-form-app: a member-registration web form service (会員登録webフォーム).

pub mod address;
pub mod admin;
pub mod apis;
pub mod assets;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod dev;
pub mod emf;
pub mod external;
pub mod health;
pub mod http;
pub mod inventory;
pub mod json;
pub mod mail;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod region;
pub mod registration;
pub mod startup;
pub mod stub_apis;
pub mod telemetry;
