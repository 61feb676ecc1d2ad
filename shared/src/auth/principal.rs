//! The authenticated caller and the role check every authenticated route makes.

use crate::{domain::auth::Role, error::ApiError};

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub role: Role,
    pub jti: String,
    /// Unix seconds: the token's `exp`.
    pub expires_at: i64,
}

impl Principal {
    /// Unix seconds until which the token is accepted: `exp` plus the clock leeway. Logout
    /// blacklists the token until then.
    pub fn accepted_until(&self) -> i64 {
        self.expires_at.saturating_add(super::LEEWAY_SECS)
    }

    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_enforced() {
        let principal = Principal {
            user_id: 1,
            role: Role::Buyer,
            jti: "j".into(),
            expires_at: 0,
        };
        assert!(principal.require(&[Role::Buyer, Role::Admin]).is_ok());
        assert!(matches!(
            principal.require(&[Role::Partner]),
            Err(ApiError::Forbidden)
        ));
    }
}
