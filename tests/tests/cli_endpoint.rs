//! `mailstage-extract endpoint new | show | list | remove`, run as an admin runs them.

mod cli_support;

use cli_support::Cli;
use serde_json::json;

#[test]
fn an_endpoint_round_trips_through_new_show_list_and_remove() {
    let cli = Cli::new();
    let created = cli.json(&[
        "endpoint",
        "new",
        "--name",
        "src",
        "--server",
        "imap.contoso.edu",
        "--security",
        "ssl",
        "--max-concurrent-migrations",
        "50",
        "--max-concurrent-incremental-syncs",
        "25",
    ]);
    let src = json!({
        "name": "src",
        "endpoint_type": "IMAP",
        "server": "imap.contoso.edu",
        "port": 993,
        "security": "ssl",
        "max_concurrent_migrations": 50,
        "max_concurrent_incremental_syncs": 25,
        "batches": [],
    });
    assert_eq!(created, src);
    // STARTTLS defaults to port 143, and the limits to Microsoft's 20 and 10.
    cli.ok(&[
        "endpoint",
        "new",
        "--name",
        "lab",
        "--server",
        "10.1.2.3",
        "--security",
        "tls",
    ]);
    let shown = cli.json(&["endpoint", "show", "lab"]);
    assert_eq!(shown["name"], "lab");
    assert_eq!(shown["endpoint_type"], "IMAP");
    assert_eq!(shown["server"], "10.1.2.3");
    assert_eq!(shown["port"], 143);
    assert_eq!(shown["security"], "tls");
    assert_eq!(shown["max_concurrent_migrations"], 20);
    assert_eq!(shown["max_concurrent_incremental_syncs"], 10);
    assert_eq!(shown["batches"], json!([]));

    // Shaped like Get-MigrationEndpoint | Format-List EndpointType,RemoteServer,Port,Security,Max*.
    let text = cli.ok(&["endpoint", "show", "src"]);
    for line in [
        "EndpointType                  : IMAP",
        "RemoteServer                  : imap.contoso.edu",
        "Port                          : 993",
        "Security                      : ssl",
        "MaxConcurrentMigrations       : 50",
        "MaxConcurrentIncrementalSyncs : 25",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing in\n{text}"
        );
    }

    let list = cli.json(&["endpoint", "list"]);
    assert_eq!(list[0]["name"], "lab");
    assert_eq!(list[1], src);
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let table = cli.ok(&["endpoint", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NAME  TYPE  SERVER"), "{table}");
    assert!(
        lines[2].starts_with("src   IMAP  imap.contoso.edu   993  ssl"),
        "{table}"
    );

    assert_eq!(
        cli.ok(&["endpoint", "remove", "lab"]),
        "endpoint \"lab\" removed\n"
    );
    let list = cli.json(&["endpoint", "list"]);
    assert_eq!(list, json!([src]));
    let err = cli.fails(&["endpoint", "show", "lab"]);
    assert!(err.contains("no endpoint named \"lab\""), "{err}");
    let err = cli.fails(&["endpoint", "remove", "lab"]);
    assert!(err.contains("no endpoint named \"lab\""), "{err}");
}

#[test]
fn a_duplicate_name_is_refused_and_the_first_endpoint_kept() {
    let cli = Cli::new();
    cli.endpoint("src");
    let err = cli.fails(&[
        "endpoint",
        "new",
        "--name",
        "src",
        "--server",
        "other.example",
        "--security",
        "ssl",
    ]);
    assert!(
        err.contains("an endpoint named \"src\" already exists"),
        "{err}"
    );
    let shown = cli.json(&["endpoint", "show", "src"]);
    assert_eq!(shown["server"], "127.0.0.1");
    assert_eq!(shown["port"], 143);
}

#[test]
fn an_endpoint_in_use_cannot_be_removed() {
    let cli = Cli::new();
    cli.endpoint("src");
    cli.batch("b2", "src", &["a@contoso.edu,a,pw-a"]);
    cli.batch("b1", "src", &["b@contoso.edu,b,pw-b"]);
    let err = cli.fails(&["endpoint", "remove", "src"]);
    assert!(
        err.contains("endpoint \"src\" is used by batch(es) b1, b2"),
        "{err}"
    );
    assert_eq!(
        cli.json(&["endpoint", "show", "src"])["batches"],
        json!(["b1", "b2"])
    );
    cli.ok(&["batch", "remove", "b1"]);
    cli.ok(&["batch", "remove", "b2"]);
    cli.ok(&["endpoint", "remove", "src"]);
    assert_eq!(cli.json(&["endpoint", "list"]), json!([]));
}
