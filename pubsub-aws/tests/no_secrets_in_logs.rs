//! No credential, session token or request signature ever reaches the logs, even at debug
//! level: the `pubsub` binary publishes and reads with fake secrets in its environment, and its
//! whole output is searched.

mod support;

use std::process::Command;

const ACCESS_KEY: &str = "AKIAFAKEACCESSKEY4242";
const SECRET_KEY: &str = "fakeSecretKey/DoNotLog/0123456789abcdefXYZ";
const SESSION_TOKEN: &str = "FakeSessionTokenDoNotLogIQoJb3JpZ2luX2VjEAAaCXVzLWVhc3QtMSJHMEUCIQ";

fn pubsub(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_pubsub"))
        .args(args)
        .arg("--debug")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .env_remove("RUST_LOG")
        .output()
        .expect("the pubsub binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn debug_logs_carry_no_secret() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let dir = std::env::temp_dir().join(support::unique_name("secrets"));
    std::fs::create_dir_all(&dir).unwrap();
    let (topic, queue) = (support::unique_name("topic"), support::unique_name("queue"));
    let config = dir.join("pubsub.toml");
    std::fs::write(
        &config,
        format!("[[topic]]\nname = \"{topic}\"\n[[queue]]\nname = \"{queue}\"\n[[subscription]]\ntopic = \"{topic}\"\nqueue = \"{queue}\"\n"),
    )
    .unwrap();
    let mut output = pubsub(&["provision", "--config", config.to_str().unwrap()]);
    let topic_arn =
        output.lines().find(|l| l.starts_with("topic ")).unwrap().rsplit(' ').next().unwrap().to_owned();
    let queue_url =
        output.lines().find(|l| l.starts_with("queue ")).unwrap().rsplit(' ').next().unwrap().to_owned();
    output += &pubsub(&[
        "publish",
        "--topic-arn",
        &topic_arn,
        "--media-type",
        "application/vnd.acme.pubsub.secret_test",
        "--json",
        r#"{"x": 1}"#,
    ]);
    output += &pubsub(&["read", "--queue-url", &queue_url, "--max", "1", "--wait-seconds", "2"]);
    std::fs::remove_dir_all(dir).unwrap();

    assert!(output.contains("DEBUG"), "the run logged at debug level");
    for secret in [
        ACCESS_KEY,
        SECRET_KEY,
        SESSION_TOKEN,
        "Signature=",
        "Credential=",
        "X-Amz-Security-Token",
        "x-amz-security-token",
    ] {
        assert!(!output.contains(secret), "`{secret}` appears in the output");
    }
}
