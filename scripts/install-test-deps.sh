#!/usr/bin/env bash
# Installs the Debian packages the test suite drives (real peers: PAM hosts,
# saslauthd, Postfix, Dovecot, Prosody, ejabberd, Apache, PHP for the shipped
# Nextcloud, OpenLDAP behind it) and what scripts/test.sh runs them with
# (iproute2's `ip` for the suite's network namespace). Needs root.
# Idempotent: `apt-get update` runs once, and only when something is missing.
set -euo pipefail

PKGS=(
  pamtester libpam-wrapper libpam0g-dev sasl2-bin
  python3-pam python3-pypamtest
  prosody lua-socket python3-slixmpp
  ejabberd postfix dovecot-core apache2 libapache2-mod-authnz-pam
  curl netcat-openbsd systemd fail2ban strace iproute2
  # Nextcloud 32 (../shared/peers) runs on Debian's PHP 8.2; user_ldap needs php8.2-ldap.
  php8.2-cli php8.2-sqlite3 php8.2-curl php8.2-xml php8.2-mbstring php8.2-zip
  php8.2-gd php8.2-intl php8.2-bcmath php8.2-gmp php8.2-ldap
  # A throwaway OpenLDAP directory behind Nextcloud's user_ldap.
  slapd ldap-utils
)

# Two runs of the suite at once (scripts/test-twice.sh) must not run apt side by side:
# the second waits here, then finds nothing missing.
if exec 9>>/run/lock/xcauth-install-test-deps.lock 2>/dev/null; then
  flock 9
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps: missing packages (${missing[*]}) and not root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Packaged daemons must not auto-start: they would bind public ports.
if [ ! -x /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# The tests run their own slapd with a config file of their own: no system directory.
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
echo "install-test-deps: installing ${missing[*]}" >&2
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
