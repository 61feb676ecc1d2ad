-- A sale locks its product's row once, last: the guarded stock UPDATE comes after the payment,
-- the purchase-limit row, the order and its lines, right before COMMIT, so in a drop the sales
-- queue on that one hot row for two round trips instead of seven.
--
-- A foreign key to products would defeat that: InnoDB checks it by taking a shared lock on the
-- product row, so two sales would each hold a shared lock and each wait to upgrade it to the
-- exclusive lock of the stock UPDATE (a deadlock, every time two sales overlap). The two keys
-- below go; what they guaranteed still holds, because no sale commits without its guarded
-- UPDATE of the product row, which finds no row once the product is deleted, and a delete locks
-- that row and refuses a product that was ever ordered (idx_order_items_product answers that).
ALTER TABLE order_items DROP FOREIGN KEY fk_order_items_product;
ALTER TABLE buyer_product_purchases DROP FOREIGN KEY fk_buyer_product_purchases_product;
