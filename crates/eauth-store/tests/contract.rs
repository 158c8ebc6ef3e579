//! The storage contract, run against every backend: SQLite always, PostgreSQL when
//! `EAUTH_TEST_DATABASE_URL` is set. A behaviour that differs between backends fails here.

use eauth_core::{
    Algorithm, ApiKey, ApplicationName, CallbackUrl, ClientId, Email, IpAllowList, RedirectUri,
    SessionStatus, TotpParams,
};
use eauth_store::{
    Application, NewEnrollment, Session, Store, StoreError, StoredSessionKey,
    testing::{Backend, TestDatabase},
};
use uuid::Uuid;

const NOW: i64 = 1_800_000_000;

/// Declares `$name` once per backend; the PostgreSQL variant passes trivially (and says so)
/// when no test database is configured.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::run(eauth_store::testing::Backend::Sqlite, super::$name).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::run(eauth_store::testing::Backend::Postgres, super::$name).await })*
        }
    };
}

contract!(
    the_first_session_key_stored_wins,
    applications_round_trip_with_all_their_settings,
    a_duplicate_client_id_is_a_conflict,
    activation_and_key_rotation_change_only_their_application,
    enabling_again_replaces_the_enrollment,
    disabling_removes_the_enrollment_and_is_idempotent,
    sessions_are_recorded_only_for_enrolled_users,
);

async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(db) = TestDatabase::create(backend).await else {
        eprintln!("EAUTH_TEST_DATABASE_URL is not set: skipping the PostgreSQL variant");
        return;
    };
    let store = Store::connect(db.url()).await.expect("connect");
    test(store.clone()).await;
    store.close().await;
}

fn application(name: &str) -> Application {
    Application {
        client_id: ClientId::generate(),
        name: ApplicationName::parse(name).expect("name"),
        owner: Some(Email::parse("owner@example.com").expect("email")),
        ip_allow_list: IpAllowList::parse(["203.0.113.0/24", "2001:db8::1"]).expect("ips"),
        redirect_uris: vec![
            RedirectUri::parse("https://portal.example.com/callback").expect("uri"),
            RedirectUri::parse("http://localhost:3000/cb").expect("uri"),
        ],
        callback_url: CallbackUrl::parse("https://portal.example.com/eauth").expect("url"),
        api_key_hash: ApiKey::generate().hash(),
        sealed_callback_secret: vec![1, 2, 3],
        active: true,
        created_at: NOW,
    }
}

fn enrollment(client_id: ClientId, email: &Email, secret: u8, digits: i64) -> NewEnrollment {
    NewEnrollment {
        client_id,
        email: email.clone(),
        sealed_secret: vec![secret; 28],
        params: TotpParams::new(Algorithm::Sha256, digits, 30).expect("params"),
    }
}

fn session(client_id: ClientId, email: &Email) -> Session {
    Session {
        id: Uuid::new_v4(),
        client_id,
        email: email.clone(),
        status: SessionStatus::Pending,
        created_at: NOW,
        expires_at: NOW + 120,
        finished_at: None,
    }
}

async fn the_first_session_key_stored_wins(store: Store) {
    let first = StoredSessionKey {
        kid: "first".into(),
        sealed_secret: vec![1; 60],
    };
    let second = StoredSessionKey {
        kid: "second".into(),
        sealed_secret: vec![2; 60],
    };
    assert_eq!(
        store
            .ensure_session_key(first.clone(), NOW)
            .await
            .expect("store"),
        first
    );
    assert_eq!(
        store
            .ensure_session_key(second, NOW + 1)
            .await
            .expect("store"),
        first
    );
}

async fn applications_round_trip_with_all_their_settings(store: Store) {
    let app = application("Portal");
    store.insert_application(&app).await.expect("insert");
    let read = store
        .application(app.client_id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(read.name, app.name);
    assert_eq!(read.owner, app.owner);
    assert_eq!(read.ip_allow_list, app.ip_allow_list);
    assert_eq!(read.redirect_uris, app.redirect_uris);
    assert_eq!(read.callback_url, app.callback_url);
    assert_eq!(read.api_key_hash, app.api_key_hash);
    assert_eq!(read.sealed_callback_secret, app.sealed_callback_secret);
    assert!(read.active);
    assert_eq!(read.created_at, NOW);
    assert!(
        store
            .application(ClientId::generate())
            .await
            .expect("read")
            .is_none()
    );

    let other = application("Other");
    store.insert_application(&other).await.expect("insert");
    let all: Vec<_> = store
        .applications()
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.client_id)
        .collect();
    assert_eq!(all.len(), 2);
    assert!(all.contains(&app.client_id) && all.contains(&other.client_id));
}

async fn a_duplicate_client_id_is_a_conflict(store: Store) {
    let app = application("Portal");
    store.insert_application(&app).await.expect("insert");
    let twin = Application {
        name: ApplicationName::parse("Twin").expect("name"),
        ..application("x")
    };
    let twin = Application {
        client_id: app.client_id,
        ..twin
    };
    assert!(matches!(
        store.insert_application(&twin).await,
        Err(StoreError::Conflict)
    ));
    let read = store
        .application(app.client_id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(read.name.as_str(), "Portal");
}

async fn activation_and_key_rotation_change_only_their_application(store: Store) {
    let (app, other) = (application("A"), application("B"));
    store.insert_application(&app).await.expect("insert");
    store.insert_application(&other).await.expect("insert");

    assert!(
        store
            .set_application_active(app.client_id, false, NOW + 5)
            .await
            .expect("update")
    );
    let new_key = ApiKey::generate();
    assert!(
        store
            .replace_api_key(app.client_id, &new_key.hash(), NOW + 6)
            .await
            .expect("rotate")
    );

    let read = store
        .application(app.client_id)
        .await
        .expect("read")
        .expect("found");
    assert!(!read.active);
    assert!(read.api_key_hash.matches(new_key.expose()));
    let untouched = store
        .application(other.client_id)
        .await
        .expect("read")
        .expect("found");
    assert!(untouched.active);
    assert_eq!(untouched.api_key_hash, other.api_key_hash);

    let unknown = ClientId::generate();
    assert!(
        !store
            .set_application_active(unknown, true, NOW)
            .await
            .expect("update")
    );
    assert!(
        !store
            .replace_api_key(unknown, &new_key.hash(), NOW)
            .await
            .expect("rotate")
    );
}

async fn enabling_again_replaces_the_enrollment(store: Store) {
    let app = application("Portal");
    store.insert_application(&app).await.expect("insert");
    let email = Email::parse("jane@example.com").expect("email");
    store
        .upsert_enrollment(&enrollment(app.client_id, &email, 1, 6), NOW)
        .await
        .expect("enable");
    store
        .upsert_enrollment(&enrollment(app.client_id, &email, 2, 8), NOW + 60)
        .await
        .expect("enable");
    let read = store
        .enrollment(app.client_id, &email)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(read.sealed_secret, vec![2; 28]);
    assert_eq!(read.params.digits(), 8);
    assert_eq!(read.params.algorithm(), Algorithm::Sha256);
    assert_eq!(read.enabled_at, NOW + 60);
    assert_eq!(
        (
            read.last_used_step,
            read.consecutive_failures,
            read.locked_at
        ),
        (None, 0, None)
    );
}

async fn disabling_removes_the_enrollment_and_is_idempotent(store: Store) {
    let app = application("Portal");
    store.insert_application(&app).await.expect("insert");
    let email = Email::parse("jane@example.com").expect("email");
    store
        .upsert_enrollment(&enrollment(app.client_id, &email, 1, 6), NOW)
        .await
        .expect("enable");
    assert!(
        store
            .delete_enrollment(app.client_id, &email)
            .await
            .expect("disable")
    );
    assert!(
        store
            .enrollment(app.client_id, &email)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        !store
            .delete_enrollment(app.client_id, &email)
            .await
            .expect("disable again")
    );
}

async fn sessions_are_recorded_only_for_enrolled_users(store: Store) {
    let app = application("Portal");
    store.insert_application(&app).await.expect("insert");
    let (jane, john) = (
        Email::parse("jane@example.com").expect("email"),
        Email::parse("john@example.com").expect("email"),
    );
    store
        .upsert_enrollment(&enrollment(app.client_id, &jane, 1, 6), NOW)
        .await
        .expect("enable");

    let pending = session(app.client_id, &jane);
    assert!(
        store
            .insert_session_if_enrolled(&pending)
            .await
            .expect("insert")
    );
    assert_eq!(
        store.session(pending.id).await.expect("read"),
        Some(pending.clone())
    );

    assert_eq!(store.session_count(app.client_id).await.expect("count"), 1);

    let refused = session(app.client_id, &john);
    assert!(
        !store
            .insert_session_if_enrolled(&refused)
            .await
            .expect("insert")
    );
    assert_eq!(store.session(refused.id).await.expect("read"), None);

    // The same user at another application is another user.
    let other = application("Other");
    store.insert_application(&other).await.expect("insert");
    assert!(
        !store
            .insert_session_if_enrolled(&session(other.client_id, &jane))
            .await
            .expect("insert")
    );
}
