-- InventoryAPI (embedded provider): units left per plan. The CHECK makes overselling impossible:
-- a reservation is `stock = stock - 1 WHERE stock > 0`, and a race that would go below zero fails.
CREATE TABLE plan_stock (
    plan_id    TEXT        PRIMARY KEY,
    stock      INTEGER     NOT NULL CHECK (stock >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- reserved: a unit was reserved at submit; needs_check: InventoryAPI was down, an operator
-- confirms by hand; confirmed / rejected: the operator's decision.
ALTER TABLE users ADD COLUMN inventory_status TEXT NOT NULL DEFAULT 'reserved'
    CHECK (inventory_status IN ('reserved', 'needs_check', 'confirmed', 'rejected'));
-- eligible: offered at the address; unchecked: RegionAPI was down, re-checked later;
-- ineligible: the re-check refused it (manual review); approved / rejected: the operator's decision.
ALTER TABLE users ADD COLUMN region_status TEXT NOT NULL DEFAULT 'eligible'
    CHECK (region_status IN ('eligible', 'unchecked', 'ineligible', 'approved', 'rejected'));
CREATE INDEX users_region_unchecked_idx ON users (id) WHERE region_status = 'unchecked';

-- The operators' queue (管理者による手動確認 / 後処理で地域制限を確認).
CREATE TABLE manual_reviews (
    id         BIGSERIAL   PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT        NOT NULL CHECK (kind IN ('inventory', 'region')),
    reason     TEXT        NOT NULL,
    status     TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    decided_at TIMESTAMPTZ,
    decided_by TEXT,
    comment    TEXT
);
CREATE INDEX manual_reviews_pending_idx ON manual_reviews (created_at) WHERE status = 'pending';
-- At most one open review per registration and kind, however many instances run the re-check.
CREATE UNIQUE INDEX manual_reviews_one_pending_key ON manual_reviews (user_id, kind) WHERE status = 'pending';
