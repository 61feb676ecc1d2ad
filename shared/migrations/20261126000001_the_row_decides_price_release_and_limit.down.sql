-- Back to the procedures of 20261124000005 and 20261124000006, which took the price and the limit
-- from the caller.
DROP PROCEDURE IF EXISTS sell_one_line;
DROP PROCEDURE IF EXISTS sell_and_commit;
DROP PROCEDURE IF EXISTS take_units;
DROP PROCEDURE IF EXISTS take_units_checked;

-- The last statement of a sale: the stored answer, the guarded stock update and the end of the
-- transaction in one round trip. A sale holds its product's row lock from the stock update until
-- its transaction ends; sent as separate statements (UPDATE, then COMMIT), every sale of a drop
-- would wait for the previous one's reply to reach the application and its COMMIT to come back,
-- under load the longest part of a sale. Here the lock is taken and released inside the server.
--
-- Stores p_answer on the payment, takes p_quantity units of the product if that many are left,
-- then COMMITs the caller's open transaction, or ROLLs it BACK when they were not there (or the
-- product is gone). Answers one row: taken (1 or 0) and the units left as this transaction saw
-- them (NULL: no such product).
CREATE PROCEDURE sell_and_commit(
    IN p_payment_id VARCHAR(64),
    IN p_answer MEDIUMTEXT,
    IN p_product_id BIGINT,
    IN p_quantity INT
)
BEGIN
    DECLARE v_taken INT DEFAULT 0;
    DECLARE v_left INT DEFAULT NULL;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_left = NULL;
    -- Before the hot row is locked: it is this sale's own payment row.
    -- (COLLATE: a parameter takes the database's default collation, which may not be the column's.)
    UPDATE payments SET response_body = p_answer
        WHERE id = p_payment_id COLLATE utf8mb4_unicode_ci;
    UPDATE products SET stock_remaining = stock_remaining - p_quantity
        WHERE id = p_product_id AND stock_remaining >= p_quantity;
    SET v_taken = ROW_COUNT();
    SELECT stock_remaining INTO v_left FROM products WHERE id = p_product_id;
    IF v_taken = 1 THEN
        COMMIT;
    ELSE
        ROLLBACK;
    END IF;
    SELECT v_taken AS taken, v_left AS units_left;
END;

-- A checkout of one line (one product, so one partner), the shape of a drop's attempts, as one
-- round trip: the payment (which claims the idempotency key), the buyer's purchase count, the
-- order and its line, and last the guarded stock update, which COMMITs the transaction or, when
-- the units are not there, ROLLs it BACK. Sent as statements, a sale was six round trips (BEGIN,
-- four INSERTs, the closing `sell_and_commit`); in the drop benchmark those round trips cost the
-- application and MariaDB more CPU than the writes themselves.
--
-- The answer is not stored: the application builds it from the order id this returns, and a
-- replay of the key rebuilds the same bytes from the rows written here.
--
-- Answers one row: outcome ('SOLD', 'PURCHASE_LIMIT' or 'SHORT'), the order id when SOLD, and the
-- units left as this transaction saw them (NULL: no such product). Any error (1062: the buyer's
-- key is taken) rolls back and reaches the caller unchanged.
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
    IN p_max_per_buyer INT
)
BEGIN
    DECLARE v_amount BIGINT;
    DECLARE v_holding INT;
    DECLARE v_taken INT DEFAULT 0;
    DECLARE v_order_id BIGINT DEFAULT NULL;
    DECLARE v_left INT DEFAULT NULL;
    DECLARE v_outcome VARCHAR(16);
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_left = NULL;
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
    -- 1 row affected: a new row, holding exactly this line's units (the common case in a drop).
    IF ROW_COUNT() = 1 THEN
        SET v_holding = p_quantity;
    ELSE
        SELECT quantity INTO v_holding FROM buyer_product_purchases
            WHERE buyer_id = p_buyer_id AND product_id = p_product_id;
    END IF;

    IF v_holding > p_max_per_buyer THEN
        ROLLBACK;
        SET v_outcome = 'PURCHASE_LIMIT';
    ELSE
        INSERT INTO orders (payment_id, buyer_id, partner_id, status, amount, expires_at)
            VALUES (p_payment_id, p_buyer_id, p_partner_id, 'PENDING_PAYMENT', v_amount,
                    p_expires_at);
        SET v_order_id = LAST_INSERT_ID();
        INSERT INTO order_items (order_id, product_id, quantity, unit_price)
            VALUES (v_order_id, p_product_id, p_quantity, p_unit_price);
        -- The hot row, last: locked from here to the COMMIT just below.
        UPDATE products SET stock_remaining = stock_remaining - p_quantity
            WHERE id = p_product_id AND stock_remaining >= p_quantity;
        SET v_taken = ROW_COUNT();
        SELECT stock_remaining INTO v_left FROM products WHERE id = p_product_id;
        IF v_taken = 1 THEN
            COMMIT;
            SET v_outcome = 'SOLD';
        ELSE
            ROLLBACK;
            SET v_order_id = NULL;
            SET v_outcome = 'SHORT';
        END IF;
    END IF;
    SELECT v_outcome AS outcome, v_order_id AS order_id, v_left AS units_left;
END;
