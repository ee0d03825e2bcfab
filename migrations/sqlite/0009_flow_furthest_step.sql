-- The admin dashboard's funnel: how far each flow got (1 お客様情報, 2 ご住所, 3 プランの選択,
-- 4 確認). Raised when a step is saved complete, never lowered when the person goes back and
-- changes an earlier step, so a flow that reached 確認 once counts as having reached it.
ALTER TABLE user_sessions ADD COLUMN furthest_step INTEGER NOT NULL DEFAULT 1
    CHECK (furthest_step BETWEEN 1 AND 4);

-- Existing flows: as far as their stored step flags show. Only active flows need it: the funnel
-- counts a completed flow as having reached every step by its status, and leaves expired flows
-- out, so the (many) finished rows are not rewritten and the migration stays short.
UPDATE user_sessions SET furthest_step = CASE
        WHEN COALESCE(json_extract(user_data, '$.address_done'), 0) AND COALESCE(json_extract(user_data, '$.plan_done'), 0) THEN 4
        WHEN COALESCE(json_extract(user_data, '$.address_done'), 0) THEN 3
        ELSE 2
    END
    WHERE status = 'active' AND COALESCE(json_extract(user_data, '$.customer_done'), 0);

CREATE INDEX user_sessions_funnel_idx ON user_sessions (created_at, status, furthest_step);

-- The dashboard counts mail given up on; sent mail piles up, failed mail is rare.
CREATE INDEX outbox_failed_idx ON outbox (id) WHERE status = 'failed';
