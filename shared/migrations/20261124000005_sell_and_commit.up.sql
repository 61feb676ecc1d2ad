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
