ALTER TABLE buyer_product_purchases
    ADD CONSTRAINT fk_buyer_product_purchases_product FOREIGN KEY (product_id) REFERENCES products (id);
ALTER TABLE order_items
    ADD CONSTRAINT fk_order_items_product FOREIGN KEY (product_id) REFERENCES products (id);
