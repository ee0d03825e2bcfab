-- The manual-review queue (src/admin/reviews/queries.rs) filters on status and pages in id order
-- (`… r.status = $2 … AND r.id > $7 ORDER BY r.id LIMIT $8`): with (status, id) the page is the
-- next 51 entries of one index range, however many decided reviews pile up (docs/BENCHMARKS.md).
CREATE INDEX manual_reviews_queue_idx ON manual_reviews (status, id);

-- The embedded InventoryAPI's stock, striped: each plan's units are shared out over 16 slots so
-- that concurrent registrations of one plan lock different rows instead of queueing on a single
-- one until each registration's transaction commits. A reservation takes one unit from a slot
-- that has one (src/inventory/stock.rs); the CHECK still makes overselling impossible.
CREATE TABLE plan_stock_slots (
    plan_id    TEXT        NOT NULL,
    slot       SMALLINT    NOT NULL CHECK (slot >= 0),
    stock      INTEGER     NOT NULL CHECK (stock >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_id, slot)
);
INSERT INTO plan_stock_slots (plan_id, slot, stock, updated_at)
SELECT plan_id, s, stock / 16 + CASE WHEN s < stock % 16 THEN 1 ELSE 0 END, updated_at
FROM plan_stock CROSS JOIN generate_series(0, 15) AS s;
DROP TABLE plan_stock;

-- plan_stock stays what readers and operators know: one row per plan with its units left (the
-- sum of its slots). Setting its stock (a restock, `UPDATE plan_stock SET stock = …`) shares the
-- change out over the plan's slots: the slots are locked first, so reservations in flight finish
-- before and none run during, and the change the statement made (new − old) is applied to the
-- units left at that moment, so a sale committed meanwhile is not undone.
CREATE VIEW plan_stock AS
SELECT plan_id, SUM(stock) AS stock, MAX(updated_at) AS updated_at FROM plan_stock_slots GROUP BY plan_id;

CREATE FUNCTION plan_stock_set() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    slots BIGINT;
    total BIGINT;
BEGIN
    -- In slot order, as the reservation's waiting pass locks them (src/inventory/stock.rs).
    PERFORM 1 FROM plan_stock_slots WHERE plan_id = OLD.plan_id ORDER BY slot FOR UPDATE;
    SELECT COUNT(*), SUM(stock) INTO slots, total FROM plan_stock_slots WHERE plan_id = OLD.plan_id;
    total := GREATEST(0, total + (NEW.stock - OLD.stock));
    UPDATE plan_stock_slots
    SET stock = total / slots + CASE WHEN slot < total % slots THEN 1 ELSE 0 END, updated_at = now()
    WHERE plan_id = OLD.plan_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER plan_stock_set INSTEAD OF UPDATE ON plan_stock FOR EACH ROW EXECUTE FUNCTION plan_stock_set();
