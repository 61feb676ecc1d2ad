-- A partner may sign up without a business name (the contract makes it optional). The profile row
-- is still written for every partner, since products, orders and commission policies refer to
-- it; its business_name is NULL until the partner gives one.
ALTER TABLE partner_profiles MODIFY business_name VARCHAR(200) NULL;
