-- Hoarding a drop with throwaway accounts: each account checks out, never pays, and the units sit
-- in unpaid orders until they expire; then it checks out again. Two limits, enforced inside the
-- statements a sale makes anyway (no round trip is added):
--
-- 1. A buyer holds at most p_max_unpaid unpaid orders (PENDING_PAYMENT, not yet past
--    expires_at) at once. The buyer's `users` row is locked first, so one buyer's checkouts
--    queue there and each counts the others' orders; the count reads idx_orders_buyer_unpaid.
--    The lock comes before the payment insert, whose foreign key takes a shared lock on that
--    row: two checkouts that each held it shared would deadlock upgrading it.
-- 2. A buyer who cancelled or let expire an unpaid order of a product waits p_cooldown_seconds
--    before buying it again: the release stamps `abandoned_at` on the buyer's purchase row,
--    which the sale locks and reads anyway (a buyer's first units of a product, a new row,
--    need no read).
--
-- Lock order of every checkout: the buyer's row, the buyer's key (the payment), the buyer's
-- purchase rows, then products in ascending id.

ALTER TABLE buyer_product_purchases
    -- when the buyer last cancelled or let expire an unpaid order of the product
    ADD COLUMN abandoned_at DATETIME(6) NULL;

ALTER TABLE orders
    -- a buyer's unpaid orders at checkout: WHERE buyer_id = ? AND status = 'PENDING_PAYMENT' AND expires_at > ?
    ADD KEY idx_orders_buyer_unpaid (buyer_id, status, expires_at);

DROP PROCEDURE IF EXISTS sell_one_line;

-- Opens a checkout: locks the buyer's row, writes the payment (which claims the idempotency key;
-- a taken key is error 1062, before any count), and counts the buyer's unpaid orders.
-- o_too_many is TRUE when p_new_orders more would exceed p_max_unpaid; the caller then rolls
-- back. Neither commits nor rolls back.
CREATE PROCEDURE open_payment_checked(
    IN p_payment_id VARCHAR(64),
    IN p_buyer_id BIGINT,
    IN p_idempotency_key VARBINARY(128),
    IN p_request_hash CHAR(64),
    IN p_amount BIGINT,
    IN p_expires_at DATETIME(6),
    IN p_now DATETIME(6),
    IN p_new_orders INT,
    IN p_max_unpaid INT,
    OUT o_too_many BOOLEAN
)
BEGIN
    DECLARE v_buyer BIGINT DEFAULT NULL;
    DECLARE v_unpaid INT DEFAULT 0;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_buyer = NULL;
    SELECT id INTO v_buyer FROM users WHERE id = p_buyer_id FOR UPDATE;
    INSERT INTO payments (id, buyer_id, amount, status, idempotency_key, request_hash, expires_at)
        VALUES (p_payment_id, p_buyer_id, p_amount, 'PENDING', p_idempotency_key, p_request_hash,
                p_expires_at);
    -- A plain read, after the lock: every checkout of this buyer that committed is seen, and
    -- every other waits. Orders past their expiry cannot be paid any more and do not count.
    SELECT COUNT(*) INTO v_unpaid FROM orders
        WHERE buyer_id = p_buyer_id AND status = 'PENDING_PAYMENT' AND expires_at > p_now;
    SET o_too_many = v_unpaid + p_new_orders > p_max_unpaid;
END;

-- `open_payment_checked` for a checkout of several lines: its answer as one row, outcome 'OPEN'
-- or 'TOO_MANY_UNPAID'.
CREATE PROCEDURE open_payment(
    IN p_payment_id VARCHAR(64),
    IN p_buyer_id BIGINT,
    IN p_idempotency_key VARBINARY(128),
    IN p_request_hash CHAR(64),
    IN p_amount BIGINT,
    IN p_expires_at DATETIME(6),
    IN p_now DATETIME(6),
    IN p_new_orders INT,
    IN p_max_unpaid INT
)
BEGIN
    DECLARE v_too_many BOOLEAN;
    CALL open_payment_checked(p_payment_id, p_buyer_id, p_idempotency_key, p_request_hash,
                              p_amount, p_expires_at, p_now, p_new_orders, p_max_unpaid,
                              v_too_many);
    SELECT IF(v_too_many, 'TOO_MANY_UNPAID', 'OPEN') AS outcome;
END;

-- Adds a line's units to what the buyer holds of the product, and locks that row to the end of
-- the transaction (one buyer's concurrent checkouts of a product queue here). o_holding: the
-- units held with this line's. o_wait_seconds: NULL, or how long the buyer must still wait
-- since abandoning an order of the product (cooldown p_cooldown_seconds; 0 is none). Neither
-- commits nor rolls back.
CREATE PROCEDURE add_purchase_checked(
    IN p_buyer_id BIGINT,
    IN p_product_id BIGINT,
    IN p_quantity INT,
    IN p_now DATETIME(6),
    IN p_cooldown_seconds BIGINT,
    OUT o_holding INT,
    OUT o_wait_seconds BIGINT
)
BEGIN
    DECLARE v_abandoned_at DATETIME(6) DEFAULT NULL;
    SET o_wait_seconds = NULL;
    INSERT INTO buyer_product_purchases (buyer_id, product_id, quantity)
        VALUES (p_buyer_id, p_product_id, p_quantity)
        ON DUPLICATE KEY UPDATE quantity = quantity + VALUES(quantity);
    -- 1 row affected: a new row, holding exactly this line's units and never abandoned (the
    -- common case in a drop): nothing to read.
    IF ROW_COUNT() = 1 THEN
        SET o_holding = p_quantity;
    ELSE
        SELECT quantity, abandoned_at INTO o_holding, v_abandoned_at
            FROM buyer_product_purchases
            WHERE buyer_id = p_buyer_id AND product_id = p_product_id;
        IF p_cooldown_seconds > 0
           AND v_abandoned_at > p_now - INTERVAL p_cooldown_seconds SECOND THEN
            SET o_wait_seconds = CEIL(TIMESTAMPDIFF(MICROSECOND, p_now,
                v_abandoned_at + INTERVAL p_cooldown_seconds SECOND) / 1000000);
        END IF;
    END IF;
END;

-- `add_purchase_checked` for a checkout of several lines: its answer as one row.
CREATE PROCEDURE add_purchase(
    IN p_buyer_id BIGINT,
    IN p_product_id BIGINT,
    IN p_quantity INT,
    IN p_now DATETIME(6),
    IN p_cooldown_seconds BIGINT
)
BEGIN
    DECLARE v_holding INT;
    DECLARE v_wait_seconds BIGINT;
    CALL add_purchase_checked(p_buyer_id, p_product_id, p_quantity, p_now, p_cooldown_seconds,
                              v_holding, v_wait_seconds);
    SELECT v_holding AS holding, v_wait_seconds AS wait_seconds;
END;

-- A checkout of one line in one round trip: `open_payment_checked` (the buyer's row, the payment
-- and its key, the unpaid orders), `add_purchase_checked` (the buyer's purchase count and
-- cooldown), the order and its line, and last `take_units_checked` (the product row), after which
-- the transaction is COMMITted (SOLD) or ROLLed BACK. The answer is not stored: the application
-- builds it from the order id this returns, and a replay of the key rebuilds the same bytes from
-- the rows written here.
--
-- Answers one row: outcome ('TOO_MANY_UNPAID', 'REBUY_COOLDOWN', or `take_units_checked`'s),
-- the order id when SOLD, the units left, the row's limit and price as far as they were read,
-- and the seconds to wait on REBUY_COOLDOWN. Any error (1062: the buyer's key is taken) rolls
-- back and reaches the caller unchanged.
CREATE PROCEDURE sell_one_line(
    IN p_payment_id VARCHAR(64),
    IN p_buyer_id BIGINT,
    IN p_idempotency_key VARBINARY(128),
    IN p_request_hash CHAR(64),
    IN p_expires_at DATETIME(6),
    IN p_partner_id BIGINT,
    IN p_product_id BIGINT,
    IN p_quantity INT,
    IN p_unit_price BIGINT,
    IN p_now DATETIME(6),
    IN p_max_unpaid INT,
    IN p_cooldown_seconds BIGINT
)
BEGIN
    DECLARE v_amount BIGINT;
    DECLARE v_too_many BOOLEAN;
    DECLARE v_holding INT;
    DECLARE v_wait_seconds BIGINT DEFAULT NULL;
    DECLARE v_order_id BIGINT DEFAULT NULL;
    DECLARE v_outcome VARCHAR(24) DEFAULT NULL;
    DECLARE v_left INT DEFAULT NULL;
    DECLARE v_max_per_buyer INT DEFAULT NULL;
    DECLARE v_price BIGINT DEFAULT NULL;
    DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN END;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION
    BEGIN
        ROLLBACK;
        RESIGNAL;
    END;

    SET v_amount = p_quantity * p_unit_price;
    START TRANSACTION;
    CALL open_payment_checked(p_payment_id, p_buyer_id, p_idempotency_key, p_request_hash,
                              v_amount, p_expires_at, p_now, 1, p_max_unpaid, v_too_many);
    IF v_too_many THEN
        SET v_outcome = 'TOO_MANY_UNPAID';
    ELSE
        CALL add_purchase_checked(p_buyer_id, p_product_id, p_quantity, p_now,
                                  p_cooldown_seconds, v_holding, v_wait_seconds);
        IF v_wait_seconds IS NOT NULL THEN
            SET v_outcome = 'REBUY_COOLDOWN';
        ELSEIF v_holding > p_quantity THEN
            -- A buyer who holds units already, which the checkout could not count: a plain read
            -- of the limit (the hot row is not locked for it) spares an attempt over it the
            -- product's lock; the locked read below decides.
            SELECT max_per_buyer INTO v_max_per_buyer FROM products WHERE id = p_product_id;
            IF v_holding > v_max_per_buyer THEN
                SET v_outcome = 'PURCHASE_LIMIT';
            END IF;
        END IF;
    END IF;

    IF v_outcome IS NULL THEN
        INSERT INTO orders (payment_id, buyer_id, partner_id, status, amount, expires_at)
            VALUES (p_payment_id, p_buyer_id, p_partner_id, 'PENDING_PAYMENT', v_amount,
                    p_expires_at);
        SET v_order_id = LAST_INSERT_ID();
        INSERT INTO order_items (order_id, product_id, quantity, unit_price)
            VALUES (v_order_id, p_product_id, p_quantity, p_unit_price);
        -- The hot row, last: locked from here to the COMMIT just below.
        CALL take_units_checked(p_product_id, p_quantity, p_unit_price, p_now, v_holding,
                                v_outcome, v_left, v_max_per_buyer, v_price);
    END IF;
    IF v_outcome = 'SOLD' THEN
        COMMIT;
    ELSE
        ROLLBACK;
        SET v_order_id = NULL;
    END IF;
    SELECT v_outcome AS outcome, v_order_id AS order_id, v_left AS units_left,
           v_max_per_buyer AS max_per_buyer, v_price AS price, v_wait_seconds AS wait_seconds;
END;
