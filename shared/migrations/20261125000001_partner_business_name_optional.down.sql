-- Profiles without a business name take the partner's account name, so the column can be
-- NOT NULL again.
UPDATE partner_profiles p JOIN users u ON u.id = p.partner_id
SET p.business_name = LEFT(u.name, 200)
WHERE p.business_name IS NULL;
ALTER TABLE partner_profiles MODIFY business_name VARCHAR(200) NOT NULL;
