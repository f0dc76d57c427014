//! CSV batch files: what admins write, and every way it can be wrong.

use std::path::Path;

use mailstage::catalog::{BatchFileError, parse_batch_csv};
use secrecy::ExposeSecret;

fn parse(text: &str) -> Result<Vec<mailstage::catalog::BatchRow>, BatchFileError> {
    parse_batch_csv(text.as_bytes(), Path::new("users.csv"))
}

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Err(BatchFileError::Invalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn microsoft_format_with_bom_quotes_and_any_header_case() {
    let text = "\u{feff}emailaddress,USERNAME,password,UserRoot,Notes\r\n\
                terry.adams@contoso.edu,contoso-students/mailadmin/terry.adams,\"p,a\"\"ss\",,x\r\n\
                ann@contoso.edu,ann*mailadmin, spaced pass ,/users/ann,\r\n";
    let rows = parse(text).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].row, 2);
    assert_eq!(rows[0].email, "terry.adams@contoso.edu");
    assert_eq!(rows[0].user_name, "contoso-students/mailadmin/terry.adams");
    assert_eq!(rows[0].password.expose_secret(), "p,a\"ss");
    assert_eq!(rows[0].user_root, None);
    assert_eq!(
        rows[1].password.expose_secret(),
        " spaced pass ",
        "passwords are never trimmed"
    );
    assert_eq!(rows[1].user_root.as_deref(), Some("/users/ann"));
    let debug = format!("{rows:?}");
    assert!(
        !debug.contains("p,a") && !debug.contains("spaced pass"),
        "{debug}"
    );
}

#[test]
fn every_problem_is_named_by_row_and_column_at_once() {
    let text = "EmailAddress,UserName,Password\n\
                a@contoso.edu,a,secret-one\n\
                not-an-address,b,secret-two\n\
                c@contoso.edu,,secret-three\n\
                A@Contoso.edu,a2,secret-four\n\
                d@contoso.edu,d\n\
                \n\
                e@localhost,e,secret-five\n";
    let found = problems(text);
    assert_eq!(
        found,
        vec![
            "row 3, column EmailAddress: \"not-an-address\" is not an e-mail address: no @",
            "row 4, column UserName: empty",
            "row 5, column EmailAddress: A@Contoso.edu is already listed in row 2",
            "row 6, column Password: missing field (the row has too few columns)",
            "row 8, column EmailAddress: \"e@localhost\" is not an e-mail address: the domain is not a dotted name",
        ]
    );
    let all = found.join("\n");
    assert!(
        !all.contains("secret"),
        "a password leaked into an error: {all}"
    );
}

#[test]
fn missing_columns_empty_files_and_bad_encoding() {
    assert_eq!(
        problems("Email,UserName,Password\nx@y.z,u,p\n"),
        vec![
            "row 1, column EmailAddress: missing column (the header must name EmailAddress, UserName and Password; UserRoot and TargetUserName are optional)"
        ]
    );
    assert_eq!(
        problems("EmailAddress,UserName,Password\n"),
        vec!["row 1: the file lists no mailboxes"]
    );
    let latin1 = b"EmailAddress,UserName,Password\nx@y.z,J\xfcrgen,p\n";
    let err = parse_batch_csv(latin1, Path::new("u.csv"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 2, column UserName: not UTF-8"), "{err}");
    assert!(
        err.starts_with("batch file u.csv has 1 problem(s)"),
        "{err}"
    );
}

#[test]
fn quoted_fields_may_span_lines_and_rows_still_number_right() {
    let text = "EmailAddress,UserName,Password\n\"x@y.z\",u,\"multi\nline\"\nbad,u,p\n";
    assert_eq!(
        problems(text),
        vec!["row 4, column EmailAddress: \"bad\" is not an e-mail address: no @"]
    );
}

#[test]
fn target_user_name_is_optional_and_checked() {
    let text = "EmailAddress,UserName,Password,TargetUserName\n\
                ann@old.example,ann,pw1,ann.smith@new.example\n\
                bob@old.example,bob,pw2,\n\
                cat@old.example,cat,pw3,cat jones@new.example\n";
    let found = problems(text);
    assert_eq!(
        found,
        vec![
            "row 4, column TargetUserName: \"cat jones@new.example\" holds spaces, control \
             characters or `*` (it names the target mailbox; `*` separates a mailbox from an \
             admin in master-user logins)"
        ]
    );
    let rows = parse(&text.replace("cat jones", "cat.jones")).unwrap();
    assert_eq!(
        rows[0].target_user.as_deref(),
        Some("ann.smith@new.example")
    );
    assert_eq!(rows[1].target_user, None, "empty means the EmailAddress");
    assert_eq!(
        rows[2].target_user.as_deref(),
        Some("cat.jones@new.example")
    );
    let without = parse("EmailAddress,UserName,Password\nann@x.example,ann,pw\n").unwrap();
    assert_eq!(without[0].target_user, None);
}

#[test]
fn two_mailboxes_cannot_share_a_target_mailbox() {
    let text = "EmailAddress,UserName,Password,TargetUserName\n\
                ann@old.example,ann,pw1,ann@new.example\n\
                bob@old.example,bob,pw2,ANN@new.example\n\
                ann@new.example,ann2,pw3,\n\
                cat@old.example,cat,pw4,\n";
    assert_eq!(
        problems(text),
        vec![
            "row 3, column TargetUserName: ANN@new.example is already the target mailbox of \
             row 2; two mailboxes of a batch cannot go into one",
            "row 4, column EmailAddress: ann@new.example is already the target mailbox of row \
             2; two mailboxes of a batch cannot go into one",
        ]
    );
}

#[test]
fn a_semicolon_separated_file_as_excel_saves_it_in_european_locales_is_read_as_such() {
    let text = "\u{feff}EmailAddress;UserName;Password;TargetUserName\r\n\
                ann@contoso.edu;ann;\"pa;ss,word\";ann@fabrikam.com\r\n\
                bob@contoso.edu;bob;p,w;\r\n";
    let rows = parse(text).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].user_name, "ann");
    assert_eq!(rows[0].password.expose_secret(), "pa;ss,word");
    assert_eq!(rows[0].target_user.as_deref(), Some("ann@fabrikam.com"));
    assert_eq!(rows[1].password.expose_secret(), "p,w");
}
