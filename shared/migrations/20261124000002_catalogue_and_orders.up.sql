-- The catalogue. stock is what the partner listed; stock_remaining is the authority on what is
-- left and a guarded UPDATE (stock_remaining >= ?) can never take it below zero.
CREATE TABLE products (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    partner_id      BIGINT       NOT NULL,
    name            VARCHAR(200) NOT NULL,
    brand           VARCHAR(100) NOT NULL,
    price           BIGINT       NOT NULL,
    release_at      DATETIME(6)  NOT NULL,
    stock           INT          NOT NULL,
    stock_remaining INT          NOT NULL,
    max_per_buyer   INT          NOT NULL,
    created_at      DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at      DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    -- the newest-first list pages by keyset: WHERE (release_at, id) < (?, ?) ORDER BY release_at DESC, id DESC
    KEY idx_products_newest_release (release_at DESC, id DESC),
    -- a partner's own products
    KEY idx_products_partner (partner_id, id),
    CONSTRAINT fk_products_partner FOREIGN KEY (partner_id) REFERENCES partner_profiles (partner_id),
    CONSTRAINT ck_products_price CHECK (price > 0),
    CONSTRAINT ck_products_stock CHECK (stock > 0),
    CONSTRAINT ck_products_stock_remaining CHECK (stock_remaining BETWEEN 0 AND stock),
    CONSTRAINT ck_products_max_per_buyer CHECK (max_per_buyer > 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One payment per checkout, covering every partner's order in it. id is the PortOne paymentId we
-- hand to the browser. The buyer's Idempotency-Key lives here, unique per buyer, so that the key and
-- the orders it produced are written in one transaction.
CREATE TABLE payments (
    id                VARCHAR(64)  NOT NULL,
    buyer_id          BIGINT       NOT NULL,
    amount            BIGINT       NOT NULL,
    cancelled_amount  BIGINT       NOT NULL DEFAULT 0,
    currency          CHAR(3)      NOT NULL DEFAULT 'KRW',
    status            VARCHAR(24)  NOT NULL,
    -- binary: keys are compared exactly, "abc" and "ABC" are two keys
    idempotency_key   VARBINARY(128) NOT NULL,
    -- SHA-256 of the checkout body: the same key with another body is refused
    request_hash      CHAR(64)     NOT NULL,
    -- the first answer, replayed for the same key and body
    response_body     MEDIUMTEXT   NULL,
    transaction_id    VARCHAR(128) NULL,
    created_at        DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    expires_at        DATETIME(6)  NOT NULL,
    paid_at           DATETIME(6)  NULL,
    updated_at        DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    -- idempotent checkout: one payment per (buyer, key)
    UNIQUE KEY uq_payments_buyer_idempotency_key (buyer_id, idempotency_key),
    CONSTRAINT fk_payments_buyer FOREIGN KEY (buyer_id) REFERENCES users (id),
    CONSTRAINT ck_payments_amount CHECK (amount > 0),
    CONSTRAINT ck_payments_cancelled_amount CHECK (cancelled_amount BETWEEN 0 AND amount),
    CONSTRAINT ck_payments_status CHECK (status IN
        ('PENDING', 'PAID', 'PARTIAL_CANCELLED', 'CANCELLED', 'FAILED', 'EXPIRED'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One order per (checkout, partner).
CREATE TABLE orders (
    id           BIGINT      NOT NULL AUTO_INCREMENT,
    payment_id   VARCHAR(64) NOT NULL,
    buyer_id     BIGINT      NOT NULL,
    partner_id   BIGINT      NOT NULL,
    status       VARCHAR(24) NOT NULL,
    amount       BIGINT      NOT NULL,
    created_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    expires_at   DATETIME(6) NOT NULL,
    paid_at      DATETIME(6) NULL,
    shipped_at   DATETIME(6) NULL,
    confirmed_at DATETIME(6) NULL,
    cancelled_at DATETIME(6) NULL,
    updated_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    -- settlement: WHERE status = 'CONFIRMED' AND confirmed_at in [day start, day end) GROUP BY partner_id,
    -- answered from the index alone (covering: partner_id and amount ride along)
    KEY idx_orders_settlement_covering (status, confirmed_at, partner_id, amount),
    -- sweeper: unpaid orders past expires_at, and shipped orders old enough to auto-confirm
    KEY idx_orders_sweeper (status, expires_at),
    KEY idx_orders_auto_confirm (status, shipped_at),
    -- "my orders", newest first, keyset on id
    KEY idx_orders_buyer_newest (buyer_id, id),
    -- a partner's orders, optionally by status, keyset on id
    KEY idx_orders_partner_status (partner_id, status, id),
    -- every order of one payment (webhook, cancel)
    KEY idx_orders_payment (payment_id),
    CONSTRAINT fk_orders_payment FOREIGN KEY (payment_id) REFERENCES payments (id),
    CONSTRAINT fk_orders_buyer FOREIGN KEY (buyer_id) REFERENCES users (id),
    CONSTRAINT fk_orders_partner FOREIGN KEY (partner_id) REFERENCES partner_profiles (partner_id),
    CONSTRAINT ck_orders_amount CHECK (amount > 0),
    CONSTRAINT ck_orders_status CHECK (status IN
        ('PENDING_PAYMENT', 'PAID', 'SHIPPED', 'CONFIRMED', 'EXPIRED', 'CANCELLED', 'PAYMENT_FAILED'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE order_items (
    id         BIGINT NOT NULL AUTO_INCREMENT,
    order_id   BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    quantity   INT    NOT NULL,
    unit_price BIGINT NOT NULL,
    PRIMARY KEY (id),
    -- an order's lines
    KEY idx_order_items_order (order_id),
    -- "was this product ever ordered?" before a delete
    KEY idx_order_items_product (product_id),
    CONSTRAINT fk_order_items_order FOREIGN KEY (order_id) REFERENCES orders (id),
    CONSTRAINT fk_order_items_product FOREIGN KEY (product_id) REFERENCES products (id),
    CONSTRAINT ck_order_items_quantity CHECK (quantity > 0),
    CONSTRAINT ck_order_items_unit_price CHECK (unit_price > 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Units of a product a buyer holds in live orders (pending, paid, shipped, confirmed). A guarded
-- UPDATE (quantity + ? <= max_per_buyer) enforces the purchase limit under concurrency.
CREATE TABLE buyer_product_purchases (
    buyer_id   BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    quantity   INT    NOT NULL,
    PRIMARY KEY (buyer_id, product_id),
    CONSTRAINT fk_buyer_product_purchases_buyer FOREIGN KEY (buyer_id) REFERENCES users (id),
    CONSTRAINT fk_buyer_product_purchases_product FOREIGN KEY (product_id) REFERENCES products (id),
    CONSTRAINT ck_buyer_product_purchases_quantity CHECK (quantity >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
