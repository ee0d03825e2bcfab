-- Mirrors migrations/postgres/0008: SQLite compares TEXT byte-wise (BINARY), so plain indexes
-- answer the prefix ranges.
CREATE INDEX users_created_at_id_idx ON users (created_at DESC, id DESC);
CREATE INDEX users_family_given_idx ON users (family_name, given_name);
CREATE INDEX users_given_name_idx ON users (given_name);
CREATE INDEX users_family_given_kana_idx ON users (family_name_kana, given_name_kana);
CREATE INDEX users_given_name_kana_idx ON users (given_name_kana);
CREATE INDEX users_phone_idx ON users (phone);
CREATE INDEX user_sessions_user_id_idx ON user_sessions (user_id);
CREATE INDEX manual_reviews_user_id_idx ON manual_reviews (user_id);
