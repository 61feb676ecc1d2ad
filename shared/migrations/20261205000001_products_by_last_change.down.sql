ALTER TABLE products DROP KEY idx_products_updated_at;
