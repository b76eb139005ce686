use reqwest::StatusCode;

use crate::helpers::TestApp;

#[tokio::test]
async fn admin_pages_answer_403_to_users_and_send_visitors_to_login() {
    let app = TestApp::spawn().await;
    let user = app.user("ada@example.com").await;
    assert_eq!(user.get("/admin").await.status, StatusCode::FORBIDDEN);
    assert_eq!(user.get("/admin/anything").await.status, StatusCode::FORBIDDEN);
    let denied = user.call("admin/users", &[]).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.code(), "auth.forbidden");

    let visitor = app.client().get("/admin").await;
    assert_eq!(visitor.status, StatusCode::SEE_OTHER);
    assert_eq!(visitor.header("location"), Some("/login?next=%2Fadmin"));
    assert_eq!(app.client().call("admin/users", &[]).await.status, StatusCode::UNAUTHORIZED);

    let denials: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'admin.denied'")
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(denials, 2, "each refused admin page view is audited");
}

#[tokio::test]
async fn admins_see_every_user_with_signup_date_and_role() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    let admin = app.admin("root@example.com").await;
    let users: Vec<serde_json::Value> = admin.call("admin/users", &[]).await.json();
    let summary: Vec<(&str, &str)> =
        users.iter().map(|u| (u["email"].as_str().unwrap(), u["role"].as_str().unwrap())).collect();
    assert_eq!(summary, [("ada@example.com", "user"), ("root@example.com", "admin")]);
    assert!(users[0]["created_at"].as_str().unwrap().ends_with('Z'));

    let page = admin.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("ada@example.com") && page.body.contains("root@example.com"),
        "the admin page lists both accounts: {}",
        page.body.split("<main").nth(1).unwrap_or(&page.body).chars().take(2000).collect::<String>()
    );
}
