-- Seeds a migrated PostgreSQL database for the admin dashboard timing (docs/BENCHMARKS.md):
-- 1,000,000 users and completed flows over the last year, 300,000 unfinished flows, 500,000
-- validation errors, 1,000,000 sent mails. psql -d DB -f scripts/bench/dashboard_seed.sql
INSERT INTO users (registration_number, email, password_hash, family_name, given_name, family_name_kana, given_name_kana, phone, birth_date, postal_code, prefecture, city, street, plan_id, created_at)
SELECT 'R' || g, 'user' || g || '@example.jp', 'x', '山田', '太郎', 'ヤマダ', 'タロウ', '09012345678', DATE '1990-01-01', '1500002', '東京都', '渋谷区', '渋谷2-21-1', 'standard',
       now() - (g * interval '31.536 seconds')
FROM generate_series(1, 1000000) g;
INSERT INTO user_sessions (token_hash, csrf_token, user_data, status, created_at, updated_at, furthest_step)
SELECT 't' || g, 'c', jsonb_build_object('email', 'user' || g || '@example.jp', 'customer_done', true, 'address_done', true, 'plan_done', true),
       'completed', now() - (g * interval '31.536 seconds'), now() - (g * interval '31.536 seconds'), 4
FROM generate_series(1, 1000000) g;
INSERT INTO user_sessions (token_hash, csrf_token, user_data, status, created_at, updated_at, furthest_step)
SELECT 'a' || g, 'c', jsonb_build_object('email', 'left' || g || '@example.jp', 'customer_done', g % 2 = 0),
       CASE WHEN g % 5 = 0 THEN 'expired' ELSE 'active' END, now() - (g * interval '105 seconds'), now() - (g * interval '105 seconds'), 1 + (g % 3)
FROM generate_series(1, 300000) g;
INSERT INTO form_errors (step, field, created_at)
SELECT (ARRAY['customer','address','plan'])[1 + g % 3], (ARRAY['phone','email','postal_code','birth_date','street'])[1 + g % 5], now() - (g * interval '63 seconds')
FROM generate_series(1, 500000) g;
INSERT INTO outbox (kind, recipient, subject, body_text, body_html, status, created_at, sent_at)
SELECT 'confirmation', 'user' || g || '@example.jp', 's', 't', 'h', 'sent', now() - (g * interval '31.536 seconds'), now()
FROM generate_series(1, 1000000) g;
INSERT INTO outbox (kind, recipient, subject, body_text, body_html, status) SELECT 'x', 'p@example.jp', 's', 't', 'h', 'pending' FROM generate_series(1, 30);
INSERT INTO outbox (kind, recipient, subject, body_text, body_html, status) SELECT 'x', 'f@example.jp', 's', 't', 'h', 'failed' FROM generate_series(1, 4);
INSERT INTO manual_reviews (user_id, kind, reason) SELECT g, 'inventory', 'down' FROM generate_series(1, 20) g;
VACUUM ANALYZE;
