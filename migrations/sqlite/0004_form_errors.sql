-- Mirrors migrations/postgres/0004.
CREATE TABLE form_errors (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    step       TEXT    NOT NULL,
    field      TEXT    NOT NULL,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX form_errors_created_at_idx ON form_errors (created_at);
