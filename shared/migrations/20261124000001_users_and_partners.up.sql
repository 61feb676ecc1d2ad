-- Accounts: buyers, partners (brands and shops) and admins share one table; the role says which.
CREATE TABLE users (
    id            BIGINT       NOT NULL AUTO_INCREMENT,
    -- stored lower-cased and trimmed: emails are case-insensitive
    email         VARCHAR(254) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    name          VARCHAR(100) NOT NULL,
    role          VARCHAR(16)  NOT NULL,
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    -- login looks a user up by email; signup relies on it to refuse a taken email
    UNIQUE KEY uq_users_email (email),
    CONSTRAINT ck_users_role CHECK (role IN ('buyer', 'partner', 'admin'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- A partner's business details; partner_id is the partner's user id.
CREATE TABLE partner_profiles (
    partner_id    BIGINT       NOT NULL,
    business_name VARCHAR(200) NOT NULL,
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (partner_id),
    CONSTRAINT fk_partner_profiles_user FOREIGN KEY (partner_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Commission policies: the one in force on day D is the latest effective_from <= D.
CREATE TABLE commission_policies (
    id             BIGINT      NOT NULL AUTO_INCREMENT,
    partner_id     BIGINT      NOT NULL,
    rate_bps       INT         NOT NULL,
    fixed_fee      BIGINT      NOT NULL,
    effective_from DATE        NOT NULL,
    created_at     DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    -- "policy in force on D": WHERE partner_id = ? AND effective_from <= D ORDER BY effective_from DESC LIMIT 1;
    -- unique so that setting a policy for a date twice replaces it
    UNIQUE KEY uq_commission_policies_partner_effective_from (partner_id, effective_from),
    CONSTRAINT fk_commission_policies_partner FOREIGN KEY (partner_id) REFERENCES partner_profiles (partner_id),
    CONSTRAINT ck_commission_policies_rate CHECK (rate_bps BETWEEN 0 AND 10000),
    CONSTRAINT ck_commission_policies_fee CHECK (fixed_fee >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Access tokens revoked by logout, kept until they would have expired anyway. Redis holds the hot
-- copy of this blacklist; this table is what Redis is rebuilt from after a restart.
CREATE TABLE revoked_access_tokens (
    jti        CHAR(36)    NOT NULL,
    user_id    BIGINT      NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    PRIMARY KEY (jti),
    -- rebuilding the Redis blacklist reads only the tokens that have not expired yet
    KEY idx_revoked_access_tokens_expires_at (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
