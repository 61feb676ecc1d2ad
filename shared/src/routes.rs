//! The one table of HTTP routes.
//!
//! API Gateway hands each function a `routeKey` such as `"GET /products/{id}"`; the functions
//! dispatch on it, the local runner serves exactly these routes, and tests check that
//! `template.yaml` and the OpenAPI document declare the same set.

/// The Lambda function (binary name) that serves a route.
pub const AUTH: &str = "auth";
pub const PRODUCTS: &str = "products";
pub const ADMIN: &str = "admin";
pub const ORDERS: &str = "orders";
pub const PAYMENT_WEBHOOK: &str = "payment-webhook";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// API Gateway path syntax: `/orders/{id}/cancel`.
    pub path: &'static str,
    pub function: &'static str,
}

impl Route {
    const fn new(method: &'static str, path: &'static str, function: &'static str) -> Self {
        Self {
            method,
            path,
            function,
        }
    }

    /// `"METHOD /path"`, the form of API Gateway's `routeKey`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

pub const ROUTES: &[Route] = &[
    Route::new("GET", "/health", AUTH),
    Route::new("POST", "/auth/signup", AUTH),
    Route::new("POST", "/auth/login", AUTH),
    Route::new("POST", "/auth/refresh", AUTH),
    Route::new("POST", "/auth/logout", AUTH),
    Route::new("GET", "/auth/me", AUTH),
    Route::new("GET", "/products", PRODUCTS),
    Route::new("POST", "/products", PRODUCTS),
    Route::new("GET", "/products/{id}", PRODUCTS),
    Route::new("PATCH", "/products/{id}", PRODUCTS),
    Route::new("DELETE", "/products/{id}", PRODUCTS),
    Route::new("PUT", "/admin/partners/{id}/commission", ADMIN),
    Route::new("POST", "/admin/settlements/runs", ADMIN),
    Route::new("GET", "/admin/settlements/runs/{run_id}", ADMIN),
    Route::new("GET", "/admin/settlements", ADMIN),
    Route::new("GET", "/partner/settlements", ADMIN),
    Route::new("POST", "/orders", ORDERS),
    Route::new("GET", "/orders", ORDERS),
    Route::new("GET", "/orders/{id}", ORDERS),
    Route::new("POST", "/orders/{id}/cancel", ORDERS),
    Route::new("POST", "/orders/{id}/confirm", ORDERS),
    Route::new("GET", "/partner/orders", ORDERS),
    Route::new("POST", "/partner/orders/{id}/ship", ORDERS),
    Route::new("POST", "/webhooks/portone", PAYMENT_WEBHOOK),
    Route::new("POST", "/payments/{payment_id}/complete", PAYMENT_WEBHOOK),
];

/// The routes one function serves.
pub fn routes_of(function: &str) -> impl Iterator<Item = &'static Route> + '_ {
    ROUTES
        .iter()
        .filter(move |route| route.function == function)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn route_keys_are_unique() {
        let keys: HashSet<String> = ROUTES.iter().map(Route::key).collect();
        assert_eq!(keys.len(), ROUTES.len());
    }
}
