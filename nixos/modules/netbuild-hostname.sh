#!/usr/bin/env bash
# netbuild-hostname.service: sets this machine's hostname from `hostname=<name>` on the kernel
# command line, so that one netboot image serves every host of a class. Run as
# `bash netbuild-hostname.sh`, early in boot (before network-pre.target, systemd-hostnamed and sshd).
#
# - No `hostname=` on the command line: nothing is touched, exit 0.
# - A value that is not an RFC 1123 label (letters, digits, inner hyphens, at most 63): refused,
#   nothing is touched, exit 1 (the unit fails and says why).
# - Otherwise the name is written to the kernel (the transient hostname) AND to /etc/hostname as
#   a regular file. The static /etc/hostname is what keeps the name: without one, networkd's DHCP
#   `UseHostname=`, NetworkManager and dhcpcd replace the transient name with whatever the DHCP
#   server says. NixOS may have made /etc/hostname a symlink into the read-only Nix store: it is
#   replaced, never written through (a temp file in the same folder, renamed over it).
#
# Parsing follows netbuild-cmdline.sh (whole tokens, the last `hostname=` wins).
#
# Environment (all optional; tests point them at stand-ins):
#   NETBUILD_CMDLINE          the kernel command line file       (default /proc/cmdline)
#   NETBUILD_CMDLINE_LIB      the parser library                 (default: next to this script)
#   NETBUILD_KERNEL_HOSTNAME  the kernel's hostname file         (default /proc/sys/kernel/hostname)
#   NETBUILD_ETC              the folder holding `hostname`      (default /etc)
set -euo pipefail

# shellcheck source=netbuild-cmdline.sh
source "${NETBUILD_CMDLINE_LIB:-$(dirname "$0")/netbuild-cmdline.sh}"

kernel_hostname=${NETBUILD_KERNEL_HOSTNAME:-/proc/sys/kernel/hostname}
etc=${NETBUILD_ETC:-/etc}

if ! name=$(netbuild_cmdline_value hostname); then
  echo "no hostname= on the kernel command line; keeping hostname '$(cat "$kernel_hostname" 2>/dev/null || true)'"
  exit 0
fi

# Same rule as networking.hostName (an RFC 1123 label): the value ends up in prompts, logs,
# DHCP requests and file names.
if [[ ! "$name" =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$ ]]; then
  echo "ignoring hostname=$name from the kernel command line: not a valid host name (letters, digits, inner hyphens, at most 63); hostname and $etc/hostname left unchanged" >&2
  exit 1
fi

printf '%s' "$name" > "$kernel_hostname"

# A regular file in place of whatever $etc/hostname is (symlink, missing, stale file): written
# beside it and renamed over it, so a link is replaced and never followed, and a reader never
# sees a half-written name. `mv -T` refuses to move the file *into* a folder named hostname.
tmp=$(mktemp "$etc/.hostname.netbuild.XXXXXX")
trap 'rm -f "$tmp"' EXIT
printf '%s\n' "$name" > "$tmp"
chmod 0644 "$tmp"
mv -fT "$tmp" "$etc/hostname"
trap - EXIT

echo "hostname set to $name from the kernel command line (kernel and $etc/hostname)"
