//! Injected faults: server errors for a number of calls, and answers slower than the caller waits.

use std::time::Duration;

use fake_portone::{FakePayment, Fault, FaultTarget};
use reqwest::StatusCode;
use serde_json::json;

use super::*;

#[tokio::test]
async fn a_server_error_once_then_the_real_answer() {
    let fake = start().await;
    fake.record(FakePayment::paid("pay-1", 1000));
    fake.fault(Fault::ServerError {
        times: Some(1),
        on: FaultTarget::Get,
    });
    // A cancel is not a look-up: the fault waits for the GET.
    let (status, _) = read(cancel(&fake, "pay-1", json!({"reason": "x", "amount": 1})).await).await;
    assert_eq!(status, StatusCode::OK);
    let failed = get_payment(&fake, "pay-1").await;
    assert_error(
        failed,
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_SERVER_ERROR",
    )
    .await;
    assert_eq!(get_payment(&fake, "pay-1").await.status(), StatusCode::OK);
    let statuses: Vec<_> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Some(200), Some(500), Some(200)]);
    assert_eq!(fake.lookups("pay-1"), 2);
}

#[tokio::test]
async fn server_errors_come_before_authentication_and_cycle_through_5xx() {
    let fake = start().await;
    fake.fault(Fault::ServerError {
        times: None,
        on: FaultTarget::Any,
    });
    let url = format!("{}/payments/pay-1", fake.base_url());
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(client().get(&url).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, vec![500, 502, 503, 500]);
    fake.clear_faults();
    let response = client().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_slow_cancel_times_the_caller_out_but_still_happens() {
    let fake = start().await;
    fake.record(FakePayment::paid("pay-1", 1000));
    fake.fault(Fault::Slow {
        delay: Duration::from_millis(600),
        times: Some(1),
        on: FaultTarget::Cancel,
    });
    let impatient = Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let err = impatient
        .post(format!("{}/payments/pay-1/cancel", fake.base_url()))
        .header("authorization", format!("PortOne {SECRET}"))
        .json(&reason("refund"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    // The request arrived at once and is answered once the delay is over.
    assert_eq!(fake.requests()[0].status, None);
    for _ in 0..50 {
        if !fake.cancels().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fake.cancels().len(), 1);
    assert_eq!(fake.requests()[0].status, Some(200));
    // The fault was used up: the retry is answered at once (and finds it cancelled).
    let retry = impatient
        .post(format!("{}/payments/pay-1/cancel", fake.base_url()))
        .header("authorization", format!("PortOne {SECRET}"))
        .json(&reason("refund"))
        .send()
        .await
        .unwrap();
    assert_error(retry, StatusCode::CONFLICT, "PAYMENT_ALREADY_CANCELLED").await;
}

#[tokio::test]
async fn faults_are_set_listed_and_cleared_over_http() {
    let fake = start().await;
    fake.record(FakePayment::paid("pay-1", 1000));
    let faults_url = format!("{}/_fake/faults", fake.base_url());
    let set = json!({ "kind": "server-error", "times": 2, "path": "get" });
    let (status, created) = read(client().post(&faults_url).json(&set).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let slow = json!({ "kind": "timeout", "delayMs": 50, "path": "cancel" });
    let response = client().post(&faults_url).json(&slow).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let (_, listed) = read(client().get(&faults_url).send().await.unwrap()).await;
    let kinds: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].clone())
        .collect();
    assert_eq!(kinds, vec![json!("server-error"), json!("slow")]);
    assert_eq!(listed[0]["times"], 2);
    assert_eq!(listed[1]["delayMs"], 50);

    assert_eq!(get_payment(&fake, "pay-1").await.status().as_u16(), 500);
    assert_eq!(get_payment(&fake, "pay-1").await.status().as_u16(), 502);
    assert_eq!(get_payment(&fake, "pay-1").await.status(), StatusCode::OK);

    let (_, cleared) = read(client().delete(&faults_url).send().await.unwrap()).await;
    assert_eq!(cleared["cleared"], 1);
    let (_, listed) = read(client().get(&faults_url).send().await.unwrap()).await;
    assert_eq!(listed, json!([]));

    for bad in [
        json!({ "kind": "flaky" }),
        json!({ "kind": "slow", "times": 0 }),
    ] {
        let response = client().post(&faults_url).json(&bad).send().await.unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }
}
