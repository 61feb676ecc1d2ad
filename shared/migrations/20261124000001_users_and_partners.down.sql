DROP TABLE IF EXISTS revoked_access_tokens;
DROP TABLE IF EXISTS commission_policies;
DROP TABLE IF EXISTS partner_profiles;
DROP TABLE IF EXISTS users;
