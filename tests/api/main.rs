//! Integration tests: each starts the real server on a random port against its own fresh
//! database. Storage tests run once on SQLite and once on PostgreSQL (`TEST_DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`; a throw-away database per test).

mod helpers;

mod address;
mod admin;
mod backup;
mod cluster;
mod foundation;
mod integrations;
mod json_api;
mod mail;
mod observability;
mod openapi;
mod ops;
mod process;
mod purge;
mod registration;
mod replica;
mod runbook;
mod smtp_sink;
mod stock;
