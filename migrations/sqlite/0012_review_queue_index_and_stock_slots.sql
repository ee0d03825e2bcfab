-- Mirrors migrations/postgres/0012, except that SQLite keeps one slot per plan: it runs one
-- writer at a time anyway, so more rows would not let two registrations proceed together.
CREATE INDEX manual_reviews_queue_idx ON manual_reviews (status, id);

CREATE TABLE plan_stock_slots (
    plan_id    TEXT    NOT NULL,
    slot       INTEGER NOT NULL CHECK (slot >= 0),
    stock      INTEGER NOT NULL CHECK (stock >= 0),
    updated_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (plan_id, slot)
);
INSERT INTO plan_stock_slots (plan_id, slot, stock, updated_at) SELECT plan_id, 0, stock, updated_at FROM plan_stock;
DROP TABLE plan_stock;

CREATE VIEW plan_stock AS
SELECT plan_id, SUM(stock) AS stock, MAX(updated_at) AS updated_at FROM plan_stock_slots GROUP BY plan_id;

-- A restock applies the change (new − old) to the plan's slot.
CREATE TRIGGER plan_stock_set INSTEAD OF UPDATE ON plan_stock
BEGIN
    UPDATE plan_stock_slots
    SET stock = MAX(0, stock + (NEW.stock - OLD.stock)), updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    WHERE plan_id = OLD.plan_id;
END;
