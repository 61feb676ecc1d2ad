//! Each webhook id takes effect once: copies, replays, a racing "complete", and a handler that
//! died after claiming the id.

use futures::future::join_all;
use shared::adapters::webhook_ids::{Claim, WebhookIds};

use super::*;

#[tokio::test]
async fn a_replayed_webhook_is_answered_without_asking_portone_again() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    app.pay(&checkout);
    let webhook = app
        .portone
        .webhook("Transaction.Paid", &checkout.fixture.payment_id);
    let first = app.call(App::webhook_request(&webhook)).await;
    assert_eq!(body_json(&first)["status"], "HANDLED");
    let lookups = app.portone.lookups(&checkout.fixture.payment_id);
    assert_eq!(lookups, 1);

    let replay = app.call(App::webhook_request(&webhook)).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(body_json(&replay)["status"], "ALREADY_HANDLED");
    assert_eq!(app.portone.lookups(&checkout.fixture.payment_id), lookups);
}

#[tokio::test]
async fn a_hundred_identical_webhooks_at_once_change_the_state_once() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    app.pay(&checkout);
    let webhook = app
        .portone
        .webhook("Transaction.Paid", &checkout.fixture.payment_id);
    let answers = join_all((0..100).map(|_| app.call(App::webhook_request(&webhook)))).await;
    let handled = answers
        .iter()
        .filter(|answer| answer.status() == 200 && body_json(answer)["status"] == "HANDLED")
        .count();
    assert_eq!(handled, 1);
    for answer in &answers {
        // The others were answered "already handled" (200) or "being handled, retry" (409).
        assert!(
            answer.status() == 200 || problem_code(answer) == "WEBHOOK_IN_PROGRESS",
            "{:?}",
            answer.body()
        );
    }
    assert_eq!(app.portone.lookups(&checkout.fixture.payment_id), 1);
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Paid);
    assert_eq!(app.order_statuses(&checkout).await, ["PAID"]);
    // PortOne's retry of the ones answered 409 finds it done.
    let retry = app.call(App::webhook_request(&webhook)).await;
    assert_eq!(body_json(&retry)["status"], "ALREADY_HANDLED");
}

#[tokio::test]
async fn a_webhook_racing_the_buyers_complete_changes_the_state_once() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    app.pay(&checkout);
    let webhook = app
        .portone
        .webhook("Transaction.Paid", &checkout.fixture.payment_id);
    let (from_portone, from_browser) = tokio::join!(
        app.call(App::webhook_request(&webhook)),
        app.complete(&checkout, &checkout.token)
    );
    assert_eq!(from_portone.status(), 200, "{:?}", from_portone.body());
    assert_eq!(from_browser.status(), 200, "{:?}", from_browser.body());
    assert_eq!(body_json(&from_browser)["status"], "PAID");
    assert_eq!(app.order_statuses(&checkout).await, ["PAID"]);
    let paid_at: Vec<Option<chrono::DateTime<chrono::Utc>>> =
        sqlx::query_scalar("SELECT paid_at FROM payments WHERE id = ?")
            .bind(&checkout.fixture.payment_id)
            .fetch_all(&app.ctx.platform.db)
            .await
            .unwrap();
    assert!(paid_at[0].is_some());
    assert!(app.portone.cancels().is_empty());
    assert_eq!(app.stock_remaining(checkout.product).await, 9);
}

#[tokio::test]
async fn a_webhook_whose_handler_died_after_the_claim_is_handled_on_retry() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    app.pay(&checkout);
    let webhook = app
        .portone
        .webhook("Transaction.Paid", &checkout.fixture.payment_id);
    let ids = WebhookIds::new(
        aws_sdk_dynamodb::Client::new(&shared::testing::aws::sdk_config().await),
        app.ctx.platform.config.aws.idempotency_table.clone(),
        WEBHOOK_CLAIM_LEASE,
    );

    // A handler claims the id and dies before doing anything: while its lease runs, a copy is
    // told to come back later and nothing changes...
    let claim = ids.claim(&webhook.id, chrono::Utc::now()).await.unwrap();
    let Claim::Ours { token } = claim else {
        panic!("{claim:?}")
    };
    let busy = app.call(App::webhook_request(&webhook)).await;
    assert_eq!(busy.status(), 409);
    assert_eq!(problem_code(&busy), "WEBHOOK_IN_PROGRESS");
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Pending);

    // ...and once the lease has run out, PortOne's retry is handled in full. (The claim is
    // replaced by one taken two leases ago, as if the handler died that long before.)
    ids.give_back(&webhook.id, &token).await.unwrap();
    let long_ago = chrono::Utc::now() - chrono::Duration::seconds(120);
    assert!(matches!(
        ids.claim(&webhook.id, long_ago).await.unwrap(),
        Claim::Ours { .. }
    ));
    let retry = app.call(App::webhook_request(&webhook)).await;
    assert_eq!(retry.status(), 200, "{:?}", retry.body());
    assert_eq!(body_json(&retry)["status"], "HANDLED");
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Paid);
    assert_eq!(
        ids.status(&webhook.id).await.unwrap().as_deref(),
        Some("DONE")
    );
}
