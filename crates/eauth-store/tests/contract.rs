//! The storage contract, run against every backend: SQLite always, PostgreSQL when
//! `EAUTH_TEST_DATABASE_URL` is set. A behaviour that differs between backends fails here.

use eauth_core::{
    Algorithm, ApiKey, ApplicationName, CallbackUrl, ClientId, CodeRejected, DeviceId, DeviceKey,
    DeviceName, Email, IpAllowList, MatchNumber, RedirectUri, SessionStatus, TotpParams,
    console::AuditAction,
    device_registration::{self, FailureWindow, ThrottleKeys},
    push::{PushVerdict, RejectReason},
    signin::Verdict,
};
use eauth_store::{
    Application, Attempt, CallbackStatus, DeliveryResult, Device, Enrollment, NewAuditEntry,
    NewEnrollment, PageRequest, PushAttempt, Revision, Session, SessionCutoffs, SessionFilter,
    Store, StoreError, StoredSessionKey,
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
    concurrent_sessions_are_each_recorded_or_refused_on_their_own,
    concurrent_enrollment_changes_take_effect_as_one_after_the_other,
    concurrent_page_openings_and_delivery_results_are_each_recorded,
    concurrent_reads_each_get_what_is_stored_under_their_own_key,
    a_session_finishes_once_and_writes_its_callback,
    an_approved_attempt_marks_its_step_used_and_resets_failures,
    wrong_attempts_count_and_the_last_one_rejects_the_session,
    a_throttled_attempt_writes_nothing,
    attempts_on_finished_expired_or_unenrolled_sessions_are_not_judged,
    concurrent_attempts_are_judged_one_after_the_other,
    an_attempt_that_cannot_be_judged_changes_nothing_and_fails_alone,
    an_approvals_callback_is_written_claimed_by_its_approver,
    a_due_callback_is_claimed_by_one_worker_until_its_lease_ends,
    delivery_results_are_recorded,
    a_result_of_a_lost_claim_changes_nothing,
    expired_pending_sessions_are_found_oldest_first,
    a_device_is_stored_only_with_an_approved_code_and_its_step_is_used,
    a_refused_registration_counts_under_both_keys_and_never_touches_the_enrollment,
    concurrent_registrations_of_one_user_each_see_the_failures_before_them,
    a_device_is_listed_and_removed_only_through_its_own_application,
    enabling_again_or_disabling_removes_the_users_devices_only,
    a_nonce_is_accepted_once_per_signer_until_it_is_pruned,
    a_sign_in_keeps_the_number_it_first_offered_and_is_listed_only_then,
    push_decisions_reach_only_the_devices_own_offered_sign_ins,
    wrong_numbers_count_and_the_last_one_rejects_with_a_callback,
    an_approval_finishes_the_sign_in_with_its_callback_and_forgives_failures,
    a_decision_after_expiry_times_the_sign_in_out_unjudged,
    accounts_are_unique_by_email,
    console_sessions_live_until_idle_or_too_old_and_end_when_deleted,
    signin_failures_are_counted_per_key_within_the_window,
    an_owner_sees_only_its_own_applications,
    settings_and_callback_secret_changes_touch_only_their_application,
    deleting_an_application_deletes_what_belongs_to_it,
    enrolled_users_are_searched_paged_and_unlocked,
    sign_ins_are_filtered_by_outcome_and_email_newest_first,
    callbacks_are_listed_with_their_user_and_requeued,
    outcomes_are_counted_per_bucket,
    the_audit_log_keeps_each_accounts_actions_in_order,
    many_users_are_enrolled_at_once_as_one_by_one,
);

/// As `contract!`, for tests of two stores on one database: two processes, or `eauthd admin`
/// beside the service.
macro_rules! contract_two_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite_two_stores {
            $(#[tokio::test] async fn $name() { super::run_two(eauth_store::testing::Backend::Sqlite, super::$name).await })*
        }
        mod postgres_two_stores {
            $(#[tokio::test] async fn $name() { super::run_two(eauth_store::testing::Backend::Postgres, super::$name).await })*
        }
    };
}

contract_two_stores!(
    an_application_changed_by_another_store_is_read_as_changed_at_once,
    a_session_for_an_overtaken_copy_of_its_application_is_refused_and_not_written,
    a_session_read_for_an_overtaken_copy_of_its_application_is_refused,
    an_enrollment_change_for_an_overtaken_copy_of_its_application_is_refused_and_not_written,
);

async fn run_two<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Store, Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(db) = TestDatabase::create(backend).await else {
        eprintln!("EAUTH_TEST_DATABASE_URL is not set: skipping the PostgreSQL variant");
        return;
    };
    let (service, admin) = (
        Store::connect(db.url()).await.expect("connect"),
        Store::connect(db.url()).await.expect("connect"),
    );
    test(service.clone(), admin.clone()).await;
    service.close().await;
    admin.close().await;
}

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
        revision: Revision::default(),
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
    Session::pending(Uuid::new_v4(), client_id, email.clone(), NOW, NOW + 120)
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

/// Every kind of change to an application, made through `admin`, is what `service` reads next,
/// although `service` read the application before (and may keep what it read).
async fn an_application_changed_by_another_store_is_read_as_changed_at_once(
    service: Store,
    admin: Store,
) {
    let app = application("Portal");
    admin.insert_application(&app).await.expect("insert");
    let read = || async { service.application(app.client_id).await.expect("read") };
    let first = read().await.expect("found");
    assert!(first.active);
    // Each change makes a new revision, which a write made for an older copy is refused by.
    let mut revisions = vec![first.revision];

    admin
        .set_application_active(app.client_id, false, NOW + 1)
        .await
        .expect("deactivate");
    let deactivated = read().await.expect("found");
    assert!(!deactivated.active, "deactivation");
    revisions.push(deactivated.revision);

    let new_key = ApiKey::generate();
    admin
        .replace_api_key(app.client_id, &new_key.hash(), NOW + 2)
        .await
        .expect("rotate");
    let rotated = read().await.expect("found");
    assert!(
        rotated.api_key_hash.matches(new_key.expose()),
        "key rotation"
    );
    revisions.push(rotated.revision);

    admin
        .replace_callback_secret(app.client_id, &[9, 9, 9], NOW + 3)
        .await
        .expect("rotate the secret");
    let resealed = read().await.expect("found");
    assert_eq!(
        resealed.sealed_callback_secret,
        vec![9, 9, 9],
        "callback secret rotation"
    );
    revisions.push(resealed.revision);

    let settings = Application {
        name: ApplicationName::parse("Renamed").expect("name"),
        ip_allow_list: IpAllowList::parse(["198.51.100.7"]).expect("ips"),
        redirect_uris: vec![RedirectUri::parse("https://new.example.com/cb").expect("uri")],
        callback_url: CallbackUrl::parse("https://new.example.com/eauth").expect("url"),
        ..rotated
    };
    admin
        .update_application_settings(&settings, NOW + 4)
        .await
        .expect("update");
    let updated = read().await.expect("found");
    assert_eq!(updated.name, settings.name, "settings");
    assert_eq!(updated.redirect_uris, settings.redirect_uris, "settings");
    assert!(
        !updated
            .ip_allow_list
            .allows("203.0.113.5".parse().expect("address")),
        "settings"
    );
    revisions.push(updated.revision);
    assert!(
        revisions.windows(2).all(|pair| pair[0] < pair[1]),
        "every change makes a later revision: {revisions:?}"
    );

    admin
        .delete_application(app.client_id)
        .await
        .expect("delete");
    assert!(read().await.is_none(), "deletion");
}

/// The application with this id as the database holds it (a read, which on PostgreSQL also
/// becomes the store's copy); it must exist.
async fn current_application(store: &Store, client_id: ClientId) -> Application {
    store
        .application(client_id)
        .await
        .expect("read")
        .expect("found")
}

/// An application registered through `admin` with Jane enrolled.
async fn portal_with_jane(admin: &Store, name: &str) -> (Application, Email) {
    let app = application(name);
    admin.insert_application(&app).await.expect("insert");
    let jane = email("jane@example.com");
    admin
        .upsert_enrollment(&enrollment(app.client_id, &jane, 1, 6), NOW, app.revision)
        .await
        .expect("enroll");
    (app, jane)
}

fn assert_changed<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::ApplicationChanged)),
        "{result:?}"
    );
}

/// Runs `call` eight times at once, every other one with `stale` instead of `current`, as
/// PostgreSQL batches concurrent calls: each call's index, whether its revision was current,
/// and its result.
async fn alternately<T, F>(
    current: Revision,
    stale: Revision,
    call: impl Fn(usize, Revision) -> F,
) -> Vec<(usize, bool, T)>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let is_current = i % 2 == 0;
            let revision = if is_current { current } else { stale };
            (i, is_current, tokio::spawn(call(i, revision)))
        })
        .collect();
    let mut results = Vec::with_capacity(calls.len());
    for (i, is_current, call) in calls {
        results.push((i, is_current, call.await.expect("task")));
    }
    results
}

/// `service` keeps a copy of the application (on PostgreSQL; on SQLite it sees every change at
/// once) while `admin` changes it: a session for the copy's revision is refused and not written,
/// alone or batched with sessions for the current one, until the application is read again.
async fn a_session_for_an_overtaken_copy_of_its_application_is_refused_and_not_written(
    service: Store,
    admin: Store,
) {
    let (app, jane) = portal_with_jane(&admin, "Portal").await;
    let copy = current_application(&service, app.client_id).await;

    admin
        .replace_api_key(app.client_id, &ApiKey::generate().hash(), NOW + 1)
        .await
        .expect("rotate");
    let stale = session(app.client_id, &jane);
    assert_changed(
        service
            .insert_session_if_enrolled(&stale, copy.revision)
            .await,
    );
    assert!(
        service.session(stale.id).await.expect("read").is_none(),
        "not written"
    );

    let current = current_application(&service, app.client_id).await;
    assert!(current.revision > copy.revision);
    if let Some(kept) = service.application_copy(app.client_id) {
        assert_eq!(
            kept.revision, current.revision,
            "the copy is replaced by what was read"
        );
    }
    let sessions: Vec<Session> = (0..8).map(|_| session(app.client_id, &jane)).collect();
    let results = alternately(current.revision, copy.revision, |i, revision| {
        let (store, next) = (service.clone(), sessions[i].clone());
        async move { store.insert_session_if_enrolled(&next, revision).await }
    })
    .await;
    for (i, current, result) in results {
        let written = service
            .session(sessions[i].id)
            .await
            .expect("read")
            .is_some();
        if current {
            assert!(matches!(result, Ok(true)), "{result:?}");
            assert!(written);
        } else {
            assert_changed(result);
            assert!(!written);
        }
    }

    admin
        .delete_application(app.client_id)
        .await
        .expect("delete");
    assert_changed(
        service
            .insert_session_if_enrolled(&session(app.client_id, &jane), current.revision)
            .await,
    );
}

/// A session read for a copy of its application that `admin` changed since is refused, found
/// or not, until the application is read again.
async fn a_session_read_for_an_overtaken_copy_of_its_application_is_refused(
    service: Store,
    admin: Store,
) {
    let (app, jane) = portal_with_jane(&admin, "Portal").await;
    let other = application("Other");
    admin.insert_application(&other).await.expect("insert");
    let copy = current_application(&service, app.client_id).await;
    let pending = session(app.client_id, &jane);
    assert!(
        service
            .insert_session_if_enrolled(&pending, copy.revision)
            .await
            .expect("insert")
    );
    let found = |id, application: &Application| {
        let (service, application) = (service.clone(), application.clone());
        async move { service.session_of(id, &application).await }
    };
    assert_eq!(
        found(pending.id, &copy).await.expect("read").map(|s| s.id),
        Some(pending.id)
    );
    assert!(found(Uuid::now_v7(), &copy).await.expect("read").is_none());
    let other_copy = current_application(&service, other.client_id).await;
    assert!(
        found(pending.id, &other_copy)
            .await
            .expect("read")
            .is_none(),
        "another application's session"
    );

    admin
        .set_application_active(app.client_id, false, NOW + 1)
        .await
        .expect("deactivate");
    for id in [pending.id, Uuid::now_v7()] {
        assert_changed(found(id, &copy).await);
    }
    let current = current_application(&service, app.client_id).await;
    assert_eq!(
        found(pending.id, &current)
            .await
            .expect("read")
            .map(|s| s.id),
        Some(pending.id)
    );

    admin
        .delete_application(app.client_id)
        .await
        .expect("delete");
    for id in [pending.id, Uuid::now_v7()] {
        assert_changed(found(id, &current).await);
    }
}

/// ENABLE and DISABLE for a copy of the application that `admin` changed since write nothing,
/// alone or batched with calls for the current one: not the enrollment, not its devices.
async fn an_enrollment_change_for_an_overtaken_copy_of_its_application_is_refused_and_not_written(
    service: Store,
    admin: Store,
) {
    let (pending, device) = session_with_device(&service).await;
    let (client_id, jane) = (pending.client_id, pending.email.clone());
    let copy = current_application(&service, client_id).await;
    admin
        .replace_api_key(client_id, &ApiKey::generate().hash(), NOW + 1)
        .await
        .expect("rotate");

    let john = email("john@example.com");
    for user in [&jane, &john] {
        assert_changed(
            service
                .upsert_enrollment(&enrollment(client_id, user, 9, 8), NOW + 2, copy.revision)
                .await,
        );
        assert_changed(
            service
                .delete_enrollment(client_id, user, copy.revision)
                .await,
        );
    }
    let kept = enrollment_of(&service, &pending).await;
    assert_eq!(kept.params.digits(), 6, "the enrollment is the one before");
    assert!(
        service
            .enrollment(client_id, &john)
            .await
            .expect("read")
            .is_none()
    );
    assert_eq!(
        service.devices_of(client_id, &jane).await.expect("devices"),
        vec![device]
    );

    let current = current_application(&service, client_id).await;
    let users: Vec<Email> = (0..8)
        .map(|i| email(&format!("user{i}@example.com")))
        .collect();
    let results = alternately(current.revision, copy.revision, |i, revision| {
        let (store, user) = (service.clone(), users[i].clone());
        async move {
            store
                .upsert_enrollment(&enrollment(client_id, &user, 1, 6), NOW + 3, revision)
                .await
        }
    })
    .await;
    for (i, current, result) in results {
        let enrolled = service
            .enrollment(client_id, &users[i])
            .await
            .expect("read")
            .is_some();
        if current {
            assert!(result.is_ok(), "{result:?}");
            assert!(enrolled);
        } else {
            assert_changed(result);
            assert!(!enrolled);
        }
    }
    assert!(
        service
            .delete_enrollment(client_id, &jane, current.revision)
            .await
            .expect("disable")
    );
    assert!(
        !service
            .delete_enrollment(client_id, &jane, current.revision)
            .await
            .expect("disable again"),
        "not enrolled: nothing to do, and no change of the application"
    );

    admin.delete_application(client_id).await.expect("delete");
    assert_changed(
        service
            .upsert_enrollment(
                &enrollment(client_id, &jane, 1, 6),
                NOW + 4,
                current.revision,
            )
            .await,
    );
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
        .upsert_enrollment(
            &enrollment(app.client_id, &email, 1, 6),
            NOW,
            Revision::default(),
        )
        .await
        .expect("enable");
    store
        .upsert_enrollment(
            &enrollment(app.client_id, &email, 2, 8),
            NOW + 60,
            Revision::default(),
        )
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
        .upsert_enrollment(
            &enrollment(app.client_id, &email, 1, 6),
            NOW,
            Revision::default(),
        )
        .await
        .expect("enable");
    assert!(
        store
            .delete_enrollment(app.client_id, &email, Revision::default())
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
            .delete_enrollment(app.client_id, &email, Revision::default())
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
        .upsert_enrollment(
            &enrollment(app.client_id, &jane, 1, 6),
            NOW,
            Revision::default(),
        )
        .await
        .expect("enable");

    let pending = session(app.client_id, &jane);
    assert!(
        store
            .insert_session_if_enrolled(&pending, Revision::default())
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
            .insert_session_if_enrolled(&refused, Revision::default())
            .await
            .expect("insert")
    );
    assert_eq!(store.session(refused.id).await.expect("read"), None);

    // The same user at another application is another user.
    let other = application("Other");
    store.insert_application(&other).await.expect("insert");
    assert!(
        !store
            .insert_session_if_enrolled(&session(other.client_id, &jane), Revision::default())
            .await
            .expect("insert")
    );
}

/// Sessions that arrive together share statements and commits: each must still be judged by
/// its own user's enrollment, and be readable once its call returns.
async fn concurrent_sessions_are_each_recorded_or_refused_on_their_own(store: Store) {
    let app = application("Portal");
    store.insert_application(&app).await.expect("insert");
    let users: Vec<Email> = (0..1_200)
        .map(|i| Email::parse(&format!("user{i}@example.com")).expect("email"))
        .collect();
    // Every third user is enrolled, and of those every other one is then locked.
    for (i, email) in users.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        store
            .upsert_enrollment(
                &enrollment(app.client_id, email, 1, 6),
                NOW,
                Revision::default(),
            )
            .await
            .expect("enable");
        if i % 6 == 0 {
            let locking = session(app.client_id, email);
            assert!(
                store
                    .insert_session_if_enrolled(&locking, Revision::default())
                    .await
                    .expect("insert")
            );
            judged(
                store
                    .attempt(locking.id, NOW, "tok", 0, move |_, _| {
                        Ok(Verdict::Exhausted { locked: true })
                    })
                    .await
                    .expect("attempt"),
            );
        }
    }
    let sessions: Vec<Session> = users
        .iter()
        .map(|email| session(app.client_id, email))
        .collect();
    let inserts = sessions.iter().map(|s| {
        let (store, s) = (store.clone(), s.clone());
        tokio::spawn(async move {
            store
                .insert_session_if_enrolled(&s, Revision::default())
                .await
        })
    });
    let results: Vec<bool> = each_result(inserts).await;
    for (i, (inserted, s)) in results.iter().zip(&sessions).enumerate() {
        let usable = i % 3 == 0 && i % 6 != 0;
        assert_eq!(*inserted, usable, "user{i}");
        let read = store.session(s.id).await.expect("read");
        assert_eq!(read.as_ref(), usable.then_some(s), "user{i}");
    }
}

async fn concurrent_enrollment_changes_take_effect_as_one_after_the_other(store: Store) {
    let app = application("Portal");
    store.insert_application(&app).await.expect("insert");
    let users: Vec<Email> = (0..40)
        .map(|i| Email::parse(&format!("user{i}@example.com")).expect("email"))
        .collect();
    let enables = users.iter().map(|email| {
        let (store, new) = (store.clone(), enrollment(app.client_id, email, 3, 6));
        tokio::spawn(async move {
            store
                .upsert_enrollment(&new, NOW, Revision::default())
                .await
        })
    });
    for enable in enables.collect::<Vec<_>>() {
        enable.await.expect("join").expect("enable");
    }
    for email in &users {
        assert!(
            store
                .enrollment(app.client_id, email)
                .await
                .expect("read")
                .is_some(),
            "{email}"
        );
    }
    // The same user disabled three times at once: one of them removed the enrollment.
    let disables = (0..3).map(|_| {
        let (store, email) = (store.clone(), users[0].clone());
        tokio::spawn(async move {
            store
                .delete_enrollment(app.client_id, &email, Revision::default())
                .await
        })
    });
    let mut removed = 0;
    for disable in disables.collect::<Vec<_>>() {
        removed += usize::from(disable.await.expect("join").expect("disable"));
    }
    assert_eq!(removed, 1);
    assert!(
        store
            .enrollment(app.client_id, &users[0])
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        store
            .enrollment(app.client_id, &users[1])
            .await
            .expect("read")
            .is_some()
    );
}

async fn concurrent_page_openings_and_delivery_results_are_each_recorded(store: Store) {
    let first = pending_session(&store).await;
    let mut sessions = vec![first.clone()];
    for i in 0..15 {
        let email = Email::parse(&format!("user{i}@example.com")).expect("email");
        store
            .upsert_enrollment(
                &enrollment(first.client_id, &email, 1, 6),
                NOW,
                Revision::default(),
            )
            .await
            .expect("enable");
        let next = session(first.client_id, &email);
        assert!(
            store
                .insert_session_if_enrolled(&next, Revision::default())
                .await
                .expect("insert")
        );
        sessions.push(next);
    }
    // Every page opened twice at once: one of the two openings is noted, whole, and later
    // openings change nothing.
    let opening = |i: usize| {
        [
            ("redirect", format!("198.51.100.{i}")),
            ("popup", "192.0.2.1".to_owned()),
        ]
    };
    let opens = sessions.iter().enumerate().flat_map(|(i, s)| {
        opening(i).map(|(method, ip)| {
            let (store, id) = (store.clone(), s.id);
            tokio::spawn(async move { store.record_page_open(id, method, &ip).await })
        })
    });
    for open in opens.collect::<Vec<_>>() {
        open.await.expect("join").expect("open");
    }
    for (i, s) in sessions.iter().enumerate() {
        let noted = |read: Session| (read.signin_method, read.source_ip);
        let first = noted(store.session(s.id).await.expect("read").expect("session"));
        assert!(
            opening(i)
                .into_iter()
                .any(|(method, ip)| first == (Some(method.to_owned()), Some(ip))),
            "session {i}: {first:?}"
        );
        store
            .record_page_open(s.id, "popup", "203.0.113.99")
            .await
            .expect("open again");
        let again = noted(store.session(s.id).await.expect("read").expect("session"));
        assert_eq!(again, first, "session {i}");
    }
    // Their callbacks' results, recorded at once.
    for s in &sessions {
        store
            .finish_session(s, SessionStatus::Approved, NOW, "tok")
            .await
            .expect("finish");
    }
    let mut claimed = Vec::new();
    while let Some(callback) = store
        .claim_due_callback(NOW, NOW + 15)
        .await
        .expect("claim")
    {
        claimed.push(callback);
    }
    assert_eq!(claimed.len(), sessions.len());
    let records = claimed.iter().enumerate().map(|(i, callback)| {
        let (store, callback) = (store.clone(), callback.clone());
        let result = if i % 2 == 0 {
            DeliveryResult::Delivered
        } else {
            DeliveryResult::Retry {
                next_attempt_at: NOW + 60,
                error: format!("HTTP 50{}", i % 10),
            }
        };
        tokio::spawn(async move { store.record_delivery(&callback, &result, NOW + 1).await })
    });
    for record in records.collect::<Vec<_>>() {
        record.await.expect("join").expect("record");
    }
    for (i, callback) in claimed.iter().enumerate() {
        let read = written_callback(&store, callback.session_id).await;
        if i % 2 == 0 {
            assert_eq!(
                (read.status, read.delivered_at),
                (CallbackStatus::Delivered, Some(NOW + 1))
            );
        } else {
            assert_eq!(
                (read.status, read.next_attempt_at, read.last_error),
                (
                    CallbackStatus::Pending,
                    NOW + 60,
                    Some(format!("HTTP 50{}", i % 10))
                )
            );
        }
    }
}

async fn each_result(
    handles: impl Iterator<Item = tokio::task::JoinHandle<eauth_store::Result<bool>>>,
) -> Vec<bool> {
    let mut results = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        results.push(handle.await.expect("join").expect("insert"));
    }
    results
}

/// Reads made at once share statements: each one gets what is stored under its own key, or
/// nothing, as if it had been made alone; keys read twice at once get the same.
async fn concurrent_reads_each_get_what_is_stored_under_their_own_key(store: Store) {
    let (pending, device) = session_with_device(&store).await;
    let other = application("Other");
    store.insert_application(&other).await.expect("insert");
    let (unknown_app, unknown_session) = (ClientId::generate(), Uuid::now_v7());
    let stranger = Email::parse("stranger@example.com").expect("email");
    let users = [
        (pending.client_id, pending.email.clone()),
        (other.client_id, pending.email.clone()),
        (pending.client_id, stranger),
    ];
    type Read = std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>;
    let reads = || {
        let mut reads: Vec<Read> = Vec::new();
        for client_id in [pending.client_id, other.client_id, unknown_app] {
            let store = store.clone();
            reads.push(Box::pin(async move {
                let found = store.application(client_id).await.expect("application");
                format!("application {client_id}: {:?}", found.map(|a| a.name))
            }));
        }
        for id in [pending.id, unknown_session] {
            let store = store.clone();
            reads.push(Box::pin(async move {
                let found = store.session(id).await.expect("session");
                format!("session {id}: {:?}", found.map(|s| (s.client_id, s.email)))
            }));
        }
        for (client_id, email) in &users {
            let (store, client_id, email) = (store.clone(), *client_id, email.clone());
            reads.push(Box::pin(async move {
                let found = store
                    .enrollment(client_id, &email)
                    .await
                    .expect("enrollment");
                let found = found.map(|e| (e.client_id, e.email));
                format!("enrollment {client_id} {email}: {found:?}")
            }));
        }
        for (client_id, email) in &users {
            let (store, client_id, email) = (store.clone(), *client_id, email.clone());
            reads.push(Box::pin(async move {
                let found = store.devices_of(client_id, &email).await.expect("devices");
                let found: Vec<DeviceId> = found.iter().map(|d| d.id).collect();
                format!("devices {client_id} {email}: {found:?}")
            }));
        }
        reads
    };
    let name = |raw: &str| Some(ApplicationName::parse(raw).expect("name"));
    let mut alone = vec![
        format!("application {}: {:?}", pending.client_id, name("Portal")),
        format!("application {}: {:?}", other.client_id, name("Other")),
        format!("application {unknown_app}: None"),
        format!(
            "session {}: {:?}",
            pending.id,
            Some((pending.client_id, pending.email.clone()))
        ),
        format!("session {unknown_session}: None"),
    ];
    for (i, (client_id, email)) in users.iter().enumerate() {
        let found = (i == 0).then(|| (*client_id, email.clone()));
        alone.push(format!("enrollment {client_id} {email}: {found:?}"));
    }
    for (i, (client_id, email)) in users.iter().enumerate() {
        let found = if i == 0 { vec![device.id] } else { vec![] };
        alone.push(format!("devices {client_id} {email}: {found:?}"));
    }
    // Every read twice, all at once.
    let handles: Vec<_> = [reads(), reads()]
        .into_iter()
        .flatten()
        .map(tokio::spawn)
        .collect();
    let mut got = Vec::new();
    for handle in handles {
        got.push(handle.await.expect("join"));
    }
    assert_eq!(got, [alone.clone(), alone].concat());
}

/// An application with one enrolled user and a pending session of that user.
async fn pending_session(store: &Store) -> Session {
    let app = application("Portal");
    store.insert_application(&app).await.expect("insert");
    let email = Email::parse("jane@example.com").expect("email");
    store
        .upsert_enrollment(
            &enrollment(app.client_id, &email, 1, 6),
            NOW,
            Revision::default(),
        )
        .await
        .expect("enable");
    let pending = session(app.client_id, &email);
    assert!(
        store
            .insert_session_if_enrolled(&pending, Revision::default())
            .await
            .expect("insert")
    );
    pending
}

fn judged(attempt: Attempt) -> (Verdict, Session) {
    match attempt {
        Attempt::Judged {
            verdict, session, ..
        } => (verdict, session),
        other => panic!("expected a verdict, got {other:?}"),
    }
}

/// The TOTP rule in miniature: step 7's code is right until step 7 is used.
fn step_seven(_: &Session, enrollment: &Enrollment) -> Result<Verdict, eauth_core::VaultError> {
    Ok(if enrollment.last_used_step.is_some_and(|step| step >= 7) {
        Verdict::Wrong {
            reason: CodeRejected::Replayed,
            attempts_left: 4,
            locked: false,
        }
    } else {
        Verdict::Approved { step: 7 }
    })
}

/// Attempts that arrive together are written together (one batch), but each must be judged
/// on what the ones before it did: one approval per session, one use per code.
async fn concurrent_attempts_are_judged_one_after_the_other(store: Store) {
    let first = pending_session(&store).await;
    // A second sign-in of the same user, racing with the first with the same code.
    let second = session(first.client_id, &first.email);
    assert!(
        store
            .insert_session_if_enrolled(&second, Revision::default())
            .await
            .expect("insert")
    );
    let attempts: Vec<_> = [first.id, first.id, second.id, first.id, second.id]
        .into_iter()
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move { store.attempt(id, NOW, "tok", NOW + 15, step_seven).await })
        })
        .collect();
    let mut approved = 0;
    let mut replayed = 0;
    for attempt in attempts {
        match attempt.await.expect("join").expect("attempt") {
            Attempt::Judged {
                verdict: Verdict::Approved { .. },
                ..
            } => approved += 1,
            Attempt::Judged {
                verdict:
                    Verdict::Wrong {
                        reason: CodeRejected::Replayed,
                        ..
                    },
                ..
            } => replayed += 1,
            Attempt::NotPending(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(approved, 1, "one code, one approval");
    assert!(replayed >= 1, "the other session saw the step used");
    let statuses = [
        store
            .session(first.id)
            .await
            .expect("read")
            .expect("first")
            .status,
        store
            .session(second.id)
            .await
            .expect("read")
            .expect("second")
            .status,
    ];
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == SessionStatus::Approved)
            .count(),
        1,
        "{statuses:?}"
    );
    let enrollment = store
        .enrollment(first.client_id, &first.email)
        .await
        .expect("read")
        .expect("enrolled");
    assert_eq!(enrollment.last_used_step, Some(7));
    assert!(enrollment.consecutive_failures >= 1, "the replay counted");
    // The console's list shows the approval as the user's last sign-in.
    let listed = store
        .enrolled_users(first.client_id, None, ALL)
        .await
        .expect("list");
    assert_eq!(listed.items[0].last_signin_at, Some(NOW));
}

async fn an_attempt_that_cannot_be_judged_changes_nothing_and_fails_alone(store: Store) {
    let broken = pending_session(&store).await;
    let fine = session(
        broken.client_id,
        &Email::parse("john@example.com").expect("email"),
    );
    store
        .upsert_enrollment(
            &enrollment(fine.client_id, &fine.email, 2, 6),
            NOW,
            Revision::default(),
        )
        .await
        .expect("enable");
    assert!(
        store
            .insert_session_if_enrolled(&fine, Revision::default())
            .await
            .expect("insert")
    );
    let failing = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .attempt(broken.id, NOW, "tok", NOW + 15, |_, _| {
                    Err(eauth_core::VaultError)
                })
                .await
        })
    };
    let passing = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .attempt(fine.id, NOW, "tok", NOW + 15, step_seven)
                .await
        })
    };
    assert!(matches!(
        failing.await.expect("join"),
        Err(StoreError::Corrupt(_))
    ));
    judged(
        passing
            .await
            .expect("join")
            .expect("the other attempt is judged"),
    );
    let untouched = store
        .session(broken.id)
        .await
        .expect("read")
        .expect("session");
    assert_eq!(
        (untouched.status, untouched.failed_attempts),
        (SessionStatus::Pending, 0)
    );
}

async fn an_approvals_callback_is_written_claimed_by_its_approver(store: Store) {
    let pending = pending_session(&store).await;
    let Attempt::Judged {
        callback: Some(callback),
        ..
    } = store
        .attempt(pending.id, NOW, "tok", NOW + 15, step_seven)
        .await
        .expect("attempt")
    else {
        panic!("an approval returns its callback");
    };
    assert_eq!(
        (callback.session_id, callback.approved, callback.attempts),
        (pending.id, true, 1)
    );
    assert_eq!(
        store.callback_of_session(pending.id).await.expect("read"),
        Some(callback.clone())
    );
    held_until(&store, &callback, NOW + 15).await;
}

/// Nobody else attempts `callback`, written claimed until `lease_until`, while the caller
/// holds it, and the worker does once the claim runs out unrecorded.
async fn held_until(store: &Store, callback: &eauth_store::Callback, lease_until: i64) {
    assert!(
        store
            .claim_due_callback(lease_until - 1, lease_until + 15)
            .await
            .expect("claim")
            .is_none()
    );
    assert!(
        store
            .claim_callback(callback.id, lease_until - 1, lease_until + 15)
            .await
            .expect("claim")
            .is_none()
    );
    let again = store
        .claim_due_callback(lease_until, lease_until + 15)
        .await
        .expect("claim")
        .expect("due after the lease");
    assert_eq!((again.id, again.attempts), (callback.id, 2));
}

async fn a_session_finishes_once_and_writes_its_callback(store: Store) {
    let pending = pending_session(&store).await;
    assert!(
        store
            .finish_session(&pending, SessionStatus::TimedOut, NOW + 120, "tok")
            .await
            .expect("finish")
    );
    assert!(
        !store
            .finish_session(&pending, SessionStatus::Approved, NOW + 121, "tok")
            .await
            .expect("finish")
    );

    let finished = store
        .session(pending.id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(
        (finished.status, finished.finished_at),
        (SessionStatus::TimedOut, Some(NOW + 120))
    );
    let callback = written_callback(&store, pending.id).await;
    assert!(!callback.approved);
    assert_eq!(callback.session_token, "tok");
    assert_eq!(
        (callback.status, callback.attempts, callback.next_attempt_at),
        (CallbackStatus::Pending, 0, NOW + 120)
    );
}

async fn an_approved_attempt_marks_its_step_used_and_resets_failures(store: Store) {
    let pending = pending_session(&store).await;
    let failed = store
        .attempt(pending.id, NOW, "tok", 0, move |_, _| {
            Ok(Verdict::Wrong {
                reason: CodeRejected::Wrong,
                attempts_left: 4,
                locked: false,
            })
        })
        .await
        .expect("attempt");
    assert_eq!(judged(failed).1.failed_attempts, 1);

    let (verdict, approved) = judged(
        store
            .attempt(pending.id, NOW + 1, "tok", 0, move |session, enrollment| {
                assert_eq!(session.failed_attempts, 1);
                assert_eq!(enrollment.consecutive_failures, 1);
                assert_eq!(enrollment.last_used_step, None);
                Ok(Verdict::Approved { step: 42 })
            })
            .await
            .expect("attempt"),
    );
    assert_eq!(verdict, Verdict::Approved { step: 42 });
    assert_eq!(approved.status, SessionStatus::Approved);
    let enrollment = store
        .enrollment(pending.client_id, &pending.email)
        .await
        .expect("read")
        .expect("enrolled");
    assert_eq!(
        (
            enrollment.last_used_step,
            enrollment.consecutive_failures,
            enrollment.last_failure_at
        ),
        (Some(42), 0, None)
    );
    assert!(written_callback(&store, pending.id).await.approved);

    // The next session of the same user sees the used step.
    let next = session(pending.client_id, &pending.email);
    store
        .insert_session_if_enrolled(&next, Revision::default())
        .await
        .expect("insert");
    store
        .attempt(next.id, NOW + 2, "tok", 0, move |_, enrollment| {
            assert_eq!(enrollment.last_used_step, Some(42));
            Ok(Verdict::Throttled { retry_at: NOW + 3 })
        })
        .await
        .expect("attempt");
}

async fn wrong_attempts_count_and_the_last_one_rejects_the_session(store: Store) {
    let pending = pending_session(&store).await;
    let wrong = Verdict::Wrong {
        reason: CodeRejected::Wrong,
        attempts_left: 1,
        locked: false,
    };
    store
        .attempt(pending.id, NOW, "tok", 0, move |_, _| Ok(wrong))
        .await
        .expect("attempt");
    assert!(
        store
            .callback_of_session(pending.id)
            .await
            .expect("read")
            .is_none(),
        "the session goes on"
    );

    let (_, session) = judged(
        store
            .attempt(pending.id, NOW + 1, "tok", 0, move |_, _| {
                Ok(Verdict::Exhausted { locked: true })
            })
            .await
            .expect("attempt"),
    );
    assert_eq!(
        (session.status, session.failed_attempts),
        (SessionStatus::Rejected, 2)
    );
    let enrollment = store
        .enrollment(pending.client_id, &pending.email)
        .await
        .expect("read")
        .expect("enrolled");
    assert_eq!(
        (
            enrollment.consecutive_failures,
            enrollment.last_failure_at,
            enrollment.locked_at
        ),
        (2, Some(NOW + 1), Some(NOW + 1))
    );
    assert!(!written_callback(&store, pending.id).await.approved);

    // Enabling again clears the lock and the failures.
    store
        .upsert_enrollment(&enrollment_for(&pending), NOW + 2, Revision::default())
        .await
        .expect("enable");
    let enrollment = store
        .enrollment(pending.client_id, &pending.email)
        .await
        .expect("read")
        .expect("enrolled");
    assert_eq!(
        (
            enrollment.consecutive_failures,
            enrollment.last_failure_at,
            enrollment.locked_at
        ),
        (0, None, None)
    );
}

fn enrollment_for(session: &Session) -> NewEnrollment {
    enrollment(session.client_id, &session.email, 3, 6)
}

async fn a_throttled_attempt_writes_nothing(store: Store) {
    let pending = pending_session(&store).await;
    let (_, session) = judged(
        store
            .attempt(pending.id, NOW, "tok", 0, move |_, _| {
                Ok(Verdict::Throttled { retry_at: NOW + 5 })
            })
            .await
            .expect("attempt"),
    );
    assert_eq!(session, pending);
    assert_eq!(
        store.session(pending.id).await.expect("read"),
        Some(pending.clone())
    );
    let enrollment = store
        .enrollment(pending.client_id, &pending.email)
        .await
        .expect("read")
        .expect("enrolled");
    assert_eq!(enrollment.consecutive_failures, 0);
}

async fn attempts_on_finished_expired_or_unenrolled_sessions_are_not_judged(store: Store) {
    let never = |_: &Session,
                 _: &eauth_store::Enrollment|
     -> Result<Verdict, eauth_core::VaultError> { panic!("must not be judged") };
    assert_eq!(
        store
            .attempt(Uuid::new_v4(), NOW, "tok", 0, never)
            .await
            .expect("attempt"),
        Attempt::UnknownSession
    );

    let pending = pending_session(&store).await;
    assert!(matches!(
        store
            .attempt(pending.id, NOW + 120, "tok", 0, never)
            .await
            .expect("attempt"),
        Attempt::NotPending(_)
    ));

    store
        .finish_session(&pending, SessionStatus::Rejected, NOW, "tok")
        .await
        .expect("finish");
    assert!(matches!(
        store
            .attempt(pending.id, NOW, "tok", 0, never)
            .await
            .expect("attempt"),
        Attempt::NotPending(_)
    ));

    let other = session(pending.client_id, &pending.email);
    store
        .insert_session_if_enrolled(&other, Revision::default())
        .await
        .expect("insert");
    store
        .delete_enrollment(pending.client_id, &pending.email, Revision::default())
        .await
        .expect("disable");
    assert_eq!(
        store
            .attempt(other.id, NOW, "tok", 0, never)
            .await
            .expect("attempt"),
        Attempt::NotEnrolled
    );
}

async fn a_due_callback_is_claimed_by_one_worker_until_its_lease_ends(store: Store) {
    let approved = approved_session(&store).await;
    assert!(
        store
            .claim_due_callback(NOW - 1, NOW + 29)
            .await
            .expect("claim")
            .is_none(),
        "not due yet"
    );

    let claimed = store
        .claim_due_callback(NOW, NOW + 30)
        .await
        .expect("claim")
        .expect("due");
    assert_eq!((claimed.session_id, claimed.attempts), (approved.id, 1));
    assert!(
        store
            .claim_due_callback(NOW + 1, NOW + 31)
            .await
            .expect("claim")
            .is_none(),
        "leased"
    );
    assert!(
        store
            .claim_callback(claimed.id, NOW + 1, NOW + 31)
            .await
            .expect("claim")
            .is_none(),
        "leased"
    );

    // A worker that died leaves a lease that runs out.
    let again = store
        .claim_callback(claimed.id, NOW + 30, NOW + 60)
        .await
        .expect("claim")
        .expect("lease over");
    assert_eq!(again.attempts, 2);
}

/// A holder whose lease ran out (it waited long for the portal) reports after the worker has
/// claimed the callback again: its result is of an attempt that is no longer the callback's.
async fn a_result_of_a_lost_claim_changes_nothing(store: Store) {
    let approved = approved_session(&store).await;
    let first = store
        .claim_due_callback(NOW, NOW + 15)
        .await
        .expect("claim")
        .expect("due");
    let second = store
        .claim_callback(first.id, NOW + 15, NOW + 30)
        .await
        .expect("claim")
        .expect("lease over");
    assert_eq!((first.attempts, second.attempts), (1, 2));

    let late = DeliveryResult::GaveUp {
        error: "HTTP 500".into(),
    };
    store
        .record_delivery(&first, &late, NOW + 16)
        .await
        .expect("record");
    let held = written_callback(&store, approved.id).await;
    assert_eq!(
        (held.status, held.attempts, held.last_error),
        (CallbackStatus::Pending, 2, None),
        "still the second holder's"
    );
    assert!(
        store
            .claim_callback(first.id, NOW + 17, NOW + 32)
            .await
            .expect("claim")
            .is_none(),
        "its lease stands"
    );

    store
        .record_delivery(&second, &DeliveryResult::Delivered, NOW + 17)
        .await
        .expect("record");
    let retry = DeliveryResult::Retry {
        next_attempt_at: NOW + 60,
        error: "HTTP 503".into(),
    };
    store
        .record_delivery(&first, &retry, NOW + 18)
        .await
        .expect("record");
    store
        .record_delivery(&second, &retry, NOW + 18)
        .await
        .expect("record");
    let delivered = written_callback(&store, approved.id).await;
    assert_eq!(
        (
            delivered.status,
            delivered.delivered_at,
            delivered.last_error
        ),
        (CallbackStatus::Delivered, Some(NOW + 17), None),
        "a delivery stays delivered"
    );
}

async fn delivery_results_are_recorded(store: Store) {
    let approved = approved_session(&store).await;
    let claimed = store
        .claim_due_callback(NOW, NOW + 30)
        .await
        .expect("claim")
        .expect("due");

    let retry = DeliveryResult::Retry {
        next_attempt_at: NOW + 10,
        error: "HTTP 503".into(),
    };
    store
        .record_delivery(&claimed, &retry, NOW + 1)
        .await
        .expect("record");
    let callback = written_callback(&store, approved.id).await;
    assert_eq!(
        (
            callback.status,
            callback.next_attempt_at,
            callback.last_error.as_deref()
        ),
        (CallbackStatus::Pending, NOW + 10, Some("HTTP 503"))
    );
    assert!(
        store
            .claim_due_callback(NOW + 9, NOW + 40)
            .await
            .expect("claim")
            .is_none()
    );

    let claimed = store
        .claim_due_callback(NOW + 10, NOW + 40)
        .await
        .expect("claim")
        .expect("due again");
    store
        .record_delivery(&claimed, &DeliveryResult::Delivered, NOW + 11)
        .await
        .expect("record");
    let callback = written_callback(&store, approved.id).await;
    assert_eq!(
        (callback.status, callback.delivered_at, callback.attempts),
        (CallbackStatus::Delivered, Some(NOW + 11), 2)
    );
    assert!(
        store
            .claim_due_callback(NOW + 100, NOW + 130)
            .await
            .expect("claim")
            .is_none(),
        "delivered is done"
    );
}

async fn expired_pending_sessions_are_found_oldest_first(store: Store) {
    let first = pending_session(&store).await;
    let mut later = session(first.client_id, &first.email);
    later.expires_at = NOW + 200;
    store
        .insert_session_if_enrolled(&later, Revision::default())
        .await
        .expect("insert");
    assert!(
        store
            .expired_sessions(NOW + 119, 10)
            .await
            .expect("query")
            .is_empty()
    );
    let expired: Vec<_> = store
        .expired_sessions(NOW + 300, 10)
        .await
        .expect("query")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(expired, [first.id, later.id]);
    store
        .finish_session(&first, SessionStatus::TimedOut, NOW + 300, "tok")
        .await
        .expect("finish");
    let expired: Vec<_> = store
        .expired_sessions(NOW + 300, 10)
        .await
        .expect("query")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(expired, [later.id]);
}

/// The session as stored; it must exist.
async fn stored_session(store: &Store, id: Uuid) -> Session {
    store.session(id).await.expect("read").expect("found")
}

/// A session approved at `NOW`, its callback written and due.
async fn approved_session(store: &Store) -> Session {
    let pending = pending_session(store).await;
    store
        .finish_session(&pending, SessionStatus::Approved, NOW, "tok")
        .await
        .expect("finish");
    stored_session(store, pending.id).await
}

/// The callback a finished session wrote; it must exist.
async fn written_callback(store: &Store, session_id: Uuid) -> eauth_store::Callback {
    store
        .callback_of_session(session_id)
        .await
        .expect("read")
        .expect("written")
}

fn device_of(session: &Session, at: i64) -> Device {
    Device {
        id: DeviceId::generate(),
        client_id: session.client_id,
        email: session.email.clone(),
        public_key: DeviceKey::generate().public_key(),
        name: DeviceName::parse("eauth on laptop").expect("name"),
        created_at: at,
    }
}

/// A pending session (see [`pending_session`]) and a registered device of its user.
async fn session_with_device(store: &Store) -> (Session, Device) {
    let pending = pending_session(store).await;
    let device = device_of(&pending, NOW);
    register_approved(store, &device, 7).await;
    (pending, device)
}

/// The throttle keys of a registration of `device` from one address.
fn keys_of(device: &Device) -> ThrottleKeys {
    ThrottleKeys::new(
        device.client_id,
        &device.email,
        "203.0.113.7".parse().expect("ip"),
    )
}

/// Registers `device` as if its code were right for `step`.
async fn register_approved(store: &Store, device: &Device, step: u64) {
    let approved = device_registration::Verdict::Approved { step };
    let registered = store
        .register_device(device, &keys_of(device), move |_, _, _| Ok(approved))
        .await
        .expect("register");
    assert_eq!(registered, approved);
}

async fn enrollment_of(store: &Store, session: &Session) -> eauth_store::Enrollment {
    store
        .enrollment(session.client_id, &session.email)
        .await
        .expect("read")
        .expect("enrolled")
}

async fn a_device_is_stored_only_with_an_approved_code_and_its_step_is_used(store: Store) {
    let (pending, device) = session_with_device(&store).await;
    assert_eq!(
        store.device(device.id).await.expect("read"),
        Some(device.clone())
    );
    assert_eq!(
        store
            .devices_of(pending.client_id, &pending.email)
            .await
            .expect("list"),
        std::slice::from_ref(&device)
    );
    assert_eq!(
        enrollment_of(&store, &pending).await.last_used_step,
        Some(7)
    );

    // The same key again: a conflict, and the code's step is not used either.
    let twin = Device {
        id: DeviceId::generate(),
        ..device.clone()
    };
    assert!(matches!(
        store
            .register_device(&twin, &keys_of(&twin), |_, _, enrollment| {
                assert_eq!(enrollment.expect("enrolled").last_used_step, Some(7));
                Ok(device_registration::Verdict::Approved { step: 8 })
            })
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        enrollment_of(&store, &pending).await.last_used_step,
        Some(7)
    );
    assert_eq!(store.device(twin.id).await.expect("read"), None);

    assert_eq!(
        store
            .delete_device(device.client_id, device.id)
            .await
            .expect("delete"),
        Some(device.clone())
    );
    assert_eq!(
        store
            .delete_device(device.client_id, device.id)
            .await
            .expect("delete"),
        None
    );
    assert_eq!(store.device(device.id).await.expect("read"), None);
}

async fn a_device_is_listed_and_removed_only_through_its_own_application(store: Store) {
    let (pending, device) = session_with_device(&store).await;
    // Another application, with a user of the same email and a device of its own.
    let other = application("Other Portal");
    store.insert_application(&other).await.expect("insert");
    store
        .upsert_enrollment(
            &enrollment(other.client_id, &pending.email, 2, 6),
            NOW,
            Revision::default(),
        )
        .await
        .expect("enable");
    let others = device_of(&session(other.client_id, &pending.email), NOW);
    register_approved(&store, &others, 1).await;
    // A second device of the first user, registered later, and a user without any.
    let later = device_of(&pending, NOW + 5);
    register_approved(&store, &later, 8).await;
    let john = Email::parse("john@example.com").expect("email");
    store
        .upsert_enrollment(
            &enrollment(pending.client_id, &john, 4, 6),
            NOW,
            Revision::default(),
        )
        .await
        .expect("enable");

    let listed = store
        .devices_of_users(pending.client_id, &[john.clone(), pending.email.clone()])
        .await
        .expect("list");
    assert_eq!(
        listed,
        [device.clone(), later.clone()],
        "oldest first, this application's only"
    );
    assert!(
        store
            .devices_of_users(pending.client_id, &[])
            .await
            .expect("list")
            .is_empty()
    );

    // The other application's id cannot remove this application's device, nor the reverse.
    for (through, target) in [(other.client_id, &device), (pending.client_id, &others)] {
        let removed = store
            .delete_device(through, target.id)
            .await
            .expect("delete");
        assert_eq!(removed, None);
        assert_eq!(
            store.device(target.id).await.expect("read").as_ref(),
            Some(target)
        );
    }

    assert_eq!(
        store
            .delete_device(pending.client_id, device.id)
            .await
            .expect("delete"),
        Some(device)
    );
    assert_eq!(
        store
            .devices_of_users(pending.client_id, std::slice::from_ref(&pending.email))
            .await
            .expect("list"),
        [later]
    );
    assert_eq!(
        store
            .devices_of(other.client_id, &pending.email)
            .await
            .expect("list"),
        [others]
    );
}

async fn a_refused_registration_counts_under_both_keys_and_never_touches_the_enrollment(
    store: Store,
) {
    let pending = pending_session(&store).await;
    let device = device_of(&pending, NOW);
    let keys = keys_of(&device);
    let window = |failures, ends_at| Some(FailureWindow { failures, ends_at });
    let counted = |key: &str| {
        let store = store.clone();
        let key = key.to_owned();
        async move { store.registration_failures(&key).await.expect("read") }
    };
    let refused = device_registration::Verdict::Refused(CodeRejected::Wrong);
    let register = |device: Device,
                    verdict: device_registration::Verdict,
                    seen: [Option<FailureWindow>; 2],
                    enrolled: bool| {
        let store = store.clone();
        async move {
            let keys = keys_of(&device);
            let judged = store
                .register_device(&device, &keys, move |user, address, enrollment| {
                    assert_eq!([user, address], seen, "the windows the judge sees");
                    assert_eq!(enrollment.is_some(), enrolled);
                    Ok(verdict)
                })
                .await
                .expect("register");
            assert_eq!(judged, verdict);
        }
    };

    // A first key's row holds no failures yet.
    register(
        device.clone(),
        refused,
        [window(0, NOW), window(0, NOW)],
        true,
    )
    .await;
    assert_eq!(store.device(device.id).await.expect("read"), None);
    assert_eq!(counted(&keys.user).await, window(1, NOW + 86_400));
    assert_eq!(counted(&keys.address).await, window(1, NOW + 3600));
    let enrollment = enrollment_of(&store, &pending).await;
    assert_eq!(
        (enrollment.consecutive_failures, enrollment.last_failure_at),
        (0, None),
        "the sign-in's failures are not the registration's"
    );

    let later = Device {
        created_at: NOW + 10,
        ..device.clone()
    };
    let after_one = [window(1, NOW + 86_400), window(1, NOW + 3600)];
    register(later.clone(), refused, after_one, true).await;
    let after_two = [window(2, NOW + 86_400), window(2, NOW + 3600)];
    assert_eq!(
        [counted(&keys.user).await, counted(&keys.address).await],
        after_two
    );
    for unchanged in [
        device_registration::Verdict::Throttled { retry_at: NOW + 99 },
        device_registration::Verdict::Locked,
    ] {
        register(later.clone(), unchanged, after_two, true).await;
        assert_eq!(
            [counted(&keys.user).await, counted(&keys.address).await],
            after_two
        );
    }
    assert_eq!(
        enrollment_of(&store, &pending).await.consecutive_failures,
        0
    );

    // Someone not enrolled is counted the same way, under a user key of their own.
    let stranger = Device {
        id: DeviceId::generate(),
        email: Email::parse("nobody@example.com").expect("email"),
        public_key: DeviceKey::generate().public_key(),
        ..later.clone()
    };
    register(
        stranger.clone(),
        refused,
        [window(0, NOW + 10), after_two[1]],
        false,
    )
    .await;
    assert_eq!(
        counted(&keys_of(&stranger).user).await,
        window(1, NOW + 10 + 86_400)
    );
    assert_eq!(counted(&keys.address).await, window(3, NOW + 3600));

    // A success forgets the user's failures, not the address's, and marks the step used.
    let approved = device_registration::Verdict::Approved { step: 9 };
    register(
        later.clone(),
        approved,
        [after_two[0], window(3, NOW + 3600)],
        true,
    )
    .await;
    assert_eq!(counted(&keys.user).await, None);
    assert_eq!(counted(&keys.address).await, window(3, NOW + 3600));
    assert_eq!(
        enrollment_of(&store, &pending).await.last_used_step,
        Some(9)
    );
    assert!(store.device(device.id).await.expect("read").is_some());

    // Windows that ended are forgotten.
    assert_eq!(
        store
            .prune_registration_failures(NOW + 3600)
            .await
            .expect("prune"),
        0
    );
    assert_eq!(
        store
            .prune_registration_failures(NOW + 3601)
            .await
            .expect("prune"),
        1
    );
    assert_eq!(counted(&keys.address).await, None);
    assert!(counted(&keys_of(&stranger).user).await.is_some());
}

async fn concurrent_registrations_of_one_user_each_see_the_failures_before_them(store: Store) {
    let pending = pending_session(&store).await;
    let attempts = 8;
    let registrations = (0..attempts).map(|_| {
        let store = store.clone();
        let device = Device {
            id: DeviceId::generate(),
            public_key: DeviceKey::generate().public_key(),
            ..device_of(&pending, NOW)
        };
        tokio::spawn(async move {
            let (seen, judged) = std::sync::mpsc::channel();
            store
                .register_device(&device, &keys_of(&device), move |user, _, _| {
                    let _ = seen.send(user.map(|window| window.failures));
                    Ok(device_registration::Verdict::Refused(CodeRejected::Wrong))
                })
                .await
                .expect("register");
            judged.recv().expect("judged").expect("a window")
        })
    });
    let mut seen = Vec::new();
    for registration in registrations.collect::<Vec<_>>() {
        seen.push(registration.await.expect("task"));
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..attempts).collect::<Vec<_>>(),
        "one after the other"
    );
    let keys = keys_of(&device_of(&pending, NOW));
    assert_eq!(
        store
            .registration_failures(&keys.user)
            .await
            .expect("read")
            .map(|w| w.failures),
        Some(attempts)
    );
}

async fn enabling_again_or_disabling_removes_the_users_devices_only(store: Store) {
    let (pending, device) = session_with_device(&store).await;
    let john = Email::parse("john@example.com").expect("email");
    store
        .upsert_enrollment(
            &enrollment(pending.client_id, &john, 4, 6),
            NOW,
            Revision::default(),
        )
        .await
        .expect("enable");
    let johns = device_of(&session(pending.client_id, &john), NOW);
    register_approved(&store, &johns, 1).await;

    store
        .upsert_enrollment(&enrollment_for(&pending), NOW + 1, Revision::default())
        .await
        .expect("enable again");
    assert_eq!(store.device(device.id).await.expect("read"), None);
    assert!(store.device(johns.id).await.expect("read").is_some());

    store
        .delete_enrollment(pending.client_id, &john, Revision::default())
        .await
        .expect("disable");
    assert_eq!(store.device(johns.id).await.expect("read"), None);
}

async fn a_nonce_is_accepted_once_per_signer_until_it_is_pruned(store: Store) {
    let remember = |signer: &'static str, nonce: &'static str, expires_at: i64| {
        let store = store.clone();
        async move {
            store
                .remember_nonce(signer, nonce, expires_at)
                .await
                .expect("insert")
        }
    };
    for (signer, nonce, expires_at, accepted) in [
        ("device-a", "n1", NOW + 60, true),
        ("device-a", "n1", NOW + 61, false),
        ("device-b", "n1", NOW + 60, true),
        ("device-a", "n2", NOW + 90, true),
    ] {
        assert_eq!(
            remember(signer, nonce, expires_at).await,
            accepted,
            "{signer} {nonce}"
        );
    }
    assert_eq!(
        store.prune_nonces(NOW + 60).await.expect("prune"),
        0,
        "still fresh"
    );
    assert_eq!(store.prune_nonces(NOW + 61).await.expect("prune"), 2);
    assert!(
        !remember("device-a", "n2", NOW + 90).await,
        "kept while fresh"
    );
    assert!(
        remember("device-a", "n1", NOW + 120).await,
        "forgotten once stale"
    );
}

fn number(n: i64) -> MatchNumber {
    MatchNumber::new(n).expect("number")
}

async fn a_sign_in_keeps_the_number_it_first_offered_and_is_listed_only_then(store: Store) {
    let pending = pending_session(&store).await;
    let listed = |at: i64| {
        let store = store.clone();
        let pending = pending.clone();
        async move {
            store
                .pending_signins(pending.client_id, &pending.email, at)
                .await
                .expect("list")
        }
    };
    assert!(listed(NOW).await.is_empty(), "no number shown yet");
    assert_eq!(
        store
            .offer_push(pending.id, number(42))
            .await
            .expect("offer"),
        Some(number(42))
    );
    assert_eq!(
        store
            .offer_push(pending.id, number(17))
            .await
            .expect("offer"),
        Some(number(42))
    );
    store
        .record_page_open(pending.id, "redirect", "203.0.113.9")
        .await
        .expect("open");
    let signins = listed(NOW + 1).await;
    assert_eq!(signins.len(), 1);
    assert_eq!(
        (
            signins[0].id,
            signins[0].application.as_str(),
            signins[0].created_at,
            signins[0].expires_at,
            signins[0].source_ip.as_deref()
        ),
        (pending.id, "Portal", NOW, NOW + 120, Some("203.0.113.9"))
    );
    let read = stored_session(&store, pending.id).await;
    assert_eq!(
        (read.push_number, read.push_failures),
        (Some(number(42)), 0)
    );
    assert!(listed(NOW + 120).await.is_empty(), "past its lifetime");

    let other = Email::parse("john@example.com").expect("email");
    assert!(
        store
            .pending_signins(pending.client_id, &other, NOW)
            .await
            .expect("list")
            .is_empty()
    );
    store
        .finish_session(&pending, SessionStatus::Rejected, NOW + 2, "tok")
        .await
        .expect("finish");
    assert!(listed(NOW + 3).await.is_empty());
    assert_eq!(
        store
            .offer_push(pending.id, number(55))
            .await
            .expect("offer"),
        None
    );
}

fn never_judged(_: MatchNumber, _: &Session, _: &eauth_store::Enrollment) -> PushVerdict {
    panic!("must not be judged")
}

async fn push_decisions_reach_only_the_devices_own_offered_sign_ins(store: Store) {
    let (pending, device) = session_with_device(&store).await;
    let decide = |session: Uuid, device: DeviceId| {
        let store = store.clone();
        async move {
            store
                .push_decision(session, device, NOW + 1, "tok", NOW + 15, never_judged)
                .await
                .expect("decide")
        }
    };
    assert_eq!(
        decide(pending.id, device.id).await,
        PushAttempt::NotFound,
        "not offered"
    );
    store
        .offer_push(pending.id, number(42))
        .await
        .expect("offer");
    assert_eq!(
        decide(Uuid::new_v4(), device.id).await,
        PushAttempt::NotFound
    );
    assert_eq!(
        decide(pending.id, DeviceId::generate()).await,
        PushAttempt::DeviceGone
    );

    // Another user of the same application, with a device of their own.
    let john = Email::parse("john@example.com").expect("email");
    store
        .upsert_enrollment(
            &enrollment(pending.client_id, &john, 4, 6),
            NOW,
            Revision::default(),
        )
        .await
        .expect("enable");
    let johns = device_of(&session(pending.client_id, &john), NOW);
    register_approved(&store, &johns, 1).await;
    assert_eq!(decide(pending.id, johns.id).await, PushAttempt::NotFound);
    assert_eq!(
        store.session(pending.id).await.expect("read"),
        Some(Session {
            push_number: Some(number(42)),
            ..pending.clone()
        }),
        "nothing changed"
    );

    store
        .delete_device(device.client_id, device.id)
        .await
        .expect("delete");
    assert_eq!(decide(pending.id, device.id).await, PushAttempt::DeviceGone);
}

async fn wrong_numbers_count_and_the_last_one_rejects_with_a_callback(store: Store) {
    let (pending, device) = session_with_device(&store).await;
    store
        .offer_push(pending.id, number(42))
        .await
        .expect("offer");
    let wrong = PushVerdict::WrongNumber { attempts_left: 2 };
    let attempt = store
        .push_decision(
            pending.id,
            device.id,
            NOW,
            "tok",
            NOW + 15,
            move |offered, session, _| {
                assert_eq!(
                    (offered, session.push_number),
                    (number(42), Some(number(42)))
                );
                wrong
            },
        )
        .await
        .expect("decide");
    let PushAttempt::Judged {
        verdict,
        session,
        callback,
    } = attempt
    else {
        panic!("judged: {attempt:?}");
    };
    assert_eq!(
        (verdict, session.push_failures, session.status, callback),
        (wrong, 1, SessionStatus::Pending, None)
    );
    assert!(
        store
            .callback_of_session(pending.id)
            .await
            .expect("read")
            .is_none()
    );

    let rejected = PushVerdict::Rejected(RejectReason::WrongNumbers);
    let attempt = store
        .push_decision(
            pending.id,
            device.id,
            NOW + 1,
            "tok",
            NOW + 15,
            move |_, session, _| {
                assert_eq!(session.push_failures, 1);
                rejected
            },
        )
        .await
        .expect("decide");
    let PushAttempt::Judged {
        session, callback, ..
    } = attempt
    else {
        panic!("judged: {attempt:?}");
    };
    assert_eq!(
        (session.status, session.push_failures),
        (SessionStatus::Rejected, 2)
    );
    assert!(
        callback.is_some_and(|c| !c.approved && c.attempts == 1),
        "a denial's callback is delivered at once too"
    );
    let stored = stored_session(&store, pending.id).await;
    assert_eq!(
        (stored.status, stored.finished_at),
        (SessionStatus::Rejected, Some(NOW + 1))
    );
    let callback = written_callback(&store, pending.id).await;
    assert!(!callback.approved);
    assert!(matches!(
        store
            .push_decision(
                pending.id,
                device.id,
                NOW + 2,
                "tok",
                NOW + 15,
                never_judged
            )
            .await
            .expect("decide"),
        PushAttempt::NotPending(_)
    ));
}

async fn an_approval_finishes_the_sign_in_with_its_callback_and_forgives_failures(store: Store) {
    let (pending, device) = session_with_device(&store).await;
    store
        .attempt(pending.id, NOW, "tok", 0, move |_, _| {
            Ok(Verdict::Wrong {
                reason: CodeRejected::Wrong,
                attempts_left: 4,
                locked: false,
            })
        })
        .await
        .expect("attempt");
    store
        .offer_push(pending.id, number(42))
        .await
        .expect("offer");
    let attempt = store
        .push_decision(
            pending.id,
            device.id,
            NOW + 1,
            "tok",
            NOW + 15,
            |_, _, enrollment| {
                assert_eq!(enrollment.consecutive_failures, 1);
                PushVerdict::Approved
            },
        )
        .await
        .expect("decide");
    let PushAttempt::Judged {
        session, callback, ..
    } = attempt
    else {
        panic!("judged: {attempt:?}");
    };
    assert_eq!(session.status, SessionStatus::Approved);
    let callback = callback.expect("the approval's callback, to deliver");
    assert_eq!(callback, written_callback(&store, pending.id).await);
    assert!(callback.approved);
    assert_eq!(callback.session_token, "tok");
    // Written claimed, its first attempt counted.
    assert_eq!(callback.attempts, 1);
    held_until(&store, &callback, NOW + 15).await;
    assert_eq!(
        enrollment_of(&store, &pending).await.consecutive_failures,
        0
    );
}

async fn a_decision_after_expiry_times_the_sign_in_out_unjudged(store: Store) {
    let (pending, device) = session_with_device(&store).await;
    store
        .offer_push(pending.id, number(42))
        .await
        .expect("offer");
    let attempt = store
        .push_decision(
            pending.id,
            device.id,
            pending.expires_at,
            "tok",
            NOW + 15,
            never_judged,
        )
        .await
        .expect("decide");
    let PushAttempt::NotPending(session) = attempt else {
        panic!("not pending: {attempt:?}");
    };
    assert_eq!(session.status, SessionStatus::TimedOut);
    let stored = stored_session(&store, pending.id).await;
    assert_eq!(stored.status, SessionStatus::TimedOut);
    let callback = written_callback(&store, pending.id).await;
    assert!(!callback.approved);
}
fn email(raw: &str) -> Email {
    Email::parse(raw).expect("email")
}

const ALL: PageRequest = PageRequest {
    offset: 0,
    limit: 100,
};

async fn accounts_are_unique_by_email(store: Store) {
    let jane = email("jane@example.com");
    store
        .insert_account(&jane, "$argon2id$first", NOW)
        .await
        .expect("insert");
    assert!(matches!(
        store
            .insert_account(&jane, "$argon2id$second", NOW + 1)
            .await,
        Err(StoreError::Conflict)
    ));
    let account = store.account(&jane).await.expect("read").expect("found");
    assert_eq!(
        (
            account.email,
            account.password_hash.as_str(),
            account.created_at
        ),
        (jane, "$argon2id$first", NOW)
    );
    assert!(
        store
            .account(&email("john@example.com"))
            .await
            .expect("read")
            .is_none()
    );
}

fn cutoffs(now: i64) -> SessionCutoffs {
    // Ten seconds idle, a hundred at most.
    SessionCutoffs {
        last_seen_after: now - 10,
        created_after: now - 100,
    }
}

async fn console_sessions_live_until_idle_or_too_old_and_end_when_deleted(store: Store) {
    let jane = email("jane@example.com");
    store
        .insert_account(&jane, "$argon2id$x", NOW)
        .await
        .expect("account");
    let (token, other) = ([1u8; 32], [2u8; 32]);
    store
        .insert_console_session(&token, &jane, NOW)
        .await
        .expect("session");
    store
        .insert_console_session(&other, &jane, NOW)
        .await
        .expect("session");

    // Used every 9 seconds, it lives on, up to its absolute limit.
    let mut now = NOW;
    while now + 9 < NOW + 100 {
        now += 9;
        assert_eq!(
            store
                .touch_console_session(&token, now, cutoffs(now))
                .await
                .expect("touch"),
            Some(jane.clone()),
            "at +{}",
            now - NOW
        );
    }
    assert_eq!(
        store
            .touch_console_session(&token, NOW + 100, cutoffs(NOW + 100))
            .await
            .expect("touch"),
        None,
        "too old"
    );
    // The other one was idle since NOW.
    assert_eq!(
        store
            .touch_console_session(&other, NOW + 10, cutoffs(NOW + 10))
            .await
            .expect("touch"),
        None,
        "idle"
    );
    assert_eq!(
        store
            .touch_console_session(&[3u8; 32], NOW, cutoffs(NOW))
            .await
            .expect("touch"),
        None,
        "unknown"
    );

    let fresh = [4u8; 32];
    store
        .insert_console_session(&fresh, &jane, NOW + 200)
        .await
        .expect("session");
    assert_eq!(
        store
            .prune_console_sessions(cutoffs(NOW + 200))
            .await
            .expect("prune"),
        2
    );
    assert!(store.delete_console_session(&fresh).await.expect("delete"));
    assert!(!store.delete_console_session(&fresh).await.expect("delete"));
    assert_eq!(
        store
            .touch_console_session(&fresh, NOW + 201, cutoffs(NOW + 201))
            .await
            .expect("touch"),
        None,
        "signed out"
    );
}

async fn signin_failures_are_counted_per_key_within_the_window(store: Store) {
    let keys = [
        "account:jane@example.com".to_owned(),
        "address:203.0.113.7".to_owned(),
    ];
    let failures = |key: &str, since: i64| {
        let (store, key) = (store.clone(), key.to_owned());
        async move { store.signin_failures(&key, since).await.expect("count") }
    };
    store
        .record_signin_failure(&keys, NOW)
        .await
        .expect("record");
    store
        .record_signin_failure(&keys[1..], NOW + 5)
        .await
        .expect("record");
    assert_eq!(failures(&keys[0], NOW - 1).await, 1);
    assert_eq!(failures(&keys[1], NOW - 1).await, 2);
    assert_eq!(failures(&keys[1], NOW).await, 1, "window");
    assert_eq!(failures("account:other", NOW - 1).await, 0);

    store.clear_signin_failures(&keys[0]).await.expect("clear");
    assert_eq!(failures(&keys[0], NOW - 1).await, 0);
    assert_eq!(failures(&keys[1], NOW - 1).await, 2);

    assert_eq!(store.prune_signin_failures(NOW).await.expect("prune"), 1);
    assert_eq!(failures(&keys[1], 0).await, 1);
}

fn owned_by(name: &str, owner: &str) -> Application {
    Application {
        owner: Some(email(owner)),
        ..application(name)
    }
}

async fn an_owner_sees_only_its_own_applications(store: Store) {
    let mut first = owned_by("First", "jane@example.com");
    first.created_at = NOW - 10;
    let second = owned_by("Second", "jane@example.com");
    let johns = owned_by("John's", "john@example.com");
    let unowned = Application {
        owner: None,
        ..application("Admin's")
    };
    for app in [&first, &second, &johns, &unowned] {
        store.insert_application(app).await.expect("insert");
    }
    let janes: Vec<_> = store
        .applications_of(&email("jane@example.com"))
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.client_id)
        .collect();
    assert_eq!(janes, [first.client_id, second.client_id], "oldest first");

    let jane = email("jane@example.com");
    assert!(
        store
            .owned_application(first.client_id, &jane)
            .await
            .expect("read")
            .is_some()
    );
    for other in [johns.client_id, unowned.client_id, ClientId::generate()] {
        assert!(
            store
                .owned_application(other, &jane)
                .await
                .expect("read")
                .is_none()
        );
    }
}

async fn settings_and_callback_secret_changes_touch_only_their_application(store: Store) {
    let (app, other) = (application("A"), application("B"));
    store.insert_application(&app).await.expect("insert");
    store.insert_application(&other).await.expect("insert");

    let changed = Application {
        name: ApplicationName::parse("A, renamed").expect("name"),
        ip_allow_list: IpAllowList::parse(["10.0.0.0/8"]).expect("ips"),
        redirect_uris: vec![RedirectUri::parse("https://new.example.com/cb").expect("uri")],
        callback_url: CallbackUrl::parse("https://new.example.com/eauth").expect("url"),
        // Not settings: these must stay as they are.
        api_key_hash: ApiKey::generate().hash(),
        active: false,
        owner: None,
        ..application("ignored")
    };
    let changed = Application {
        client_id: app.client_id,
        ..changed
    };
    assert!(
        store
            .update_application_settings(&changed, NOW + 1)
            .await
            .expect("update")
    );
    assert!(
        store
            .replace_callback_secret(app.client_id, &[9, 9], NOW + 2)
            .await
            .expect("replace")
    );
    let read = store
        .application(app.client_id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(read.name, changed.name);
    assert_eq!(read.ip_allow_list, changed.ip_allow_list);
    assert_eq!(read.redirect_uris, changed.redirect_uris);
    assert_eq!(read.callback_url, changed.callback_url);
    assert_eq!(read.sealed_callback_secret, vec![9, 9]);
    assert_eq!(read.api_key_hash, app.api_key_hash);
    assert!(read.active);
    assert_eq!(read.owner, app.owner);

    let untouched = store
        .application(other.client_id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(untouched.name, other.name);
    assert_eq!(
        untouched.sealed_callback_secret,
        other.sealed_callback_secret
    );

    let unknown = Application {
        client_id: ClientId::generate(),
        ..application("Nobody")
    };
    assert!(
        !store
            .update_application_settings(&unknown, NOW)
            .await
            .expect("update")
    );
    assert!(
        !store
            .replace_callback_secret(unknown.client_id, &[1], NOW)
            .await
            .expect("replace")
    );
}

async fn deleting_an_application_deletes_what_belongs_to_it(store: Store) {
    let approved = approved_session(&store).await;
    let other = pending_session(&store).await;

    assert!(
        store
            .delete_application(approved.client_id)
            .await
            .expect("delete")
    );
    assert!(
        store
            .application(approved.client_id)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        store
            .enrollment(approved.client_id, &approved.email)
            .await
            .expect("read")
            .is_none()
    );
    assert_eq!(store.session(approved.id).await.expect("read"), None);
    assert_eq!(
        store.callback_of_session(approved.id).await.expect("read"),
        None
    );
    assert!(
        !store
            .delete_application(approved.client_id)
            .await
            .expect("delete again")
    );
    // Another application's user and session are still there.
    assert!(store.session(other.id).await.expect("read").is_some());
    assert!(
        store
            .enrollment(other.client_id, &other.email)
            .await
            .expect("read")
            .is_some()
    );
}

async fn enrolled_users_are_searched_paged_and_unlocked(store: Store) {
    let app = application("Portal");
    store.insert_application(&app).await.expect("insert");
    let other = application("Other");
    store.insert_application(&other).await.expect("insert");
    for (i, user) in [
        "carol@example.com",
        "alice@example.com",
        "bob@test.org",
        "a_b@example.com",
    ]
    .iter()
    .enumerate()
    {
        let at = NOW + i64::try_from(i).expect("small");
        store
            .upsert_enrollment(
                &enrollment(app.client_id, &email(user), 1, 6),
                at,
                Revision::default(),
            )
            .await
            .expect("enable");
    }
    store
        .upsert_enrollment(
            &enrollment(other.client_id, &email("zed@example.com"), 1, 6),
            NOW,
            Revision::default(),
        )
        .await
        .expect("enable");

    let all = store
        .enrolled_users(app.client_id, None, ALL)
        .await
        .expect("list");
    let emails: Vec<_> = all.items.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(
        emails,
        [
            "a_b@example.com",
            "alice@example.com",
            "bob@test.org",
            "carol@example.com"
        ]
    );
    assert_eq!(all.total, 4);
    assert_eq!(all.items[1].enabled_at, NOW + 1);

    let page = store
        .enrolled_users(
            app.client_id,
            None,
            PageRequest {
                offset: 1,
                limit: 2,
            },
        )
        .await
        .expect("list");
    let emails: Vec<_> = page.items.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(
        (emails.as_slice(), page.total),
        (&["alice@example.com", "bob@test.org"][..], 4)
    );

    let found = store
        .enrolled_users(app.client_id, Some(" EXAMPLE.com "), ALL)
        .await
        .expect("search");
    assert_eq!(found.total, 3);
    // `_` is a letter here, not a wildcard.
    let found = store
        .enrolled_users(app.client_id, Some("a_b"), ALL)
        .await
        .expect("search");
    let emails: Vec<_> = found.items.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(
        (emails.as_slice(), found.total),
        (&["a_b@example.com"][..], 1)
    );

    // The last approved sign-in, and the lock.
    let alice = email("alice@example.com");
    for (status, at) in [
        (SessionStatus::Approved, NOW + 50),
        (SessionStatus::Approved, NOW + 70),
        (SessionStatus::Rejected, NOW + 90),
    ] {
        let session = session(app.client_id, &alice);
        store
            .insert_session_if_enrolled(&session, Revision::default())
            .await
            .expect("session");
        store
            .finish_session(&session, status, at, "tok")
            .await
            .expect("finish");
    }
    let locked = session(app.client_id, &alice);
    store
        .insert_session_if_enrolled(&locked, Revision::default())
        .await
        .expect("session");
    store
        .attempt(locked.id, NOW + 95, "tok", 0, move |_, _| {
            Ok(Verdict::Exhausted { locked: true })
        })
        .await
        .expect("attempt");
    let read = store
        .enrolled_users(app.client_id, Some("alice"), ALL)
        .await
        .expect("list");
    let user = &read.items[0];
    assert_eq!(
        (
            user.last_signin_at,
            user.locked_at,
            user.consecutive_failures
        ),
        (Some(NOW + 70), Some(NOW + 95), 1)
    );

    assert!(
        store
            .unlock_enrollment(app.client_id, &alice)
            .await
            .expect("unlock")
    );
    let enrollment = store
        .enrollment(app.client_id, &alice)
        .await
        .expect("read")
        .expect("enrolled");
    assert_eq!(
        (
            enrollment.locked_at,
            enrollment.consecutive_failures,
            enrollment.last_failure_at
        ),
        (None, 0, None)
    );
    assert_eq!(enrollment.sealed_secret, vec![1; 28], "the secret stays");
    assert!(
        !store
            .unlock_enrollment(app.client_id, &email("nobody@example.com"))
            .await
            .expect("unlock")
    );
    assert!(
        !store
            .unlock_enrollment(other.client_id, &alice)
            .await
            .expect("unlock"),
        "another application's user of the same name is another user"
    );
}

async fn sign_ins_are_filtered_by_outcome_and_email_newest_first(store: Store) {
    let app = application("Portal");
    store.insert_application(&app).await.expect("insert");
    let (jane, john) = (email("jane@example.com"), email("john@test.org"));
    for user in [&jane, &john] {
        store
            .upsert_enrollment(
                &enrollment(app.client_id, user, 1, 6),
                NOW,
                Revision::default(),
            )
            .await
            .expect("enable");
    }
    let mut ids = Vec::new();
    for (i, (user, status)) in [
        (&jane, SessionStatus::Approved),
        (&john, SessionStatus::Rejected),
        (&jane, SessionStatus::TimedOut),
        (&jane, SessionStatus::Pending),
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = session(app.client_id, user);
        s.created_at = NOW + i64::try_from(i).expect("small");
        store
            .insert_session_if_enrolled(&s, Revision::default())
            .await
            .expect("insert");
        if status != SessionStatus::Pending {
            store
                .finish_session(&s, status, s.created_at, "tok")
                .await
                .expect("finish");
        }
        ids.push(s.id);
    }
    let listed = |filter: SessionFilter, page: PageRequest| {
        let store = store.clone();
        async move {
            let page = store
                .sessions_of(app.client_id, &filter, page)
                .await
                .expect("list");
            (
                page.items.into_iter().map(|s| s.id).collect::<Vec<_>>(),
                page.total,
            )
        }
    };
    assert_eq!(
        listed(SessionFilter::default(), ALL).await,
        (vec![ids[3], ids[2], ids[1], ids[0]], 4)
    );
    assert_eq!(
        listed(
            SessionFilter::default(),
            PageRequest {
                offset: 3,
                limit: 10
            }
        )
        .await,
        (vec![ids[0]], 4)
    );
    let rejected = SessionFilter {
        status: Some(SessionStatus::Rejected),
        email: None,
    };
    assert_eq!(listed(rejected, ALL).await, (vec![ids[1]], 1));
    let janes = SessionFilter {
        status: None,
        email: Some("JANE".into()),
    };
    assert_eq!(listed(janes, ALL).await, (vec![ids[3], ids[2], ids[0]], 3));
    let janes_approved = SessionFilter {
        status: Some(SessionStatus::Approved),
        email: Some("jane@".into()),
    };
    assert_eq!(listed(janes_approved, ALL).await, (vec![ids[0]], 1));
    let none = store
        .sessions_of(ClientId::generate(), &SessionFilter::default(), ALL)
        .await
        .expect("list");
    assert_eq!((none.items.len(), none.total), (0, 0));
}

async fn callbacks_are_listed_with_their_user_and_requeued(store: Store) {
    let first = pending_session(&store).await;
    store
        .finish_session(&first, SessionStatus::Approved, NOW, "tok")
        .await
        .expect("finish");
    let second = session(first.client_id, &first.email);
    store
        .insert_session_if_enrolled(&second, Revision::default())
        .await
        .expect("insert");
    store
        .finish_session(&second, SessionStatus::Rejected, NOW + 1, "tok")
        .await
        .expect("finish");

    let listed = store
        .callbacks_of(first.client_id, ALL)
        .await
        .expect("list");
    assert_eq!(listed.total, 2);
    let sessions: Vec<_> = listed.items.iter().map(|c| c.callback.session_id).collect();
    assert_eq!(sessions, [second.id, first.id], "newest first");
    assert_eq!(listed.items[0].email, first.email);
    let page = store
        .callbacks_of(
            first.client_id,
            PageRequest {
                offset: 1,
                limit: 1,
            },
        )
        .await
        .expect("list");
    assert_eq!((page.items.len(), page.total), (1, 2));

    // Given up on: sent again on request, at once.
    let given_up = written_callback(&store, first.id).await;
    let claimed = store
        .claim_callback(given_up.id, NOW, NOW + 15)
        .await
        .expect("claim")
        .expect("claimed");
    assert!(
        !store
            .requeue_callback(first.client_id, claimed.id, NOW + 1)
            .await
            .expect("requeue"),
        "not while a worker holds it"
    );
    store
        .record_delivery(
            &claimed,
            &DeliveryResult::GaveUp {
                error: "HTTP 500".into(),
            },
            NOW + 2,
        )
        .await
        .expect("record");
    assert!(
        store
            .claim_due_callback(NOW + 10_000, NOW + 10_015)
            .await
            .expect("claim")
            .is_some_and(|c| c.id != claimed.id),
        "only the other one is due"
    );
    assert!(
        !store
            .requeue_callback(ClientId::generate(), claimed.id, NOW + 3)
            .await
            .expect("requeue"),
        "not through another application"
    );
    assert!(
        store
            .requeue_callback(first.client_id, claimed.id, NOW + 3)
            .await
            .expect("requeue")
    );
    let requeued = written_callback(&store, first.id).await;
    assert_eq!(
        (requeued.status, requeued.next_attempt_at, requeued.attempts),
        (CallbackStatus::Pending, NOW + 3, 1)
    );
    let due = store
        .claim_callback(requeued.id, NOW + 3, NOW + 18)
        .await
        .expect("claim")
        .expect("due again");
    store
        .record_delivery(&due, &DeliveryResult::Delivered, NOW + 4)
        .await
        .expect("record");
    assert!(
        !store
            .requeue_callback(first.client_id, due.id, NOW + 5)
            .await
            .expect("requeue"),
        "delivered is done"
    );
}

async fn outcomes_are_counted_per_bucket(store: Store) {
    let app = application("Portal");
    store.insert_application(&app).await.expect("insert");
    let jane = email("jane@example.com");
    store
        .upsert_enrollment(
            &enrollment(app.client_id, &jane, 1, 6),
            NOW,
            Revision::default(),
        )
        .await
        .expect("enable");
    let hour = NOW - NOW % 3600;
    for (status, at) in [
        (SessionStatus::Approved, hour + 1),
        (SessionStatus::Approved, hour + 3599),
        (SessionStatus::Rejected, hour + 10),
        (SessionStatus::Approved, hour + 3600),
        (SessionStatus::TimedOut, hour + 7300),
        // Before the window.
        (SessionStatus::Approved, hour - 1),
        (SessionStatus::Pending, hour + 5),
    ] {
        let s = session(app.client_id, &jane);
        store
            .insert_session_if_enrolled(&s, Revision::default())
            .await
            .expect("insert");
        if status != SessionStatus::Pending {
            store
                .finish_session(&s, status, at, "tok")
                .await
                .expect("finish");
        }
    }
    let counts: Vec<_> = store
        .outcome_counts(app.client_id, hour, 3600)
        .await
        .expect("counts")
        .into_iter()
        .map(|c| (c.bucket_start - hour, c.status, c.count))
        .collect();
    assert_eq!(
        counts,
        [
            (0, SessionStatus::Approved, 2),
            (0, SessionStatus::Rejected, 1),
            (3600, SessionStatus::Approved, 1),
            (7200, SessionStatus::TimedOut, 1),
        ]
    );
    assert!(
        store
            .outcome_counts(ClientId::generate(), hour, 3600)
            .await
            .expect("counts")
            .is_empty()
    );
}

async fn the_audit_log_keeps_each_accounts_actions_in_order(store: Store) {
    let (jane, john) = (email("jane@example.com"), email("john@example.com"));
    let app = application("Portal");
    let ip = "203.0.113.7".parse().expect("ip");
    let entries = [
        (&jane, AuditAction::SignedIn, None),
        (
            &jane,
            AuditAction::ApplicationCreated,
            Some((app.client_id, &app.name)),
        ),
        (&john, AuditAction::SignedIn, None),
        // The same second: the order of insertion is kept.
        (
            &jane,
            AuditAction::ApiKeyRotated,
            Some((app.client_id, &app.name)),
        ),
    ];
    for (actor, action, application) in entries {
        store
            .insert_audit(
                &NewAuditEntry {
                    actor,
                    action,
                    application,
                    detail: Some("a detail"),
                    source_ip: ip,
                },
                NOW,
            )
            .await
            .expect("insert");
    }
    let janes = store.audit_log(&jane, None, ALL).await.expect("read");
    let actions: Vec<_> = janes.items.iter().map(|e| e.action).collect();
    assert_eq!(
        (actions.as_slice(), janes.total),
        (
            &[
                AuditAction::ApiKeyRotated,
                AuditAction::ApplicationCreated,
                AuditAction::SignedIn
            ][..],
            3
        )
    );
    let newest = &janes.items[0];
    assert_eq!(newest.actor, jane);
    assert_eq!(newest.client_id, Some(app.client_id));
    assert_eq!(newest.application_name.as_deref(), Some("Portal"));
    assert_eq!(newest.detail.as_deref(), Some("a detail"));
    assert_eq!((newest.at, newest.source_ip.as_str()), (NOW, "203.0.113.7"));

    let of_app = store
        .audit_log(
            &jane,
            Some(app.client_id),
            PageRequest {
                offset: 1,
                limit: 5,
            },
        )
        .await
        .expect("read");
    let actions: Vec<_> = of_app.items.iter().map(|e| e.action).collect();
    assert_eq!(
        (actions.as_slice(), of_app.total),
        (&[AuditAction::ApplicationCreated][..], 2)
    );
    assert_eq!(
        store
            .audit_log(&john, Some(app.client_id), ALL)
            .await
            .expect("read")
            .total,
        0
    );
}

async fn many_users_are_enrolled_at_once_as_one_by_one(store: Store) {
    let app = application("Portal");
    store.insert_application(&app).await.expect("insert");
    // Jane is enrolled already, with a used step that enabling again must reset.
    let pending = {
        let jane = Email::parse("jane@example.com").expect("email");
        store
            .upsert_enrollment(
                &enrollment(app.client_id, &jane, 1, 6),
                NOW,
                Revision::default(),
            )
            .await
            .expect("enable");
        let pending = session(app.client_id, &jane);
        assert!(
            store
                .insert_session_if_enrolled(&pending, Revision::default())
                .await
                .expect("insert")
        );
        pending
    };
    judged(
        store
            .attempt(pending.id, NOW, "tok", 0, move |_, _| {
                Ok(Verdict::Approved { step: 7 })
            })
            .await
            .expect("attempt"),
    );
    // More users than one statement holds, Jane among them, and John twice: the last wins.
    let users: Vec<Email> = (0..1_234)
        .map(|i| Email::parse(&format!("user{i}@example.com")).expect("email"))
        .chain(
            ["jane@example.com", "john@example.com", "john@example.com"]
                .map(|raw| Email::parse(raw).expect("email")),
        )
        .collect();
    let batch: Vec<NewEnrollment> = users
        .iter()
        .enumerate()
        .map(|(i, email)| enrollment(app.client_id, email, (i % 200) as u8, 8))
        .collect();
    store
        .upsert_enrollments(&batch, NOW + 60)
        .await
        .expect("enable many");
    for (i, email) in users
        .iter()
        .enumerate()
        .filter(|(i, _)| [0, 499, 500, 1_233, 1_234, 1_236].contains(i))
    {
        let read = store
            .enrollment(app.client_id, email)
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("{email} enrolled"));
        assert_eq!(read.sealed_secret, vec![(i % 200) as u8; 28], "{email}");
        assert_eq!(read.params.digits(), 8);
        assert_eq!(read.enabled_at, NOW + 60);
        assert_eq!(
            (
                read.last_used_step,
                read.consecutive_failures,
                read.locked_at
            ),
            (None, 0, None)
        );
        assert!(
            store
                .insert_session_if_enrolled(&session(app.client_id, email), Revision::default())
                .await
                .expect("insert")
        );
    }
    // An empty batch is nothing to do.
    store.upsert_enrollments(&[], NOW).await.expect("empty");
}
