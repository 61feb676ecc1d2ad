-- Back to 20261126000001's sell_one_line, without the hoarding limits.
DROP PROCEDURE IF EXISTS sell_one_line;
DROP PROCEDURE IF EXISTS add_purchase;
DROP PROCEDURE IF EXISTS add_purchase_checked;
DROP PROCEDURE IF EXISTS open_payment;
DROP PROCEDURE IF EXISTS open_payment_checked;
ALTER TABLE orders DROP KEY idx_orders_buyer_unpaid;
ALTER TABLE buyer_product_purchases DROP COLUMN abandoned_at;

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
