-- One row per validation error shown to a person (step and field only, never the value): the
-- runbook's 「エラー発生パターン」 for the weekly report and the admin dashboard.
CREATE TABLE form_errors (
    id         BIGSERIAL   PRIMARY KEY,
    step       TEXT        NOT NULL,
    field      TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX form_errors_created_at_idx ON form_errors (created_at);
