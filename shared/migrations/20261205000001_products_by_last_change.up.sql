-- The sweeper reconciles the Redis counters of products sold, given back or edited lately,
-- whenever they were released (every such change touches `updated_at`): a counter can drift on
-- a product released long ago as on a new drop's.
ALTER TABLE products
    ADD KEY idx_products_updated_at (updated_at);
