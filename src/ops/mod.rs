//! Operator commands that automate the runbook's checks (`normal-form-app ops …`).

pub mod daily;
pub mod report;
pub mod stats;
