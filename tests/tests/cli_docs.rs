//! Shell completions and man pages generated from the binaries' clap definitions.

mod cli_support;

use cli_support::{Cli, text};

#[test]
fn completions_and_man_pages_generate_for_both_binaries() {
    let cli = Cli::new();
    let bash = cli.ok(&["completions", "bash"]);
    assert!(
        bash.contains("mailstage-extract") && bash.contains("approve-skipped"),
        "{bash}"
    );
    let out = cli.upload(&["completions", "zsh"], &[]);
    let zsh = text(&out);
    assert!(
        out.status.success() && zsh.contains("#compdef mailstage-upload"),
        "{zsh}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let said = cli.ok(&["man", "--out", path]);
    assert!(said.contains("man page(s) written"), "{said}");
    let page = std::fs::read_to_string(dir.path().join("mailstage-extract-batch-report.1"))
        .expect("a page per subcommand");
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("format"), "{page}");
    let out = cli.upload(&["man", "--out", path], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(dir.path().join("mailstage-upload-report.1").is_file());
}
