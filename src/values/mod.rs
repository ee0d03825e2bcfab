//! Typed values and their rules, normalisation and display, below every feature: what a person
//! types into the form becomes one of these at the edge, and the form, the JSON API, the admin
//! console, the mails and the reports all read and show them the same way. Nothing here depends on
//! any other module of the crate (docs/ARCHITECTURE.md).

pub mod fields;
pub mod form;
pub mod jst;
pub mod pii;
pub mod registration_number;
