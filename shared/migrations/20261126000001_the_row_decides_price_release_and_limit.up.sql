-- The product row, under the lock a sale takes anyway, decides the price, the release time and
-- the purchase limit; what the checkout passes is what it believes (from Redis, which only
-- pre-filters), and a sale that disagrees is refused. Before, `sell_one_line` took the price and
-- the limit from the caller and never read the release time, so facts Redis kept after a
-- product edit (an eviction that failed, a first load that raced the edit) sold at the old
-- price, before a postponed release or above a lowered limit.
--
-- One rule, in one place: `take_units_checked` locks the product row and judges the line by
-- it, in the order of the stock rule (release, limit, units) and then the price; it is called
-- by `sell_one_line`, by `sell_and_commit` (the last line of several) and by `take_units` (the
-- other lines). A sale still makes one round trip per statement it made before.
DROP PROCEDURE IF EXISTS sell_one_line;
DROP PROCEDURE IF EXISTS sell_and_commit;

-- Locks the product's row and takes p_quantity units if the row agrees: released at p_now, the
-- buyer's p_holding units (this line's included) within its max_per_buyer, that many units
-- left, and its price p_unit_price. Answers in the OUT parameters: o_outcome 'SOLD',
-- 'NOT_ON_SALE', 'PURCHASE_LIMIT', 'SHORT' or 'PRICE_CHANGED'; the units left (after the sale
-- when SOLD; NULL when there is no such product), and the row's limit and price. Neither
-- commits nor rolls back: its callers end the transaction.
CREATE PROCEDURE take_units_checked(
    IN p_product_id BIGINT,
    IN p_quantity INT,
    IN p_unit_price BIGINT,
    IN p_now DATETIME(6),
    IN p_holding INT,
    OUT o_outcome VARCHAR(16),
    OUT o_left INT,
    OUT o_max_per_buyer INT,
    OUT o_price BIGINT
)
BEGIN
    DECLARE v_release_at DATETIME(6) DEFAULT NULL;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET o_left = NULL;
    SET o_left = NULL, o_max_per_buyer = NULL, o_price = NULL;
    -- The hot row: locked from here to the caller's COMMIT or ROLLBACK. A locking read sees
    -- the row as it is now, not as this transaction's snapshot had it.
    SELECT stock_remaining, price, release_at, max_per_buyer
        INTO o_left, o_price, v_release_at, o_max_per_buyer
        FROM products WHERE id = p_product_id FOR UPDATE;
    IF o_left IS NULL THEN
        SET o_outcome = 'SHORT';
    ELSEIF v_release_at > p_now THEN
        SET o_outcome = 'NOT_ON_SALE';
    ELSEIF p_holding > o_max_per_buyer THEN
        SET o_outcome = 'PURCHASE_LIMIT';
    ELSEIF o_left < p_quantity THEN
        SET o_outcome = 'SHORT';
    ELSEIF o_price <> p_unit_price THEN
        SET o_outcome = 'PRICE_CHANGED';
    ELSE
        UPDATE products SET stock_remaining = stock_remaining - p_quantity
            WHERE id = p_product_id AND stock_remaining >= p_quantity;
        IF ROW_COUNT() = 1 THEN
            SET o_outcome = 'SOLD', o_left = o_left - p_quantity;
        ELSE
            SET o_outcome = 'SHORT';
        END IF;
    END IF;
END;

-- `take_units_checked` for a line that is not a transaction's last: its answer as one row.
CREATE PROCEDURE take_units(
    IN p_product_id BIGINT,
    IN p_quantity INT,
    IN p_unit_price BIGINT,
    IN p_now DATETIME(6),
    IN p_holding INT
)
BEGIN
    DECLARE v_outcome VARCHAR(16);
    DECLARE v_left INT;
    DECLARE v_max_per_buyer INT;
    DECLARE v_price BIGINT;
    CALL take_units_checked(p_product_id, p_quantity, p_unit_price, p_now, p_holding,
                            v_outcome, v_left, v_max_per_buyer, v_price);
    SELECT v_outcome AS outcome, v_left AS units_left, v_max_per_buyer AS max_per_buyer,
           v_price AS price;
END;

-- The last statement of a sale of several lines: stores p_answer on the payment, takes the last
-- line's units by `take_units_checked`, then COMMITs the caller's open transaction when they were
-- taken, or ROLLs it BACK. Answers one row as `take_units` does.
CREATE PROCEDURE sell_and_commit(
    IN p_payment_id VARCHAR(64),
    IN p_answer MEDIUMTEXT,
    IN p_product_id BIGINT,
    IN p_quantity INT,
    IN p_unit_price BIGINT,
    IN p_now DATETIME(6),
    IN p_holding INT
)
BEGIN
    DECLARE v_outcome VARCHAR(16);
    DECLARE v_left INT;
    DECLARE v_max_per_buyer INT;
    DECLARE v_price BIGINT;
    -- Before the hot row is locked: it is this sale's own payment row.
    -- (COLLATE: a parameter takes the database's default collation, which may not be the column's.)
    UPDATE payments SET response_body = p_answer
        WHERE id = p_payment_id COLLATE utf8mb4_unicode_ci;
    CALL take_units_checked(p_product_id, p_quantity, p_unit_price, p_now, p_holding,
                            v_outcome, v_left, v_max_per_buyer, v_price);
    IF v_outcome = 'SOLD' THEN
        COMMIT;
    ELSE
        ROLLBACK;
    END IF;
    SELECT v_outcome AS outcome, v_left AS units_left, v_max_per_buyer AS max_per_buyer,
           v_price AS price;
END;

-- A checkout of one line in one round trip: the payment (which claims the idempotency key), the
-- buyer's purchase count, the order and its line, and last `take_units_checked`, after which the
-- transaction is COMMITted (SOLD) or ROLLed BACK. The answer is not stored: the application
-- builds it from the order id this returns, and a replay of the key rebuilds the same bytes from
-- the rows written here.
--
-- Answers one row: outcome (as `take_units_checked`'s), the order id when SOLD, the units left,
-- and the row's limit and price as far as they were read. Any error (1062: the buyer's key is
-- taken) rolls back and reaches the caller unchanged.
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
    IN p_now DATETIME(6)
)
BEGIN
    DECLARE v_amount BIGINT;
    DECLARE v_holding INT;
    DECLARE v_order_id BIGINT DEFAULT NULL;
    DECLARE v_outcome VARCHAR(16) DEFAULT NULL;
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
    INSERT INTO payments (id, buyer_id, amount, status, idempotency_key, request_hash, expires_at)
        VALUES (p_payment_id, p_buyer_id, v_amount, 'PENDING', p_idempotency_key, p_request_hash,
                p_expires_at);
    -- The purchase row stays locked to the end: one buyer's concurrent checkouts queue here.
    INSERT INTO buyer_product_purchases (buyer_id, product_id, quantity)
        VALUES (p_buyer_id, p_product_id, p_quantity)
        ON DUPLICATE KEY UPDATE quantity = quantity + VALUES(quantity);
    -- 1 row affected: a new row, holding exactly this line's units (the common case in a drop),
    -- which the checkout already compared with the limit it believes; the row decides below.
    IF ROW_COUNT() = 1 THEN
        SET v_holding = p_quantity;
    ELSE
        SELECT quantity INTO v_holding FROM buyer_product_purchases
            WHERE buyer_id = p_buyer_id AND product_id = p_product_id;
        -- A buyer who holds units already: a plain read of the limit (the hot row is not locked
        -- for it) spares an attempt over it the product's lock; the locked read below decides.
        SELECT max_per_buyer INTO v_max_per_buyer FROM products WHERE id = p_product_id;
        IF v_holding > v_max_per_buyer THEN
            SET v_outcome = 'PURCHASE_LIMIT';
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
           v_max_per_buyer AS max_per_buyer, v_price AS price;
END;
