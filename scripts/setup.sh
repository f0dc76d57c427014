#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, only when missing:
#   dovecot-imapd (/usr/sbin/dovecot, started privately per test), isync (mbsync, benchmarks),
#   openssl (test certificates), curl (the XOAUTH2 check script asks the token emulator),
#   and Cyrus IMAP 3.6 and Courier-IMAP 5 for the tests that run against several servers.
# cyrus-imapd and courier-imap conflict with dovecot-imapd in apt (installing one removes
# Dovecot), so their dependencies come from apt and the two server packages are downloaded
# and unpacked (apt-get download + dpkg-deb -x) into $MAILSTAGE_SERVERS_DIR
# (/opt/mailstage-servers), where the test harness finds them.
#   chromium (the HTML report is rendered headless in cli_report).
#   slurmctld, slurmd, slurm-client and munge (the Slurm recipe in deploy/slurm runs on a
#   private single-node Slurm in slurm_shards; nothing is started or configured system-wide:
#   the test starts its own daemons with a private configuration).
# The tests run their own Dovecot instances on free loopback ports, so the system Dovecot service
# that the package would start on ports 143/993 is kept from starting and stopped if it runs.
# Idempotent and silent when there is nothing to do. Needs root (or sudo) only to install.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    SUDO=(sudo)
fi

# package:file-it-provides
wanted=(dovecot-imapd:/usr/sbin/dovecot isync:/usr/bin/mbsync openssl:/usr/bin/openssl curl:/usr/bin/curl
    cyrus-common:/usr/lib/cyrus/bin/master sasl2-bin:/usr/sbin/saslpasswd2
    courier-base:/usr/sbin/couriertcpd courier-authdaemon:/usr/lib/courier/courier-authlib/authdaemond
    courier-authlib-userdb:/usr/sbin/userdb
    chromium:/usr/bin/chromium
    slurmctld:/usr/sbin/slurmctld slurmd:/usr/sbin/slurmd slurm-client:/usr/bin/sbatch
    munge:/usr/sbin/munged)
missing=()
for entry in "${wanted[@]}"; do
    pkg=${entry%%:*}
    file=${entry#*:}
    if [[ ! -x $file ]] && ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} > 0)); then
    echo "setup: installing ${missing[*]}"
    # Keep maintainer scripts from starting services during the install (Debian policy-rc.d).
    policy=/usr/sbin/policy-rc.d
    made_policy=no
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        made_policy=yes
    fi
    cleanup() { if [[ $made_policy == yes ]]; then "${SUDO[@]}" rm -f "$policy"; fi; }
    trap cleanup EXIT
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    cleanup
    trap - EXIT
fi

# The servers apt would not install beside Dovecot, unpacked privately (package:file).
servers_dir=${MAILSTAGE_SERVERS_DIR:-/opt/mailstage-servers}
unpacked=(cyrus-imapd:usr/lib/cyrus/bin/imapd courier-imap:usr/bin/imapd)
to_unpack=()
for entry in "${unpacked[@]}"; do
    if [[ ! -x $servers_dir/${entry#*:} ]]; then
        to_unpack+=("${entry%%:*}")
    fi
done
if ((${#to_unpack[@]} > 0)); then
    echo "setup: unpacking ${to_unpack[*]} into $servers_dir"
    debs=$(mktemp -d)
    chmod 777 "$debs" # apt downloads as its own user, who must write there
    (cd "$debs" && apt-get download -qq "${to_unpack[@]}" 2>/dev/null) || {
        "${SUDO[@]}" apt-get update -qq
        (cd "$debs" && apt-get download -qq "${to_unpack[@]}")
    }
    "${SUDO[@]}" mkdir -p "$servers_dir"
    for deb in "$debs"/*.deb; do
        "${SUDO[@]}" dpkg-deb -x "$deb" "$servers_dir"
    done
    rm -rf "$debs"
fi

# kubernetes-validate (PyPI; it ships the Kubernetes API schemas) checks the manifests in
# deploy/kubernetes offline (deploy_kubernetes); PyYAML comes with it.
if ! command -v kubernetes-validate >/dev/null 2>&1; then
    echo "setup: installing kubernetes-validate"
    python3 -m pip install -q kubernetes-validate 2>/dev/null ||
        python3 -m pip install -q --break-system-packages kubernetes-validate
fi

# The system service must not hold 143/993; the tests start private instances.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    if systemctl is-active --quiet dovecot 2>/dev/null; then
        echo "setup: stopping the system dovecot service"
        "${SUDO[@]}" systemctl stop dovecot
    fi
    if systemctl is-enabled --quiet dovecot 2>/dev/null; then
        "${SUDO[@]}" systemctl disable --quiet dovecot
    fi
fi
# Without systemd (containers): the default instance keeps its pid in /run/dovecot/master.pid.
pidfile=/run/dovecot/master.pid
if [[ -r $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "setup: stopping the system dovecot (pid $(cat "$pidfile"))"
    "${SUDO[@]}" doveadm stop 2>/dev/null || "${SUDO[@]}" kill "$(cat "$pidfile")"
fi
