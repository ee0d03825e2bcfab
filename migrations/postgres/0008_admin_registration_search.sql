-- 登録一覧 (admin console): keyset pagination and search that stay fast at 1,000,000 users.
-- Newest first: WHERE (created_at, id) < ($1, $2) ORDER BY created_at DESC, id DESC LIMIT n.
CREATE INDEX users_created_at_id_idx ON users (created_at DESC, id DESC);
-- Prefix searches are written as byte-order ranges (col COLLATE "C" >= 'abc' AND < 'abd'),
-- which these indexes answer whatever the database's default collation is.
CREATE INDEX users_email_c_idx ON users (email COLLATE "C");
-- (family, given) serves a family-name prefix and 「山田 太」 (family exact, given prefix) alike.
CREATE INDEX users_family_given_c_idx ON users (family_name COLLATE "C", given_name COLLATE "C");
CREATE INDEX users_given_name_c_idx ON users (given_name COLLATE "C");
CREATE INDEX users_family_given_kana_c_idx ON users (family_name_kana COLLATE "C", given_name_kana COLLATE "C");
CREATE INDEX users_given_name_kana_c_idx ON users (given_name_kana COLLATE "C");
CREATE INDEX users_phone_idx ON users (phone);
-- The detail page lists a registration's flows and reviews.
CREATE INDEX user_sessions_user_id_idx ON user_sessions (user_id);
CREATE INDEX manual_reviews_user_id_idx ON manual_reviews (user_id);
