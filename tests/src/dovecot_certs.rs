//! The private CA and server certificate a TLS harness Dovecot presents, made with openssl.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};

/// Writes a file readable by the Dovecot service users.
pub(crate) fn write_public(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Runs one openssl command in `dir`, failing with its stderr.
fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("run openssl")?;
    ensure!(
        out.status.success(),
        "openssl {} failed: {}",
        args.first().copied().unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Makes a private CA (`DIR/tls/ca.pem`) and a server certificate it signs
/// (`DIR/tls/{cert,key}.pem`: CN=localhost, SAN IP:127.0.0.1 and DNS:localhost, not a CA —
/// TLS clients such as rustls refuse a CA certificate as the server's own). Returns the CA.
pub(crate) fn make_certificate(root: &Path) -> Result<PathBuf> {
    let tls = root.join("tls");
    fs::create_dir(&tls)?;
    fs::set_permissions(&tls, fs::Permissions::from_mode(0o755))?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "7",
        "-subj",
        "/CN=mailstage test CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca-key.pem", "-out", "ca.pem"]);
    ca.extend([
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&tls, &ca)?;
    let mut csr = vec![
        "req",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ];
    csr.extend(ec);
    openssl(&tls, &csr)?;
    fs::write(
        tls.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost
basicConstraints=critical,CA:FALSE
         keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
",
    )?;
    openssl(
        &tls,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "7",
            "-extfile",
            "server.ext",
            "-out",
            "cert.pem",
        ],
    )?;
    for public in ["ca.pem", "cert.pem"] {
        fs::set_permissions(tls.join(public), fs::Permissions::from_mode(0o644))?;
    }
    Ok(tls.join("ca.pem"))
}

/// Makes a self-signed certificate the way `openssl req -x509` does by default (and Debian's
/// snakeoil): `CA:TRUE`, for `cn` (also as a DNS name, with IP 127.0.0.1), in
/// `dir/{cert,key}.pem`. Returns the certificate's path.
pub fn make_self_signed(dir: &Path, cn: &str) -> Result<PathBuf> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    let subject = format!("/CN={cn}");
    let names = format!("subjectAltName=DNS:{cn},IP:127.0.0.1");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "7",
            "-subj",
            &subject,
            "-addext",
            &names,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ],
    )?;
    fs::set_permissions(dir.join("cert.pem"), fs::Permissions::from_mode(0o644))?;
    Ok(dir.join("cert.pem"))
}
