-- The Redis blacklist is reloaded one user at a time (the user's loaded flag lives in the user's
-- hash slot, beside the user's entries): the reload reads one user's tokens that have not expired.
ALTER TABLE revoked_access_tokens
    ADD KEY idx_revoked_access_tokens_user (user_id, expires_at);
